"""Benchmark: one Sentinel-1 scene at paper scale (100 Mpx, the pixels of a 100 x 100 km AOI at 10 m),
from cached inputs to patches, every stage the workflow's own command: time and peak memory per stage.

The bench world (``config/bench.yaml``, 40 x 40 km) is the input: its cached SRTM tile, its fetched
Sentinel-1 product (the AOI's window of the measurement) and Sentinel-2 items, all already on disk
after ``snakemake --cores 2 dataset --configfile config/bench.yaml``. The AOI grid is the bench's,
refined until it holds ``--mpx`` million pixels (4 m pixels for 100 Mpx): the same work per output
pixel as a 100 km AOI at 10 m, without simulating a world that size (the radar and optical inputs are
interpolated more finely; per-pixel costs do not depend on what the pixels hold). Stages, each a fresh
``python -m pipeline ...`` process as Snakemake would start it, in workflow order:

dem (AOI grid), dem with the distortion margin, terrain correction (VV and VH, sigma0; the geometry
layers are on demand and not made), distortion maps, optical (decode, mask, reproject, stretch), DEM normalisation,
tiling with the registration QA, store (zarr, index, card, quicklooks).

Prints per stage: seconds (wall clock), CPU seconds, peak resident memory of the process
(``wait4``'s ``ru_maxrss``) and the size of what it wrote.

    python benchmarks/paper_scale.py [--mpx 100] [--triplet 20200402] [--keep DIR [--stages dem tiles ...]]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml

from pipeline.config import validate
from pipeline.core.grid import MapGrid
from pipeline.io.rasters import grid_of
from pipeline.stages.optical import OpticalParams
from pipeline.stages.store import StoreParams
from pipeline.stages.tiles import TilingParams


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, section by section (as Snakemake's ``--configfile``)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _grid_json(grid: MapGrid) -> str:
    return json.dumps({"epsg": grid.epsg, "left": grid.left, "top": grid.top, "resolution": grid.resolution,
                       "width": grid.width, "height": grid.height})


def _size_mb(paths: list[Path]) -> float:
    total = 0
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()] if p.exists() else []
        total += sum(f.stat().st_size for f in files)
    return total / 2**20


def run_stage(name: str, args: list[str], outputs: list[Path], log_dir: Path) -> dict[str, Any]:
    """One stage in a fresh process: wall and CPU seconds, its peak RSS, the size of its outputs."""
    log = log_dir / f"{name}.log"
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"stage {name} failed ({proc.returncode}); its log {log}:\n" + log.read_text()[-3000:])
    return {"stage": name, "seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "written_mb": _size_mb(outputs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/bench.yaml", help="the world whose cached inputs are used")
    ap.add_argument("--mpx", type=float, default=100.0, help="output pixels of the AOI grid (millions)")
    ap.add_argument("--triplet", default=None, help="triplet id (default: the first)")
    ap.add_argument("--keep", type=Path, default=None, help="write here and keep (default: a temporary directory)")
    ap.add_argument("--stages", nargs="*", default=None,
                    help="run only these stages (the others' outputs must already be in --keep)")
    args = ap.parse_args()

    config = validate(_merged(yaml.safe_load(Path("config.yaml").read_text()),
                              yaml.safe_load(Path(args.config).read_text())))
    results = Path(config["results"])
    triplets = json.loads((Path(config["dataset"]["directory"]) / "triplets.json").read_text())
    triplet = next(t for t in triplets if args.triplet in (None, t["id"]))
    with rasterio.open(results / "dem" / "dem_egm96.tif") as src:
        base = grid_of(src)
    scale = math.sqrt(args.mpx * 1e6 / (base.width * base.height))
    grid = MapGrid(base.epsg, base.left, base.top, base.resolution / scale, round(base.width * scale),
                   round(base.height * scale))
    extended = grid.expanded(config["distortion"]["margin_m"])
    dem_tiles = Path(config["download"]["cache"]) / config["source"] / "dem"  # as the workflow's CACHE
    s1_item = results / "products" / "sentinel-1-grd" / f"{triplet['s1']}.json"
    s2_items = [results / "products" / "sentinel-2-l2a" / f"{s}.json" for s in triplet["s2_items"]]
    sar_params = {k: v for k, v in config["sar"].items() if k != "tile_size"}
    optical_keys, tiling_keys, store_keys = OpticalParams.KEYS, TilingParams.KEYS, StoreParams.KEYS  # as the rules
    dataset = config["dataset"]

    with tempfile.TemporaryDirectory(prefix="paper_scale_") as tmp:
        out = args.keep or Path(tmp)
        logs = out / "logs"
        for d in (out, logs, out / "dataset" / "shards"):
            d.mkdir(parents=True, exist_ok=True)
        (out / "dataset" / "triplets.json").write_text(json.dumps([triplet]))
        f = {k: out / v for k, v in {
            "egm96": "dem_egm96.tif", "wgs84": "dem_wgs84.tif", "ext_egm96": "dem_ext_egm96.tif",
            "ext_wgs84": "dem_ext_wgs84.tif", "backscatter": "backscatter.tif",
            "flags": "flags.tif", "optical": "optical.tif",
            "optical_json": "optical.json", "dem_norm": "dem_normalised.tif",
            "shard": f"dataset/shards/{triplet['id']}.npz"}.items()}
        stages = [
            ("dem", ["dem", "--tiles-dir", str(dem_tiles), "--grid", _grid_json(grid), "--out-orthometric",
                     str(f["egm96"]), "--out-ellipsoidal", str(f["wgs84"]), "--geoid-grid", config["geoid_grid"] or ""],
             [f["egm96"], f["wgs84"]]),
            ("dem_extended", ["dem", "--tiles-dir", str(dem_tiles), "--grid", _grid_json(extended),
                              "--out-orthometric", str(f["ext_egm96"]), "--out-ellipsoidal", str(f["ext_wgs84"]),
                              "--geoid-grid", config["geoid_grid"] or ""], [f["ext_egm96"], f["ext_wgs84"]]),
            ("terrain_correct", ["terrain-correct", "--safe", str(s1_item), "--dem", str(f["wgs84"]), "--out",
                                 str(f["backscatter"]), "--params",
                                 json.dumps(sar_params), "--tile-size", str(config["sar"]["tile_size"])],
             [f["backscatter"]]),
            ("distortion", ["distortion", "--safe", str(s1_item), "--dem-ellipsoidal", str(f["ext_wgs84"]),
                            "--grid", _grid_json(grid), "--out-flags", str(f["flags"]), "--threads", "1"],
             [f["flags"]]),
            ("optical", ["optical", "--item", *map(str, s2_items), "--grid", _grid_json(grid), "--params",
                         json.dumps({k: dataset[k] for k in optical_keys}), "--out", str(f["optical"]),
                         "--out-json", str(f["optical_json"])], [f["optical"], f["optical_json"]]),
            ("dem_normalise", ["dem-normalise", "--dem", str(f["egm96"]), "--out", str(f["dem_norm"]),
                               "--dem-max-m", str(dataset["dem_max_m"] or "")], [f["dem_norm"]]),
            ("tiles", ["tiles", "--triplets", str(out / "dataset" / "triplets.json"), "--triplet", triplet["id"],
                       "--sar", str(f["backscatter"]), "--flags", str(f["flags"]), "--optical", str(f["optical"]),
                       "--optical-json", str(f["optical_json"]), "--dem", str(f["dem_norm"]), "--params",
                       json.dumps({k: dataset[k] for k in tiling_keys}), "--out", str(f["shard"])], [f["shard"]]),
            ("store", ["store", "--shards", str(f["shard"]), "--optical-json", str(f["optical_json"]), "--triplets",
                       str(out / "dataset" / "triplets.json"), "--dem", str(f["dem_norm"]), "--sar",
                       str(f["backscatter"]), "--flags", str(f["flags"]), "--optical", str(f["optical"]), "--params",
                       json.dumps({k: dataset[k] for k in store_keys}), "--configuration",
                       json.dumps({"benchmark": "paper_scale", "mpx": args.mpx}), "--out-dir", str(out / "dataset")],
             [out / "dataset" / "patches.zarr", out / "dataset" / "index.parquet"]),
        ]
        print(f"triplet {triplet['id']} ({triplet['s1']}); AOI grid {grid.width} x {grid.height} px "
              f"({grid.width * grid.height / 1e6:.0f} Mpx) at {grid.resolution:.2f} m; distortion grid "
              f"{extended.width} x {extended.height}")
        print(f"{'stage':<16} {'seconds':>8} {'CPU s':>7} {'peak RSS MB':>12} {'written MB':>11}", flush=True)
        rows = []
        for name, stage_args, outputs in stages:
            if args.stages is not None and name not in args.stages:
                continue
            row = run_stage(name, stage_args, outputs, logs)
            rows.append(row)
            print(f"{name:<16} {row['seconds']:>8.1f} {row['cpu_s']:>7.1f} {row['peak_rss_mb']:>12.0f} "
                  f"{row['written_mb']:>11.0f}", flush=True)
        total = sum(r["seconds"] for r in rows)
        print(f"{'total':<16} {total:>8.1f} {sum(r['cpu_s'] for r in rows):>7.1f} "
              f"{max(r['peak_rss_mb'] for r in rows):>12.0f} {'':>11}")
        if f["shard"].exists():  # not when --stages left tiling out
            patches = json.loads(str(np.load(f["shard"])["index"]))
            print(f"{len(patches)} patches")


if __name__ == "__main__":
    main()
