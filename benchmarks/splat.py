"""Benchmark: bilinear accumulation (``pipeline.sar.radiometry.splat``: terrain flattening's projected
areas, the simulator's radar image) against the NumPy ``bincount`` version it replaced, same inputs, one run.

    python benchmarks/splat.py [--sizes 1 4 16] (millions of points; image 1000 x 1000)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.sar.radiometry import splat


def splat_bincount(line, pixel, values, shape):
    """The previous implementation: four masked ``np.bincount`` passes."""
    l, p, v = np.ravel(line), np.ravel(pixel), np.ravel(values).astype(np.float64)
    l0, p0 = np.floor(l).astype(np.int64), np.floor(p).astype(np.int64)
    fl, fp = l - l0, p - p0
    out = np.zeros(shape[0] * shape[1])
    for dl, wl in ((0, 1 - fl), (1, fl)):
        for dp, wp in ((0, 1 - fp), (1, fp)):
            li, pi = l0 + dl, p0 + dp
            ok = (li >= 0) & (li < shape[0]) & (pi >= 0) & (pi < shape[1])
            out += np.bincount(li[ok] * shape[1] + pi[ok], weights=(v * wl * wp)[ok], minlength=out.size)
    return out.reshape(shape)


def best_of(fn, *args, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16], help="millions of points")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    shape = (1000, 1000)
    splat(np.zeros(1), np.zeros(1), np.ones(1), shape)  # compile (cached on disk after the first run)
    print(f"{'Mpts':>6} {'bincount s':>11} {'numba s':>9} {'ratio':>6} {'max rel diff':>13}")
    for mpts in args.sizes:
        side = int(np.sqrt(mpts * 1e6))  # a map grid scanned row by row, as facets or DEM cells arrive
        rows, cols = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side), indexing="ij")
        line = -2 + 1004 * (0.9 * rows + 0.1 * cols) + rng.normal(0, 0.5, rows.shape)
        pixel = -2 + 1004 * (0.95 * cols - 0.05 * rows) + rng.normal(0, 0.5, rows.shape)
        values = rng.uniform(0, 1, rows.shape)
        a, b = splat_bincount(line, pixel, values, shape), splat(line, pixel, values, shape)
        diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))
        t0 = best_of(splat_bincount, line, pixel, values, shape)
        t1 = best_of(splat, line, pixel, values, shape)
        print(f"{mpts:>6g} {t0:>11.3f} {t1:>9.3f} {t0 / t1:>6.1f} {diff:>13.1e}")


if __name__ == "__main__":
    main()
