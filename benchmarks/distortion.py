"""Benchmark: foreshortening/layover/shadow maps, throughput per core and peak memory, AOI sweep.

For each AOI size (default 1, 10 and 100 Mpx: the simulated world's terrain on ever finer grids) it
prepares the DEM files once, then runs in a fresh process per thread count:

- ``scan``: :func:`pipeline.sar.distortion.distortion_strips` reading the ellipsoidal DEM strip by
  strip from its file (the compute, nothing written);
- ``stage``: :func:`pipeline.stages.distortion.distortion_maps`, the workflow's job (rule
  ``distortion``): the ellipsoidal DEM in, the flags COG out;
- ``geometry``: the same with the geometry layers that the rule ``distortion_geometry`` writes on
  demand: both DEMs in, both COGs out (local incidence, slope, aspect and regions too).

and prints seconds, Mpx/s per core (output pixels / seconds / threads) and the process's peak
resident memory (VmHWM). Results with 1 and 2 threads must be identical (checked: SHA-256 of the
flags).

    python benchmarks/distortion.py [--world resources/simulated] [--mpx 1 10 100] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PREPARE = r"""
import json, sys
from pipeline.core.grid import MapGrid
from pipeline.stages.dem import prepare_dem
world, g, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
grid = MapGrid(g["epsg"], g["left"], g["top"], g["resolution"], g["width"], g["height"])
prepare_dem(world + "/dem", grid, out + "/dem_egm96.tif", out + "/dem_wgs84.tif")
"""

RUN = r"""
import hashlib, json, sys, time
import numba, numpy as np, rasterio
from rasterio.windows import Window
mode, safe, dems, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
numba.set_num_threads(threads)
from pipeline.io.rasters import band_range, grid_of
from pipeline.sar import open_product
from pipeline.sar.distortion import distortion_strips
from pipeline.stages.distortion import distortion_maps
digest = hashlib.sha256()
t = time.perf_counter()
if mode == "scan":
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(dems + "/dem_wgs84.tif") as src:  # as the stage
        grid = grid_of(src)
        read = lambda a, b: src.read(1, window=Window(0, a, grid.width, b - a))
        for _, layers in distortion_strips(open_product(safe).geometry, f"EPSG:{grid.epsg}", grid.easting,
                                           grid.northing, read, band_range(src), ellipsoid_incidence=False):
            digest.update(layers["flags"].tobytes())
else:
    with rasterio.open(dems + "/dem_wgs84.tif") as src:
        grid = grid_of(src)
    distortion_maps(safe, dems + "/dem_egm96.tif", dems + "/dem_wgs84.tif", grid, dems + "/flags.tif",
                    dems + "/geometry.tif" if mode == "geometry" else None)
    with rasterio.open(dems + "/flags.tif") as src:
        digest.update(src.read(1).tobytes())
seconds = time.perf_counter() - t
# VmHWM: this process's peak resident memory since exec
hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0] / 1024
print(json.dumps({"seconds": seconds, "rss_mb": hwm, "sha256": digest.hexdigest()[:16]}))
"""


def _run(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="resources/simulated")
    parser.add_argument("--mpx", type=float, nargs="+", default=[1, 10, 100], help="AOI sizes (Mpx)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["scan", "stage", "geometry"],
                        choices=["scan", "stage", "geometry"])
    args = parser.parse_args()

    world = Path(args.world)
    truth = json.loads((world / "truth" / "world.json").read_text())
    safe = world / "sentinel1" / f"{truth['sentinel1'][0]['id']}.SAFE"
    g = truth["world_grid"]
    extent = min(g["width"], g["height"]) * g["resolution"] - 2000.0  # inside the world, away from its edges
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mpx in args.mpx:
            side = int(round((mpx * 1e6) ** 0.5))
            grid = {"epsg": g["epsg"], "left": g["left"] + 1000.0, "top": g["top"] - 1000.0,
                    "resolution": extent / side, "width": side, "height": side}
            _run(PREPARE, str(world), json.dumps(grid), tmp)
            for mode in args.modes:
                for threads in args.threads:
                    r = _run(RUN, mode, str(safe), tmp, str(threads))
                    rows.append({"mode": mode, "mpx": side * side / 1e6, "res": extent / side, "threads": threads,
                                 **r})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"machine: {os.cpu_count()} CPUs; world {world}; product {safe.name}")
    print(f"{'run':8s} {'Mpx':>7s} {'pixel m':>8s} {'threads':>7s} {'seconds':>8s} {'Mpx/s':>7s} "
          f"{'Mpx/s/core':>10s} {'peak RSS MB':>11s} {'flags sha256':>17s}")
    for r in rows:
        rate = r["mpx"] / r["seconds"]
        print(f"{r['mode']:8s} {r['mpx']:7.1f} {r['res']:8.2f} {r['threads']:7d} {r['seconds']:8.1f} {rate:7.2f} "
              f"{rate / r['threads']:10.2f} {r['rss_mb']:11.0f} {r['sha256']:>17s}")
    by_size: dict[tuple, set] = {}
    for r in rows:
        by_size.setdefault((r["mode"], r["mpx"]), set()).add(r["sha256"])
    same = all(len(v) == 1 for v in by_size.values())
    print("flags identical across thread counts:", "yes" if same else "NO")


if __name__ == "__main__":
    main()
