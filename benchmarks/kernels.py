"""Benchmark: the compiled inner kernels against the NumPy versions they replaced, same inputs, one run.

- ``pipeline.sar.radiometry.splat``, bilinear accumulation (terrain flattening's projected areas,
  the simulator's radar image), against four masked ``np.bincount`` passes;
- ``RadarLattice.interpolate_many``, trilinear interpolation of the radar-timing lattice (every
  terrain-corrected pixel, every simulated facet), against eight broadcast NumPy passes.

    python benchmarks/kernels.py [--sizes 1 4 16] (millions of points)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.sar.lattice import RadarLattice
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


def trilinear_numpy(lattice, names, easting_m, northing_m, height_m):
    """The previous ``interpolate_many``: eight corner passes with broadcast temporaries."""
    cols = [lattice.names.index(n) for n in names]
    flat = lattice.stack[..., cols].reshape(-1, len(cols))
    fi = (np.asarray(northing_m, dtype=np.float64) - lattice.n0) / lattice.step
    fj = (np.asarray(easting_m, dtype=np.float64) - lattice.e0) / lattice.step
    fk = (np.asarray(height_m, dtype=np.float64) - lattice.h0) / lattice.hstep
    fi, fj, fk = np.broadcast_arrays(fi, fj, fk)
    shape = lattice.shape
    i = np.clip(np.floor(fi).astype(np.int64), 0, shape[0] - 2)
    j = np.clip(np.floor(fj).astype(np.int64), 0, shape[1] - 2)
    k = np.clip(np.floor(fk).astype(np.int64), 0, shape[2] - 2)
    wi, wj, wk = (fi - i)[..., None], (fj - j)[..., None], (fk - k)[..., None]
    base = (i * shape[1] + j) * shape[2] + k
    si, sj = shape[1] * shape[2], shape[2]
    out = np.zeros(fi.shape + (len(cols),))
    for di, ai in ((0, 1 - wi), (1, wi)):
        for dj, aj in ((0, 1 - wj), (1, wj)):
            aij = ai * aj
            for dk, ak in ((0, 1 - wk), (1, wk)):
                out += (aij * ak) * flat[base + di * si + dj * sj + dk]
    return {n: out[..., q] for q, n in enumerate(names)}


def synthetic_lattice(rng) -> RadarLattice:
    """A lattice of the usual size (40 x 50 x 20 nodes, 500 m / 250 m steps) with random fields: the kernel's
    cost does not depend on what the fields hold."""
    lattice = RadarLattice.__new__(RadarLattice)
    lattice.names = ("zero_doppler_time_s", "slant_range_m", "elevation_deg", "los_x", "los_y", "los_z")
    lattice.shape = (40, 50, 20)
    lattice.stack = rng.normal(size=lattice.shape + (6,)) * 1e5
    lattice.n0, lattice.e0, lattice.h0, lattice.step, lattice.hstep = 5.0e6, 3.0e5, -500.0, 500.0, 250.0
    return lattice


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
    print("splat (bilinear accumulation into 1000 x 1000)")
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

    lattice = synthetic_lattice(rng)
    names = ("zero_doppler_time_s", "slant_range_m")
    lattice.interpolate_many(names, np.zeros(1), np.zeros(1), np.zeros(1))  # compile
    print("\ninterpolate_many (trilinear, 2 fields, a map grid at random heights)")
    print(f"{'Mpts':>6} {'numpy s':>11} {'numba s':>9} {'ratio':>6} {'max rel diff':>13}")
    for mpts in args.sizes:
        side = int(np.sqrt(mpts * 1e6))
        easting = np.linspace(3.0e5 - 1000, 3.0e5 + 26000, side)[None, :]
        northing = np.linspace(5.0e6 - 1000, 5.0e6 + 20000, side)[:, None]
        height = rng.uniform(-600, 4800, (side, side))
        a = trilinear_numpy(lattice, names, easting, northing, height)
        b = lattice.interpolate_many(names, easting, northing, height)
        diff = max(float(np.max(np.abs(a[n] - b[n]) / np.abs(a[n]).max())) for n in names)
        t0 = best_of(trilinear_numpy, lattice, names, easting, northing, height)
        t1 = best_of(lattice.interpolate_many, names, easting, northing, height)
        print(f"{mpts:>6g} {t0:>11.3f} {t1:>9.3f} {t0 / t1:>6.1f} {diff:>13.1e}")


if __name__ == "__main__":
    main()
