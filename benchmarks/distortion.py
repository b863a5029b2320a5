"""Benchmark: foreshortening/layover/shadow maps, Mpx/s per core on at least 25 Mpx.

Runs :func:`pipeline.sar.distortion.distortion_map` on the simulated world's DEM resampled to
grids of increasing size (the same terrain, finer pixels) and prints the throughput. numpy
runs these steps on one core, so Mpx/s is per core.

    python benchmarks/distortion.py [--world resources/simulated] [--sides 2500 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="resources/simulated")
    parser.add_argument("--sides", type=int, nargs="+", default=[2500, 5000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = parser.parse_args()
    if args.one is None:
        import subprocess
        import sys

        rows = []
        for side in args.sides:
            proc = subprocess.run([sys.executable, __file__, "--world", args.world, "--one", str(side)],
                                  capture_output=True, text=True)
            if proc.returncode:
                sys.exit(proc.stderr)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"machine: {os.cpu_count()} CPUs (numpy on one core); world {args.world}")
        print(f"{'Mpx':>8s} {'pixel m':>8s} {'seconds':>8s} {'Mpx/s/core':>11s} {'peak RSS MB':>12s} "
              f"{'layover':>8s} {'shadow':>8s}")
        for r in rows:
            print(f"{r['mpx']:8.2f} {r['res']:8.2f} {r['seconds']:8.1f} {r['mpx'] / r['seconds']:11.3f} "
                  f"{r['rss_mb']:12.0f} {r['layover']:8.3f} {r['shadow']:8.3f}")
        return

    import pyproj

    from pipeline.dem.prepare import dem_on_grid
    from pipeline.core.grid import MapGrid
    from pipeline.dem.tiles import read_mosaic
    from pipeline.sar import distortion as d
    from pipeline.sar import open_product

    world = Path(args.world)
    truth = json.loads((world / "truth" / "world.json").read_text())
    safe = world / "sentinel1" / f"{truth['sentinel1'][0]['id']}.SAFE"
    geometry = open_product(safe).geometry
    g = truth["world_grid"]
    extent = min(g["width"], g["height"]) * g["resolution"]
    for side in [args.one]:
        grid = MapGrid(g["epsg"], g["left"], g["top"], extent / side, side, side)
        to_geo = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
        w, s, e, n = to_geo.transform_bounds(*grid.bounds)
        _, ell = dem_on_grid(read_mosaic(world / "dem", w - 0.01, s - 0.01, e + 0.01, n + 0.01), grid)
        t0 = time.perf_counter()
        out = d.distortion_map(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, ell)
        seconds = time.perf_counter() - t0
        flags = out["flags"]
        # peak resident memory of this process (DEM preparation included)
        hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0] / 1024
        print(json.dumps({"mpx": side * side / 1e6, "res": grid.resolution, "seconds": seconds, "rss_mb": hwm,
                          "layover": float(((flags & d.LAYOVER) > 0).mean()),
                          "shadow": float(((flags & d.SHADOW) > 0).mean())}))


if __name__ == "__main__":
    main()
