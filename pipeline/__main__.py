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
        skip_outside=bool(p.get("skip_scenes_outside_aoi", True)),
    )
    terrain_correct(args.safe, args.dem, args.out, args.geometry, params)


def _distortion(args: argparse.Namespace) -> None:
    from .apps import distortion_maps

    distortion_maps(args.safe, args.tiles_dir, _grid(args.grid), args.out_flags, args.out_geometry,
                    args.geoid_grid or None, float(args.margin_m))


def _json(text: str, option: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{option} is not valid JSON: {exc}") from exc


def _search(args: argparse.Namespace) -> None:
    from .sources.app import search

    print(search(_json(args.query, "--query"), _json(args.endpoints, "--endpoints"), args.source, args.out,
                 _json(args.collections, "--collections")))


def _fetch_sentinel1(args: argparse.Namespace) -> None:
    from .sources.app import fetch_sentinel1

    fetch_sentinel1(args.search, args.scene, args.cache, _grid(args.grid), args.dem,
                    _json(args.settings, "--settings"), args.out)


def _fetch_sentinel2(args: argparse.Namespace) -> None:
    from .sources.app import fetch_sentinel2

    fetch_sentinel2(args.search, args.scene, args.cache, _grid(args.grid), _json(args.settings, "--settings"), args.out)


def _fetch_dem(args: argparse.Namespace) -> None:
    from .sources.app import fetch_dem_tile

    fetch_dem_tile(args.url_template, args.tile, args.out)


def _mosaic_slices(args: argparse.Namespace) -> None:
    from .apps import mosaic_slices

    mosaic_slices(args.backscatter, args.flags, args.out_backscatter, args.out_flags)


def _optical(args: argparse.Namespace) -> None:
    from .dataset.build import prepare_optical

    p = json.loads(args.params)
    prepare_optical(args.item, _grid(args.grid), args.out, args.out_json, p["scl_mask_classes"],
                    tuple(p["stretch_percentiles"]), p["max_scene_masked_fraction"],
                    p.get("earth_search_offset", "detect"))


def _dem_normalise(args: argparse.Namespace) -> None:
    from .dataset.build import normalise_dem

    normalise_dem(args.dem, args.out, float(args.dem_max_m) if args.dem_max_m else None)


def _triplets(args: argparse.Namespace) -> None:
    from .io.atomic import write_bytes_atomic
    from .sources.app import triplets as pair

    triplets = pair(args.search, float(args.max_days))
    write_bytes_atomic(args.out, json.dumps(triplets, indent=2).encode())


def _tiles(args: argparse.Namespace) -> None:
    from .dataset.build import tile_triplet

    triplet = next(t for t in json.loads(Path(args.triplets).read_text()) if t["id"] == args.triplet)
    p = json.loads(args.params)
    n = tile_triplet(triplet, Path(args.sar), Path(args.flags), Path(args.optical), Path(args.optical_json),
                     Path(args.dem), Path(args.out), p["patch_size"], p["stride"], p["max_masked_fraction"])
    logging.getLogger("pipeline").info("triplet %s: %d patches", args.triplet, n)


def _store(args: argparse.Namespace) -> None:
    from .dataset.build import assemble_store, dataset_card
    from .dataset.quicklooks import triplet_quicklooks

    p = json.loads(args.params)
    out = Path(args.out_dir)
    index = assemble_store([Path(x) for x in args.shards], out, p["split"], tuple(p["split_fractions"]),
                           p["seed"], p["split_block_patches"] * p["patch_size"], p["patch_size"])
    triplets = json.loads(Path(args.triplets).read_text())
    if not len(triplets) == len(args.sar) == len(args.flags) == len(args.optical):
        raise UserError(f"{args.triplets}: {len(triplets)} triplets, but {len(args.sar)} --sar, "
                        f"{len(args.flags)} --flags and {len(args.optical)} --optical files")
    infos = [json.loads(Path(x).read_text()) for x in args.optical_json]
    dem_max = float(rasterio_tag(args.dem, "dem_max_m"))
    skipped_sar = {}
    for t, sar in zip(triplets, args.sar):
        reason = rasterio_tag(sar, "skipped", "")
        if reason:
            skipped_sar[t["s1"]] = reason
    (out / "README.md").write_text(dataset_card(index, triplets, infos, dem_max, skipped_sar))
    triplet_quicklooks(triplets, [Path(x) for x in args.sar], [Path(x) for x in args.flags],
                       [Path(x) for x in args.optical], Path(args.dem), out / "quicklooks")


def rasterio_tag(path: str, key: str, default: str | None = None) -> str:
    """A GeoTIFF tag; ``default`` when absent (None: the tag is required)."""
    import rasterio

    with rasterio.open(path) as src:
        tags = src.tags()
    if key not in tags and default is None:
        raise UserError(f"{path}: no '{key}' tag")
    return tags.get(key, default)


def _training_section(args: argparse.Namespace) -> dict:
    """The validated 'training' section: from --config, or --params (JSON, what the rule passes)."""
    from .config import load_config, validate

    if args.config and args.params:
        raise UserError("give either --config or --params, not both")
    if args.params:
        return validate({"training": _json(args.params, "--params")})["training"]
    return load_config(args.config or "config.yaml")["training"]


def _train(args: argparse.Namespace) -> None:
    from .stages.train import run
    from .training.params import RuntimeOptions

    training = _training_section(args)
    runtime = RuntimeOptions.from_config(training["runtime"], training["runtime"]["threads"])
    overrides = {k: getattr(args, k) for k in ("device", "amp", "compile", "tensorboard", "threads")
                 if getattr(args, k) is not None}
    runtime = RuntimeOptions(**{**runtime.__dict__, **overrides})
    out = args.out or f"{training['directory']}/{args.model}/seed{args.seed}"
    print(run(args.dataset, out, args.model, args.seed, training, runtime))


def _evaluation_params(text: str):
    from .config import validate
    from .evaluation.params import EvalParams

    return EvalParams.from_config(validate({"evaluation": _json(text, "--params")})["evaluation"])


def _evaluate_model(args: argparse.Namespace) -> None:
    from .stages.evaluate import evaluate_model

    evaluate_model(args.dataset, args.model, args.out, _evaluation_params(args.params), args.device)


def _evaluation_table(args: argparse.Namespace) -> None:
    from .stages.evaluate import write_table

    write_table(args.metrics, args.fid, _evaluation_params(args.params), json.loads(args.sar_db_range),
                args.out_csv, args.out_md, args.out_paired)


def _evaluation_figures(args: argparse.Namespace) -> None:
    from .stages.evaluate import write_figures

    write_figures(args.dataset, args.predictions, args.training_metrics, _evaluation_params(args.params),
                  json.loads(args.sar_db_range), args.patches, args.out_translations, args.out_enhancement,
                  args.out_curves)


def _report_inputs(args: argparse.Namespace) -> None:
    import yaml

    from .io.atomic import atomic_path

    card = Path(args.card)
    if not card.exists():
        raise UserError(f"{card}: no dataset card")
    with atomic_path(args.out_card) as tmp:
        tmp.write_text(card.read_text())
    with atomic_path(args.out_config) as tmp:
        tmp.write_text(yaml.safe_dump(json.loads(args.config_json), sort_keys=False))


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

    p = sub.add_parser("search", help="search Sentinel-1 and Sentinel-2 scenes; freeze the result into a JSON file")
    p.add_argument("--query", required=True, help="criteria as JSON: bbox, start, end, orbit_state, max_cloud_cover, ...")
    p.add_argument("--endpoints", required=True,
                   help='JSON {"sentinel-1-grd": URL or catalog.json, "sentinel-2-l2a": URL or catalog.json}')
    p.add_argument("--collections", default="{}",
                   help='JSON {canonical: catalog collection id} where they differ, e.g. '
                        '{"sentinel-2-l2a": "sentinel-2-c1-l2a"}')
    p.add_argument("--source", default="stac", help="recorded in the result (simulated or stac)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_search)

    p = sub.add_parser("fetch-sentinel1", help="fetch one Sentinel-1 GRD product into the cache (AOI window or SAFE zip)")
    p.add_argument("--search", required=True, help="the frozen search result")
    p.add_argument("--scene", required=True, help="product id")
    p.add_argument("--cache", required=True)
    p.add_argument("--grid", required=True)
    p.add_argument("--dem", required=True, help="ellipsoidal heights on the AOI grid (the AOI's radar window)")
    p.add_argument("--settings", required=True, help="the config's download section, polarisations and sign, as JSON")
    p.add_argument("--out", required=True, help="the local STAC item (JSON)")
    p.set_defaults(func=_fetch_sentinel1)

    p = sub.add_parser("fetch-sentinel2", help="fetch one Sentinel-2 L2A product over the AOI into the cache")
    p.add_argument("--search", required=True)
    p.add_argument("--scene", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--grid", required=True)
    p.add_argument("--settings", required=True, help='JSON {"assets": layout, "sign": null or planetary_computer}')
    p.add_argument("--out", required=True)
    p.set_defaults(func=_fetch_sentinel2)

    p = sub.add_parser("fetch-dem", help="fetch one SRTM 1 arc-second tile")
    p.add_argument("--url-template", required=True, help="URL or path with {tile} (and {lat})")
    p.add_argument("--tile", required=True, help="e.g. N45E006")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_fetch_dem)

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

    p = sub.add_parser("mosaic-slices", help="one pass's terrain-corrected Sentinel-1 slices as one image")
    p.add_argument("--backscatter", nargs="+", required=True, help="per slice, in time order")
    p.add_argument("--flags", nargs="+", required=True, help="per slice, same order")
    p.add_argument("--out-backscatter", required=True)
    p.add_argument("--out-flags", required=True)
    p.set_defaults(func=_mosaic_slices)

    p = sub.add_parser("optical", help="decode, mask, reproject and stretch one Sentinel-2 L2A scene")
    p.add_argument("--item", required=True, nargs="+",
                   help="the local STAC item(s) that fetch-sentinel2 writes (several: the tiles of one acquisition)")
    p.add_argument("--grid", required=True)
    p.add_argument("--params", required=True, help="the config's 'dataset' section as JSON")
    p.add_argument("--out", required=True)
    p.add_argument("--out-json", required=True)
    p.set_defaults(func=_optical)

    p = sub.add_parser("dem-normalise", help="DEM divided by the maximum elevation")
    p.add_argument("--dem", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dem-max-m", default="", help="fixed maximum (m); default: the AOI's")
    p.set_defaults(func=_dem_normalise)

    p = sub.add_parser("triplets", help="pair the Sentinel-1 and Sentinel-2 scenes of a search result")
    p.add_argument("--search", required=True, help="the frozen search result")
    p.add_argument("--max-days", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_triplets)

    p = sub.add_parser("tiles", help="cut one triplet into 256 x 256 patches (a shard)")
    for name in ("triplets", "triplet", "sar", "flags", "optical", "optical-json", "dem", "params", "out"):
        p.add_argument(f"--{name}", required=True)
    p.set_defaults(func=_tiles)

    p = sub.add_parser("store", help="assemble the shards into the zarr store, index, card and quicklooks")
    p.add_argument("--shards", nargs="*", default=[], help="per-triplet shards (none: an empty dataset, an error)")
    p.add_argument("--optical-json", nargs="*", default=[], help="per-scene optical JSONs (none when no triplet)")
    p.add_argument("--triplets", required=True)
    p.add_argument("--dem", required=True, help="the normalised DEM")
    p.add_argument("--sar", nargs="*", default=[], help="each triplet's backscatter (its pass's), in triplet order")
    p.add_argument("--flags", nargs="*", default=[], help="each triplet's distortion flags, in triplet order")
    p.add_argument("--optical", nargs="*", default=[], help="each triplet's optical image, in triplet order")
    p.add_argument("--params", required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=_store)

    p = sub.add_parser("train", help="train one model with one seed on the patch store (resumes an interrupted run)")
    p.add_argument("--model", required=True, help="registered model: sardinet, sardinet_early, sardinet_late, "
                   "sardinet_intermediate, pix2pix, cyclegan")
    p.add_argument("--seed", type=int, default=0, help="random initialisation (default 0)")
    p.add_argument("--dataset", default="results/dataset", help="dataset directory (patches.zarr, index.parquet)")
    p.add_argument("--out", help="run directory (default: <training.directory>/<model>/seed<seed>)")
    p.add_argument("--config", help="config.yaml to read the 'training' section from (default ./config.yaml)")
    p.add_argument("--params", help="or the 'training' section as JSON (what the rule passes)")
    p.add_argument("--device", help="auto (CUDA > MPS > CPU) or a torch device; overrides training.runtime")
    p.add_argument("--threads", type=int, help="CPU threads for torch; overrides training.runtime")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast on CUDA")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                   help="TensorBoard event files (needs tensorboard)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate-model", help="predict the test split with one trained model; metrics and FID")
    p.add_argument("--dataset", default="results/dataset", help="dataset directory (patches.zarr, index.parquet)")
    p.add_argument("--model", required=True, help="a trained model.pt")
    p.add_argument("--out", required=True, help="directory for predictions.zarr, metrics.parquet, fid.json")
    p.add_argument("--params", default="{}", help="the 'evaluation' section as JSON (defaults: the schema's)")
    p.add_argument("--device", default="auto", help="auto (CUDA > MPS > CPU) or a torch device")
    p.set_defaults(func=_evaluate_model)

    p = sub.add_parser("evaluation-table", help="Table 1 (CSV, Markdown) and paired differences from per-model metrics")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.parquet of every model and seed")
    p.add_argument("--fid", nargs="+", required=True, help="fid.json of every model and seed")
    p.add_argument("--params", default="{}", help="the 'evaluation' section as JSON")
    p.add_argument("--sar-db-range", default="[-35, 5]", help="SAR scaling of the models (JSON), for the header")
    p.add_argument("--out-csv", required=True, help="long-form table (model, enhancement, region, metric, ...)")
    p.add_argument("--out-md", required=True, help="Markdown Table 1 with the protocol")
    p.add_argument("--out-paired", required=True, help="paired differences SARDINet_L - SARDINet (CSV)")
    p.set_defaults(func=_evaluation_table)

    p = sub.add_parser("evaluation-figures", help="translation, enhancement and training-curve figures (PNG)")
    p.add_argument("--dataset", default="results/dataset", help="dataset directory")
    p.add_argument("--predictions", nargs="+", required=True, help="predictions.zarr of the models (first seed used)")
    p.add_argument("--training-metrics", nargs="+", required=True, help="metrics.csv of every training run")
    p.add_argument("--params", default="{}", help="the 'evaluation' section as JSON")
    p.add_argument("--sar-db-range", default="[-35, 5]", help="SAR display scaling (JSON)")
    p.add_argument("--patches", type=int, default=4, help="test patches shown")
    p.add_argument("--out-translations", required=True, help="Fig. 4-style panel (PNG)")
    p.add_argument("--out-enhancement", required=True, help="Fig. 3-style panel (PNG)")
    p.add_argument("--out-curves", required=True, help="training curves (PNG)")
    p.set_defaults(func=_evaluation_figures)

    p = sub.add_parser("report-inputs", help="copy the dataset card and write the configuration for the report")
    p.add_argument("--card", required=True, help="the dataset card (README.md)")
    p.add_argument("--config-json", required=True, help="the effective configuration as JSON")
    p.add_argument("--out-card", required=True)
    p.add_argument("--out-config", required=True, help="the configuration as YAML")
    p.set_defaults(func=_report_inputs)
    return parser

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .dataset.build import DatasetError
    from .io.cog_window import WindowReadError
    from .io.dem_tiles import DemError
    from .io.download import DownloadError
    from .sources.providers import ProviderError
    from .sar.annotation import AnnotationError
    from .sar.safe import SafeError
    from .sar.terrain_correction import TerrainCorrectionError

    try:
        args.func(args)
    except (UserError, SafeError, AnnotationError, DemError, TerrainCorrectionError, DatasetError, DownloadError,
            WindowReadError, ProviderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

if __name__ == "__main__":
    sys.exit(main())
