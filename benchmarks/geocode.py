"""Benchmark: terrain correction against sarsen, throughput and peak memory over an AOI sweep.

Uses the simulated world (``snakemake --cores 8 simulate`` first, or --world). For each output grid
(default 1, 10 and 100 Mpx: the world's terrain on ever finer grids, the DEM prepared once) it runs,
each in a fresh process, on one polarisation (VV) of the same product and DEM:

- ``ours GTC``: :func:`pipeline.stages.terrain_correct.terrain_correct`, quantity beta0 (read,
  calibrate, remove noise, geocode, interpolate, write the backscatter COG: what sarsen writes);
- ``ours GTC + geometry``: the same, also writing the four geometry layers (rule ``sar_geometry``'s);
- ``sarsen GTC``: ``sarsen.terrain_correction`` (0.9.6, optional: ``pip install -e ".[bench]"``),
  which gives beta0 on the DEM's grid, writing one GeoTIFF;
- ``ours RTC``: quantity gamma0_T (Small 2011 terrain flattening);
- ``sarsen RTC``: ``correct_radiometry="gamma_bilinear"``;

and prints seconds, output Mpx/s, peak resident memory (VmHWM) and our speed-up over sarsen (ours: the median
of ``--repeats`` runs, default 3, their times in the log). sarsen
runs up to ``--sarsen-max-mpx`` (its memory grows with the AOI). Then it times two references on a
sample of the last grid's pixels: the exact Newton solution vectorised over all pixels (no lattice),
and a straightforward per-pixel loop.

    python benchmarks/geocode.py [--world resources/simulated] [--mpx 1 10 100] [--threads 2]
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

RUN_OURS = r"""
import json, sys, time, numba
safe, dem, out, geo, quantity, threads = sys.argv[1:7]
numba.set_num_threads(int(threads))
from pipeline.stages.terrain_correct import terrain_correct, TerrainCorrectionParams
t = time.perf_counter()
terrain_correct(safe, dem, out, geo or None, TerrainCorrectionParams.from_dict({"quantity": quantity, "polarisations": ["VV"]}))
# VmHWM: this process's peak resident memory since exec (ru_maxrss would include the parent's before exec)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": hwm / 1024}))
"""

RUN_SARSEN = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import sarsen
safe, dem, out, radiometry, side = sys.argv[1:6]
# chunks of about equal size, multiples of 16 (GeoTIFF blocks): sarsen 0.9.6 fails when its last chunk is
# smaller than its overlap (128)
def even(n, target):
    return 16 * -(-(-(-n // -(-n // target))) // 16)
chunks, radiometry_chunks = even(int(side), 1024), even(int(side), 2048)
t = time.perf_counter()
product = sarsen.Sentinel1SarProduct(safe, measurement_group="IW/VV")
sarsen.terrain_correction(product, dem, output_urlpath=out, correct_radiometry=radiometry or None, chunks=chunks,
                          radiometry_chunks=radiometry_chunks)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": hwm / 1024}))
"""

PREPARE = r"""
import json, sys
from pipeline.core.grid import MapGrid
from pipeline.stages.dem import prepare_dem
world, g, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
grid = MapGrid(g["epsg"], g["left"], g["top"], g["resolution"], g["width"], g["height"])
prepare_dem(world + "/dem", grid, out + "/dem_egm96.tif", out + "/dem_wgs84.tif")
"""


def _run(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


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
    parser.add_argument("--mpx", type=float, nargs="+", default=[1, 10, 100], help="output grid sizes (Mpx)")
    parser.add_argument("--threads", type=int, default=2, help="our compiled kernels' threads")
    parser.add_argument("--sarsen-max-mpx", type=float, default=10.0)
    parser.add_argument("--reference-sample", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of ours per row, the median reported (a few seconds each on a shared machine; "
                             "sarsen's minutes-long run, once, averages the machine's noise by itself)")
    args = parser.parse_args()

    import rasterio

    from pipeline.core.grid import MapGrid
    from pipeline.dem.prepare import grid_lat_lon
    from pipeline.sar import open_product
    from pipeline.sar.lattice import RadarLattice
    from pipeline.simulate.inspect import calibrated_sigma0_db

    try:
        import sarsen  # noqa: F401

        with_sarsen = True
    except ImportError:
        with_sarsen = False
        print("sarsen is not installed (pip install -e \".[bench]\"): our rows only", file=sys.stderr)
    world = Path(args.world)
    truth = json.loads((world / "truth" / "world.json").read_text())
    safe = world / "sentinel1" / f"{truth['sentinel1'][0]['id']}.SAFE"
    g = truth["world_grid"]
    extent = min(g["width"], g["height"]) * g["resolution"] - 2000.0  # inside the world, away from its edges
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for mpx in args.mpx:
            side = int(round((mpx * 1e6) ** 0.5))
            res = extent / side
            grid = MapGrid(g["epsg"], g["left"] + 1000.0, g["top"] - 1000.0, res, side, side)
            spec = {"epsg": grid.epsg, "left": grid.left, "top": grid.top, "resolution": res, "width": side,
                    "height": side}
            _run(PREPARE, str(world), json.dumps(spec), str(tmp))
            dem = tmp / "dem_wgs84.tif"
            mpx = side * side / 1e6
            with_geometry = _run(RUN_OURS, str(safe), str(dem), str(tmp / "bs.tif"), str(tmp / "geo.tif"), "beta0",
                                 str(args.threads))
            rows.append(("ours GTC + geometry layers", mpx, res, with_geometry))
            for kind, quantity, radiometry in (("GTC", "beta0", ""), ("RTC", "gamma0_t", "gamma_bilinear")):
                runs = [_run(RUN_OURS, str(safe), str(dem), str(tmp / "bs.tif"), "", quantity, str(args.threads))
                        for _ in range(args.repeats)]
                ours = {"seconds": float(np.median([r["seconds"] for r in runs])),
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                        "runs_s": [round(r["seconds"], 2) for r in runs]}
                rows.append((f"ours {kind} ({quantity})", mpx, res, ours))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                if with_sarsen and mpx <= args.sarsen_max_mpx:
                    theirs = _run(RUN_SARSEN, str(safe), str(dem), str(tmp / "sarsen.tif"), radiometry, str(side))
                    rows.append((f"sarsen {kind}", mpx, res, theirs))
                    ratios.append((kind, mpx, theirs["seconds"] / ours["seconds"],
                                   theirs["peak_rss_mb"] / ours["peak_rss_mb"]))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

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
        references = [("reference: per-pixel loop", args.reference_sample / 1e6, args.reference_sample / 1e6 / seconds)]

        from pipeline.core.geodesy import geodetic_to_ecef

        # geocoding alone on one 512 x 512 output tile
        centre = side // 2
        tile = (slice(max(centre - 256, 0), centre + 256),) * 2
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
        references.append(("geocoding only: exact Newton, vectorised", n / 1e6, n / 1e6 / exact_s))
        references.append(("geocoding only: lattice lookup + exact timing", n / 1e6, n / 1e6 / lattice_s))
        err = max(np.abs(fast.line - exact.line).max(), np.abs(fast.pixel - exact.pixel).max())

    print(f"machine: {os.cpu_count()} CPUs; world {world}; product {safe.name} (VV); our kernels on "
          f"{args.threads} threads")
    print(f"{'run':34s} {'Mpx':>7s} {'pixel m':>8s} {'seconds':>8s} {'Mpx/s':>8s} {'peak RSS MB':>12s}")
    for name, mpx, res, r in rows:
        print(f"{name:34s} {mpx:7.2f} {res:8.2f} {r['seconds']:8.2f} {mpx / r['seconds']:8.3f} "
              f"{r['peak_rss_mb']:12.0f}")
    for kind, mpx, speed, memory in ratios:
        print(f"{kind} at {mpx:.1f} Mpx: ours {speed:.1f}x faster than sarsen, {memory:.1f}x less memory")
    print(f"{'reference':48s} {'Mpx':>8s} {'Mpx/s':>9s}")
    for name, mpx, rate in references:
        print(f"{name:48s} {mpx:8.3f} {rate:9.3f}")
    print(f"ratio lattice / exact vectorised geocoding: {references[-1][2] / references[-2][2]:.1f}x "
          f"(max difference {err:.4f} px; building the lattice for the whole grid once: {build_s:.2f} s)")


if __name__ == "__main__":
    main()
