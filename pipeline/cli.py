"""Command line: ``python -m pipeline STAGE --help``.

One subcommand per workflow rule: argparse -> typed parameters -> ``pipeline.stages.<stage>``.
Each takes the same parameters that its Snakemake rule passes, so any step can be rerun or
debugged without Snakemake. Known failures print one line naming the file or key and exit
with status 2 (``--debug`` shows the traceback). The simulator has its own command line,
``python -m pipeline.simulate``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipeline.errors import SardemError, UserError
from pipeline.io.redact import RedactingFormatter, redact


def _grid(text: str):
    from pipeline.core.grid import MapGrid

    try:
        g = json.loads(text)
        return MapGrid(int(g["epsg"]), float(g["left"]), float(g["top"]), float(g["resolution"]),
                       int(g["width"]), int(g["height"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"--grid must be JSON with epsg, left, top, resolution, width, height: {exc}") from exc


def _dem(args: argparse.Namespace) -> None:
    from pipeline.stages.dem import prepare_dem

    prepare_dem(args.tiles_dir, _grid(args.grid), args.out_orthometric, args.out_ellipsoidal, args.geoid_grid or None)


def _terrain_correct(args: argparse.Namespace) -> None:
    from pipeline.stages.terrain_correct import TerrainCorrectionParams, terrain_correct

    if not (args.out or args.geometry):
        raise SystemExit("terrain-correct: give --out, --geometry or both")
    params = TerrainCorrectionParams.from_dict(_json(args.params, "--params") if args.params else {})
    terrain_correct(args.safe, args.dem, args.out or None, args.geometry or None, params,
                    orbit_file=args.orbit_file or None, tile_size=args.tile_size)


def _distortion(args: argparse.Namespace) -> None:
    import numba

    from pipeline.stages.distortion import distortion_maps

    if not (args.out_flags or args.out_geometry):
        raise SystemExit("distortion: give --out-flags, --out-geometry or both")
    if args.out_geometry and not args.dem_orthometric:
        raise SystemExit("distortion: --out-geometry needs --dem-orthometric (slope and aspect)")
    numba.set_num_threads(max(1, min(args.threads, numba.config.NUMBA_NUM_THREADS)))
    distortion_maps(args.safe, args.dem_orthometric or None, args.dem_ellipsoidal, _grid(args.grid),
                    args.out_flags or None, args.out_geometry or None)


def _json(text: str, option: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{option} is not valid JSON: {exc}") from exc


def _search(args: argparse.Namespace) -> None:
    from pipeline.stages.sources import search

    print(search(_json(args.query, "--query"), _json(args.endpoints, "--endpoints"), args.source, args.out,
                 _json(args.collections, "--collections")))


def _fetch_sentinel1(args: argparse.Namespace) -> None:
    from pipeline.stages.sources import fetch_sentinel1

    fetch_sentinel1(args.search, args.scene, args.cache, _grid(args.grid), args.dem,
                    _json(args.settings, "--settings"), args.out)


def _fetch_sentinel2(args: argparse.Namespace) -> None:
    from pipeline.stages.sources import fetch_sentinel2

    fetch_sentinel2(args.search, args.scene, args.cache, _grid(args.grid), _json(args.settings, "--settings"), args.out)


def _fetch_dem(args: argparse.Namespace) -> None:
    from pipeline.stages.sources import fetch_dem_tile

    fetch_dem_tile(args.url_template, args.tile, args.out)


def _mosaic_slices(args: argparse.Namespace) -> None:
    from pipeline.stages.mosaic import mosaic_slices

    mosaic_slices(args.backscatter, args.flags, args.out_backscatter, args.out_flags)


def _optical(args: argparse.Namespace) -> None:
    from pipeline.stages.optical import OpticalParams, prepare_optical

    params = OpticalParams.from_dict(_json(args.params, "--params"))
    prepare_optical(args.item, _grid(args.grid), args.out, args.out_json, params)


def _dem_normalise(args: argparse.Namespace) -> None:
    from pipeline.stages.dem import normalise_dem

    normalise_dem(args.dem, args.out, float(args.dem_max_m) if args.dem_max_m else None)


def _triplets(args: argparse.Namespace) -> None:
    from pipeline.stages.sources import write_triplets

    write_triplets(args.search, float(args.max_days), args.out)


def _tiles(args: argparse.Namespace) -> None:
    from pipeline.stages.tiles import TilingParams, tile_triplet

    try:
        triplet = next(t for t in json.loads(Path(args.triplets).read_text()) if t["id"] == args.triplet)
    except (OSError, json.JSONDecodeError, StopIteration) as exc:
        raise UserError(f"{args.triplets}: no triplet {args.triplet} ({exc or 'not listed'})") from exc
    tile_triplet(triplet, Path(args.sar), Path(args.flags), Path(args.optical), Path(args.optical_json),
                 Path(args.dem), Path(args.out), TilingParams.from_dict(_json(args.params, "--params")))


def _store(args: argparse.Namespace) -> None:
    from pipeline.stages.store import StoreParams, build_store

    build_store([Path(x) for x in args.shards], [Path(x) for x in args.optical_json], Path(args.triplets),
                Path(args.dem), [Path(x) for x in args.sar], [Path(x) for x in args.flags],
                [Path(x) for x in args.optical], StoreParams.from_dict(_json(args.params, "--params")),
                Path(args.out_dir), _json(args.configuration, "--configuration"))


def _training_section(args: argparse.Namespace) -> dict:
    """The validated 'training' section: from --config, or --params (JSON, what the rule passes)."""
    from pipeline.config import load_config, validate

    if args.config and args.params:
        raise UserError("give either --config or --params, not both")
    if args.params:
        return validate({"training": _json(args.params, "--params")})["training"]
    return load_config(args.config or "config.yaml")["training"]


def _train(args: argparse.Namespace) -> None:
    from pipeline.stages.train import run
    from pipeline.training.params import RuntimeOptions

    training = _training_section(args)
    runtime = RuntimeOptions.from_config(training["runtime"], training["runtime"]["threads"])
    overrides = {k: getattr(args, k) for k in ("device", "amp", "compile", "tensorboard", "threads")
                 if getattr(args, k) is not None}
    runtime = RuntimeOptions(**{**runtime.__dict__, **overrides})
    out = args.out or f"{training['directory']}/{args.model}/seed{args.seed}"
    print(run(args.dataset, out, args.model, args.seed, training, runtime))


def _evaluation_params(text: str):
    from pipeline.config import validate
    from pipeline.evaluation.params import EvalParams

    return EvalParams.from_config(validate({"evaluation": _json(text, "--params")})["evaluation"])


def _evaluate_model(args: argparse.Namespace) -> None:
    from pipeline.stages.evaluate import evaluate_model

    evaluate_model(args.dataset, args.model, args.out, _evaluation_params(args.params), args.device)


def _evaluation_table(args: argparse.Namespace) -> None:
    from pipeline.stages.evaluate import write_table

    write_table(args.metrics, args.fid, _evaluation_params(args.params), json.loads(args.sar_db_range),
                args.out_csv, args.out_md, args.out_paired)


def _evaluation_figures(args: argparse.Namespace) -> None:
    from pipeline.stages.evaluate import write_figures

    write_figures(args.dataset, args.predictions, args.training_metrics, _evaluation_params(args.params),
                  json.loads(args.sar_db_range), args.patches, args.out_translations, args.out_enhancement,
                  args.out_curves)


def _report_inputs(args: argparse.Namespace) -> None:
    from pipeline.stages.evaluate import write_report_inputs

    write_report_inputs(args.card, _json(args.config_json, "--config-json"), args.out_card, args.out_config)


def base_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A parser with the options every command line shares (logging, --debug); see :func:`run_parser`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of known failures too")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser("python -m pipeline", __doc__)
    sub = parser.add_subparsers(dest="stage", required=True)

    p = sub.add_parser("search", help="search Sentinel-1 and Sentinel-2 scenes; freeze the result into a JSON file")
    p.add_argument("--query", required=True, help="criteria as JSON: bbox, start, end, orbit_state, max_cloud_cover, ...")
    p.add_argument("--endpoints", required=True,
                   help='JSON {"sentinel-1-grd": URL or catalog.json, "sentinel-2-l2a": URL or catalog.json}')
    p.add_argument("--collections", default="{}",
                   help='JSON {canonical: catalog collection id} where they differ, e.g. '
                        '{"sentinel-2-l2a": "sentinel-2-c1-l2a"}')
    p.add_argument("--source", default="stac", help="recorded in the result (simulated or stac)")
    p.add_argument("--out", required=True, help="the frozen search result (JSON)")
    p.set_defaults(func=_search)

    p = sub.add_parser("fetch-sentinel1", help="fetch one Sentinel-1 GRD product into the cache (AOI window or SAFE zip)")
    p.add_argument("--search", required=True, help="the frozen search result")
    p.add_argument("--scene", required=True, help="product id")
    p.add_argument("--cache", required=True, help="download cache directory")
    p.add_argument("--grid", required=True,
                   help="AOI grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--dem", required=True, help="ellipsoidal heights on the AOI grid (the AOI's radar window)")
    p.add_argument("--settings", required=True, help="the config's download section, polarisations and sign, as JSON")
    p.add_argument("--out", required=True, help="the local STAC item (JSON)")
    p.set_defaults(func=_fetch_sentinel1)

    p = sub.add_parser("fetch-sentinel2", help="fetch one Sentinel-2 L2A product over the AOI into the cache")
    p.add_argument("--search", required=True, help="the frozen search result")
    p.add_argument("--scene", required=True, help="product id")
    p.add_argument("--cache", required=True, help="download cache directory")
    p.add_argument("--grid", required=True,
                   help="AOI grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--settings", required=True, help='JSON {"assets": layout, "sign": null or planetary_computer}')
    p.add_argument("--out", required=True, help="the local STAC item (JSON)")
    p.set_defaults(func=_fetch_sentinel2)

    p = sub.add_parser("fetch-dem", help="fetch one SRTM 1 arc-second tile")
    p.add_argument("--url-template", required=True, help="URL or path with {tile} (and {lat})")
    p.add_argument("--tile", required=True, help="e.g. N45E006")
    p.add_argument("--out", required=True, help="the tile file (e.g. N45E006.SRTMGL1.hgt.zip)")
    p.set_defaults(func=_fetch_dem)

    p = sub.add_parser("dem", help="mosaic SRTM tiles, fill voids, resample to the AOI grid (EGM96 and WGS84 heights)")
    p.add_argument("--tiles-dir", required=True, help="directory with N45E006.SRTMGL1.hgt.zip-style tiles")
    p.add_argument("--grid", required=True, help="output grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--out-orthometric", required=True, help="EGM96 heights (m, float32 COG)")
    p.add_argument("--out-ellipsoidal", required=True, help="WGS84 ellipsoidal heights (m, float32 COG)")
    p.add_argument("--geoid-grid", default="", help="EGM96 grid path (default: vendored, then PROJ/Debian)")
    p.set_defaults(func=_dem)

    p = sub.add_parser("terrain-correct", help="calibrate, remove noise and terrain-correct one GRD product")
    p.add_argument("--safe", required=True, help="SAFE directory or zip")
    p.add_argument("--dem", required=True, help="ellipsoidal heights on the output grid (GeoTIFF)")
    p.add_argument("--out", default="", help="backscatter GeoTIFF (dB, one band per polarisation)")
    p.add_argument("--geometry", default="",
                   help="geometry GeoTIFF (incidence angles, radar line/pixel); no later stage needs it")
    p.add_argument("--params", default="", help="the config's 'sar' section as JSON (without tile_size; "
                   "missing keys: the schema's defaults)")
    p.add_argument("--orbit-file", default="", help="precise orbit (AUX_POEORB .EOF); default: the annotation's")
    p.add_argument("--tile-size", type=int, default=512,
                   help="output tile size (pixels): bounds memory, does not change the result (default 512)")
    p.set_defaults(func=_terrain_correct)

    p = sub.add_parser("distortion", help="foreshortening, layover and shadow maps of one product on the AOI grid")
    p.add_argument("--safe", required=True, help="SAFE directory, SAFE zip or STAC item")
    p.add_argument("--dem-ellipsoidal", required=True,
                   help="WGS84 heights on the AOI grid extended by the scan margin (rule dem_extended)")
    p.add_argument("--dem-orthometric", default="",
                   help="EGM96 heights on the same extended grid (for --out-geometry's slope and aspect)")
    p.add_argument("--grid", required=True, help="AOI grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--out-flags", default="", help="distortion bits on the AOI grid (uint8 COG)")
    p.add_argument("--out-geometry", default="", help="local incidence, slope, aspect (deg) and evaluation "
                   "region (float32 COG); no later stage needs it")
    p.add_argument("--threads", type=int, default=1, help="compiled kernels' threads (the result does not change)")
    p.set_defaults(func=_distortion)

    p = sub.add_parser("mosaic-slices", help="one pass's terrain-corrected Sentinel-1 slices as one image")
    p.add_argument("--backscatter", nargs="+", required=True, help="per slice, in time order")
    p.add_argument("--flags", nargs="+", required=True, help="per slice, same order")
    p.add_argument("--out-backscatter", required=True, help="the pass's backscatter (dB COG)")
    p.add_argument("--out-flags", required=True, help="the pass's distortion flags (uint8 COG)")
    p.set_defaults(func=_mosaic_slices)

    p = sub.add_parser("optical", help="decode, mask, reproject and stretch one Sentinel-2 L2A scene")
    p.add_argument("--item", required=True, nargs="+",
                   help="the local STAC item(s) that fetch-sentinel2 writes (several: the tiles of one acquisition)")
    p.add_argument("--grid", required=True,
                   help="AOI grid as JSON: epsg, left, top, resolution, width, height")
    p.add_argument("--params", required=True, help="the config's 'dataset' section as JSON")
    p.add_argument("--out", required=True, help="R, G, B (uint8, stretched) and valid on the AOI grid (COG)")
    p.add_argument("--out-json", required=True,
                   help="the scene's record: masked fraction, stretch limits, skip reason, offset evidence")
    p.set_defaults(func=_optical)

    p = sub.add_parser("dem-normalise", help="DEM divided by the maximum elevation")
    p.add_argument("--dem", required=True, help="EGM96 heights on the AOI grid")
    p.add_argument("--out", required=True, help="heights / maximum elevation (float32 COG, tag dem_max_m)")
    p.add_argument("--dem-max-m", default="", help="fixed maximum (m); default: the AOI's")
    p.set_defaults(func=_dem_normalise)

    p = sub.add_parser("triplets", help="pair the Sentinel-1 and Sentinel-2 scenes of a search result")
    p.add_argument("--search", required=True, help="the frozen search result")
    p.add_argument("--max-days", required=True, help="largest time between paired acquisitions (days)")
    p.add_argument("--out", required=True, help="the triplets (JSON)")
    p.set_defaults(func=_triplets)

    p = sub.add_parser("tiles", help="cut one triplet into 256 x 256 patches (a shard)")
    for name, text in (("triplets", "the triplets (JSON)"), ("triplet", "id of the triplet to cut"),
                       ("sar", "its pass's backscatter (dB COG)"), ("flags", "its pass's distortion flags"),
                       ("optical", "its optical image (R, G, B, valid)"), ("optical-json", "its optical record"),
                       ("dem", "the normalised DEM"),
                       ("params", "patch_size, stride, max_masked_fraction as JSON (missing: the schema's)"),
                       ("out", "the shard (.npz: arrays and index rows)")):
        p.add_argument(f"--{name}", required=True, help=text)
    p.set_defaults(func=_tiles)

    p = sub.add_parser("store", help="assemble the shards into the zarr store, index, card and quicklooks")
    p.add_argument("--shards", nargs="*", default=[], help="per-triplet shards (none: an empty dataset, an error)")
    p.add_argument("--optical-json", nargs="*", default=[], help="per-scene optical JSONs (none when no triplet)")
    p.add_argument("--triplets", required=True, help="the triplets (JSON)")
    p.add_argument("--dem", required=True, help="the normalised DEM")
    p.add_argument("--sar", nargs="*", default=[], help="each triplet's backscatter (its pass's), in triplet order")
    p.add_argument("--flags", nargs="*", default=[], help="each triplet's distortion flags, in triplet order")
    p.add_argument("--optical", nargs="*", default=[], help="each triplet's optical image, in triplet order")
    p.add_argument("--params", required=True,
                   help="the config's dataset split and patch keys as JSON (missing keys: the schema's defaults)")
    p.add_argument("--configuration", default="{}",
                   help="the config sections that shaped the data, as JSON (recorded in the store and the card)")
    p.add_argument("--out-dir", required=True,
                   help="dataset directory: patches.zarr, index.parquet, README.md, quicklooks/")
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
    p.add_argument("--out-card", required=True, help="the card's copy for the report")
    p.add_argument("--out-config", required=True, help="the configuration as YAML")
    p.set_defaults(func=_report_inputs)
    return parser

def run_parser(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse, set up logging, run the chosen command; a known failure (:class:`SardemError`) prints one
    line and returns 2 (``--debug``: the traceback). Shared by this CLI and the simulator's."""
    args = parser.parse_args(argv)
    # GDAL's block cache defaults to 5 % of the machine's RAM (6 GB on a 128 GB node, per job): a fixed
    # 256 MB keeps a job's memory the same on every machine (measured: no change in speed); the
    # environment variable still overrides it
    os.environ.setdefault("GDAL_CACHEMAX", "256")
    logging.basicConfig(level=args.log_level.upper())
    for handler in logging.getLogger().handlers:  # signed URLs never reach a log, at any level
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    try:
        args.func(args)
    except SardemError as exc:
        if args.debug:
            raise
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser(), argv)
