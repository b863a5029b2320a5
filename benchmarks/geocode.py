"""Benchmark: terrain correction throughput and memory, against a per-pixel reference.

Uses the simulated world (``snakemake --cores 8 simulate`` first, or --world). For each
output grid size it runs the full terrain correction (read, calibrate, remove noise,
geocode, interpolate, write both COGs) in a fresh process and reports output Mpx/s and the
process's peak resident memory. In the same run it times two references on a sample of
the same pixels: the exact Newton solution vectorised over all pixels (no lattice), and a
straightforward per-pixel loop (geodetic -> ECEF, Newton zero-Doppler, range, line/pixel,
bilinear sample), and prints the ratios.

    python benchmarks/geocode.py [--world resources/simulated] [--sizes 3000 6000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUN_ONE = r"""
import json, sys, time
from pipeline.stages.terrain_correct import terrain_correct, TerrainCorrectionParams
safe, dem, out, geo = sys.argv[1:5]
t = time.perf_counter()
terrain_correct(safe, dem, out, geo, TerrainCorrectionParams.from_dict({}), tile_size=512)
# VmHWM: this process's peak resident memory since exec (ru_maxrss would include the parent's before exec)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": hwm / 1024}))
"""


def per_pixel_reference(product, calibrated, lat, lon, h) -> tuple[float, np.ndarray]:
    """A straightforward loop: one Newton solve and one bilinear sample per pixel."""
    from pipeline.core.geodesy import geodetic_to_ecef
    from pipeline.sar import geocoding

    geometry = product.geometry
    out = np.empty(lat.size)
    t0 = time.perf_counter()
    for i in range(lat.size):
        p = geodetic_to_ecef(lat[i], lon[i], h[i])
        t = geocoding.zero_doppler_time(geometry.orbit, p, 0.5 * geometry.annotation.image.last_line_time_s)
        r = geocoding.slant_range(geometry.orbit, p, t)
        rc = geometry.timing_to_radar(t, r)
        l0, p0 = int(np.floor(rc.line)), int(np.floor(rc.pixel))
        fl, fp = float(rc.line) - l0, float(rc.pixel) - p0
        if not (0 <= l0 < calibrated.shape[0] - 1 and 0 <= p0 < calibrated.shape[1] - 1):
            out[i] = np.nan
            continue
        win = calibrated[l0 : l0 + 2, p0 : p0 + 2]
        out[i] = (win[0, 0] * (1 - fl) * (1 - fp) + win[1, 0] * fl * (1 - fp)
                  + win[0, 1] * (1 - fl) * fp + win[1, 1] * fl * fp)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="resources/simulated")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 6000], help="output grid sides (pixels)")
    parser.add_argument("--reference-sample", type=int, default=3000)
    args = parser.parse_args()

    import rasterio

    from pipeline.stages.dem import prepare_dem
    from pipeline.dem.prepare import grid_lat_lon
    from pipeline.core.grid import MapGrid
    from pipeline.sar import open_product
    from pipeline.sar.lattice import RadarLattice
    from pipeline.simulate.inspect import calibrated_sigma0_db

    world = Path(args.world)
    truth = json.loads((world / "truth" / "world.json").read_text())
    safe = world / "sentinel1" / f"{truth['sentinel1'][0]['id']}.SAFE"
    g = truth["world_grid"]
    extent = min(g["width"], g["height"]) * g["resolution"] - 2000.0  # inside the world, away from its edges
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for side in args.sizes:
            res = extent / side
            grid = MapGrid(g["epsg"], g["left"] + 1000.0, g["top"] - 1000.0, res, side, side)
            dem = tmp / f"dem_{side}.tif"
            prepare_dem(world / "dem", grid, tmp / f"dem_o_{side}.tif", dem)
            proc = subprocess.run([sys.executable, "-c", RUN_ONE, str(safe), str(dem), str(tmp / "bs.tif"),
                                   str(tmp / "geo.tif")], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(proc.stderr)
            stats = json.loads(proc.stdout.strip().splitlines()[-1])
            mpx = side * side / 1e6
            rows.append((f"terrain correction, lattice ({res:.2f} m)", mpx, mpx / stats["seconds"], stats["peak_rss_mb"]))

        # references on a sample of the last grid's pixels
        product = open_product(safe)
        cal = 10 ** (calibrated_sigma0_db(safe, "VV") / 10)
        with rasterio.open(dem) as src:
            heights = src.read(1)
        lat, lon = grid_lat_lon(grid)
        rng = np.random.default_rng(0)
        idx = rng.choice(heights.size, args.reference_sample, replace=False)
        la, lo, hh = lat.ravel()[idx], lon.ravel()[idx], heights.ravel()[idx].astype(np.float64)
        seconds, ref_values = per_pixel_reference(product, cal, la, lo, hh)
        rows.append(("reference: per-pixel loop", args.reference_sample / 1e6, args.reference_sample / 1e6 / seconds, float("nan")))

        from pipeline.core.geodesy import geodetic_to_ecef

        # geocoding alone on one 512 x 512 output tile
        tile = (slice(2000, 2512), slice(2000, 2512))
        la_t, lo_t, h_t = lat[tile], lon[tile], heights[tile].astype(np.float64)
        n = la_t.size
        t0 = time.perf_counter()
        exact = product.geometry.ecef_to_radar(geodetic_to_ecef(la_t, lo_t, h_t))
        exact_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lattice = RadarLattice(product.geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing,
                               (float(heights.min()), float(heights.max())))
        build_s = time.perf_counter() - t0
        ee, nn = np.meshgrid(grid.easting[tile[1]], grid.northing[tile[0]])
        lattice.radar_coordinates(ee[:1, :1], nn[:1, :1], h_t[:1, :1])  # load the compiled kernel (once a process)
        t0 = time.perf_counter()
        fast = lattice.radar_coordinates(ee, nn, h_t)
        lattice_s = time.perf_counter() - t0
        rows.append(("geocoding only: exact Newton, vectorised", n / 1e6, n / 1e6 / exact_s, float("nan")))
        rows.append(("geocoding only: lattice lookup + exact timing", n / 1e6, n / 1e6 / lattice_s, float("nan")))
        err = max(np.abs(fast.line - exact.line).max(), np.abs(fast.pixel - exact.pixel).max())

    print(f"machine: {os.cpu_count()} CPUs; world {world}; product {safe.name}")
    print(f"{'run':48s} {'Mpx':>8s} {'Mpx/s':>9s} {'peak RSS MB':>12s}")
    for name, mpx, rate, rss in rows:
        print(f"{name:48s} {mpx:8.3f} {rate:9.3f} {rss:12.0f}")
    full = rows[len(args.sizes) - 1][2]
    print(f"ratio full terrain correction / per-pixel reference loop: {full / rows[len(args.sizes)][2]:.0f}x")
    print(f"ratio lattice / exact vectorised geocoding: {rows[-1][2] / rows[-2][2]:.1f}x "
          f"(max difference {err:.4f} px; building the lattice for the whole grid once: {build_s:.2f} s)")


if __name__ == "__main__":
    main()
