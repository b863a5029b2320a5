"""Command line: ``python -m pipeline STAGE --help``.

Each stage takes the same parameters that its Snakemake rule passes, so any
step can be rerun or debugged without Snakemake.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .cli_errors import UserError


def _simulate(args: argparse.Namespace) -> None:
    from .simulate.app import simulate

    if args.simulation and args.config:
        raise UserError("give either --simulation or --config, not both")
    if args.config:

        from .config import load_config

        sim = load_config(args.config)["simulation"]
    else:
        try:
            sim = json.loads(args.simulation)
        except json.JSONDecodeError as exc:
            raise UserError(f"--simulation is not valid JSON: {exc}") from exc
        from .config import validated_simulation

        sim = validated_simulation(sim)
    out = Path(args.out or sim.get("directory", "resources/simulated"))
    sim = {k: v for k, v in sim.items() if k != "directory"}
    catalog = simulate(sim, out, args.geoid_grid or None)
    print(catalog)

def _quicklooks(args: argparse.Namespace) -> None:
    from .simulate.inspect import world_quicklooks

    for path in world_quicklooks(args.world, args.out, args.date):
        print(path)


def _grid(text: str):
    from .grid import MapGrid

    try:
        g = json.loads(text)
        return MapGrid(int(g["epsg"]), float(g["left"]), float(g["top"]), float(g["resolution"]),
                       int(g["width"]), int(g["height"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"--grid must be JSON with epsg, left, top, resolution, width, height: {exc}") from exc


def _dem(args: argparse.Namespace) -> None:
    from .apps import prepare_dem

    prepare_dem(args.tiles_dir, _grid(args.grid), args.out_orthometric, args.out_ellipsoidal, args.geoid_grid or None)


def _terrain_correct(args: argparse.Namespace) -> None:
    from .sar.terrain_correction import TerrainCorrectionParams, terrain_correct

    p = json.loads(args.params) if args.params else {}
    params = TerrainCorrectionParams(
        polarisations=tuple(p.get("polarisations", ("VV", "VH"))),
        quantity=p.get("quantity", "sigma0"),
        noise_removal=bool(p.get("noise_removal", True)),
        resampling=p.get("resampling", "bilinear"),
        db_floor=float(p.get("db_floor", -35.0)),
        tile_size=int(p.get("tile_size", 512)),
        orbit_file=args.orbit_file or None,
    )
    terrain_correct(args.safe, args.dem, args.out, args.geometry, params)


def _distortion(args: argparse.Namespace) -> None:
    from .apps import distortion_maps

    distortion_maps(args.safe, args.tiles_dir, _grid(args.grid), args.out_flags, args.out_geometry,
                    args.geoid_grid or None, float(args.margin_m))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="stage", required=True)

    p = sub.add_parser("simulate", help="simulate the offline Alpine world (S1 GRD, S2 L2A, SRTM, truth, STAC)")
    p.add_argument("--simulation", help="the config's 'simulation' section as JSON (what the rule passes)")
    p.add_argument("--config", help="or a config.yaml to read the 'simulation' section from")
    p.add_argument("--out", help="output directory (default: simulation.directory)")
    p.add_argument("--geoid-grid", default="", help="EGM96 grid path (default: vendored, then PROJ/Debian)")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("quicklooks", help="PNG quicklooks of one date of a simulated world")
    p.add_argument("--world", required=True, help="directory of the simulated world (catalog.json at its root)")
    p.add_argument("--out", required=True, help="directory for the PNGs")
    p.add_argument("--date", type=int, default=0, help="index of the date (default 0)")
    p.set_defaults(func=_quicklooks)

    p = sub.add_parser("dem", help="mosaic SRTM tiles, fill voids, resample to the AOI grid (EGM96 and WGS84 heights)")
    p.add_argument("--tiles-dir", required=True, help="directory with N45E006.SRTMGL1.hgt.zip-style tiles")
    p.add_argument("--grid", required=True, help="output grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--out-orthometric", required=True)
    p.add_argument("--out-ellipsoidal", required=True)
    p.add_argument("--geoid-grid", default="")
    p.set_defaults(func=_dem)

    p = sub.add_parser("terrain-correct", help="calibrate, remove noise and terrain-correct one GRD product")
    p.add_argument("--safe", required=True, help="SAFE directory or zip")
    p.add_argument("--dem", required=True, help="ellipsoidal heights on the output grid (GeoTIFF)")
    p.add_argument("--out", required=True, help="backscatter GeoTIFF (dB, one band per polarisation)")
    p.add_argument("--geometry", required=True, help="geometry GeoTIFF (incidence angles, radar line/pixel)")
    p.add_argument("--params", default="", help="the config's 'sar' section as JSON")
    p.add_argument("--orbit-file", default="", help="precise orbit (AUX_POEORB .EOF); default: the annotation's")
    p.set_defaults(func=_terrain_correct)

    p = sub.add_parser("distortion", help="foreshortening, layover and shadow maps of one product on the AOI grid")
    p.add_argument("--safe", required=True, help="SAFE directory, SAFE zip or STAC item")
    p.add_argument("--tiles-dir", required=True, help="directory with the SRTM 1 arc-second tiles")
    p.add_argument("--grid", required=True, help="AOI grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--out-flags", required=True)
    p.add_argument("--out-geometry", required=True)
    p.add_argument("--margin-m", default=3000.0, type=float, help="terrain scanned around the AOI (m)")
    p.add_argument("--geoid-grid", default="")
    p.set_defaults(func=_distortion)
    return parser

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .io.dem_tiles import DemError
    from .sar.annotation import AnnotationError
    from .sar.safe import SafeError
    from .sar.terrain_correction import TerrainCorrectionError

    try:
        args.func(args)
    except (UserError, SafeError, AnnotationError, DemError, TerrainCorrectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

if __name__ == "__main__":
    sys.exit(main())
