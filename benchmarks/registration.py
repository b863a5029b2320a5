"""Benchmark: the registration QA of one triplet (the tiles stage's hot path), compiled against the
NumPy version it replaced, same inputs, one run.

The QA measures, window by window (512 x 512, half-overlapping), the shift of the radar (VV dB) and
of the optical luminance against the DEM's predictions (:func:`pipeline.stages.tiles.measure_registration`).
The previous implementation (kept here as the reference) did the same with ``numpy.fft`` (double
work for single-precision input), NumPy gradients and SciPy morphology; the current one uses
``scipy.fft`` in single precision, one compiled pass for the unit orientations, a separable phase
ramp and a separable shift of an all-valid mask. Prints seconds per image and the largest
difference of the estimates (px, quality).

    python benchmarks/registration.py [--results results/bench --triplet 20200402]

Without arguments it uses the default world's first triplet (``results/``; run
``snakemake --cores 2 dataset`` first).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from scipy import ndimage

from pipeline.dataset import registration as reg
from pipeline.io.rasters import grid_of


def _orientation_numpy(image: NDArray, valid: NDArray[np.bool_], smooth_px: float) -> NDArray[np.complex64]:
    x = np.asarray(image, dtype=np.float32)
    good = valid & np.isfinite(x)
    x = np.where(good, x, x[good].mean(dtype=np.float64).astype(np.float32))
    if smooth_px > 0:
        x = ndimage.gaussian_filter(x, smooth_px)
    gy, gx = np.gradient(x)
    g = gx + 1j * gy
    magnitude = np.abs(g)
    tiny = np.finfo(np.float32).tiny
    g = np.where(magnitude > 1e-12 * (magnitude.max() or 1.0), g / np.maximum(magnitude, tiny), 0)
    g[ndimage.binary_dilation(~good, iterations=2)] = 0
    return g * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1])).astype(np.float32)


def _peak_offset_numpy(a_spectrum_conj, b, radius):
    cc = np.fft.ifft2(np.fft.fft2(b) * a_spectrum_conj).real
    cc = np.fft.fftshift(cc)
    cy, cx = cc.shape[0] // 2, cc.shape[1] // 2
    r = min(radius, cy - 1, cx - 1)
    win = cc[cy - r:cy + r + 1, cx - r:cx + r + 1]
    py, px = np.unravel_index(int(np.argmax(win)), win.shape)
    py, px = min(max(py, 1), 2 * r - 1), min(max(px, 1), 2 * r - 1)

    def vertex(m1, c0, p1):
        d = m1 - 2 * c0 + p1
        return 0.0 if d >= 0 else float(np.clip(0.5 * (m1 - p1) / d, -0.5, 0.5))

    return (py - r + vertex(win[py - 1, px], win[py, px], win[py + 1, px]),
            px - r + vertex(win[py, px - 1], win[py, px], win[py, px + 1]))


def estimate_shift_numpy(measured, predicted, valid=None, smooth_px=1.0, max_shift_px=16, min_valid_fraction=0.5,
                         iterations=4) -> reg.Shift:
    """The previous :func:`pipeline.dataset.registration.estimate_shift`."""
    measured = np.asarray(measured, dtype=np.float64)
    valid = np.isfinite(measured) if valid is None else (np.asarray(valid, bool) & np.isfinite(measured))
    valid &= np.isfinite(predicted)
    if valid.mean() < min_valid_fraction:
        return reg.NO_SHIFT
    a = _orientation_numpy(predicted, valid, smooth_px)
    filled = np.where(valid, measured, measured[valid].mean()).astype(np.float32)
    spectrum = np.fft.rfft2(filled)
    rows_cycles = np.fft.fftfreq(filled.shape[0])[:, None]
    cols_cycles = np.fft.rfftfreq(filled.shape[1])[None, :]
    total = np.zeros(2)

    def moved_back():
        if not total.any():
            return _orientation_numpy(filled, valid, smooth_px)
        ramp = np.exp(2j * np.pi * (rows_cycles * total[0] + cols_cycles * total[1])).astype(np.complex64)
        moved = np.fft.irfft2(spectrum * ramp, s=filled.shape)
        moved_valid = ndimage.shift(valid.astype(np.float32), -total, order=1, mode="constant") > 0.5
        return _orientation_numpy(moved, moved_valid & valid, smooth_px)

    a_spectrum_conj = np.conj(np.fft.fft2(a))
    for k in range(iterations):
        step = np.array(_peak_offset_numpy(a_spectrum_conj, moved_back(), max_shift_px if k == 0 else 2))
        total += step
        if np.abs(step).max() < 0.005:
            break
    if np.abs(total).max() > max_shift_px:
        return reg.NO_SHIFT
    b = moved_back()
    a, b = a.astype(np.complex128), b.astype(np.complex128)
    quality = float(np.real(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
    return reg.Shift(float(total[1]), float(total[0]), quality)


def triplet_images(results: Path, triplet_id: str | None) -> tuple[str, list[tuple[str, NDArray, NDArray, NDArray]]]:
    """The tiles stage's inputs of one triplet: (name, measured, predicted, valid) for the radar and the optical."""
    triplets = json.loads((results / "dataset" / "triplets.json").read_text())
    t = next(t for t in triplets if triplet_id in (None, t["id"]))
    with rasterio.open(results / "sar" / f"{t['s1']}_backscatter.tif") as src:
        sar_db, tags, grid = src.read(1).astype(np.float32), src.tags(), grid_of(src)
    with rasterio.open(results / "optical" / f"{t['s2']}.tif") as src:
        optical = src.read()
    info = json.loads((results / "optical" / f"{t['s2']}.json").read_text())
    with rasterio.open(results / "dem" / "dem_normalised.tif") as src:
        height_m = src.read(1).astype(np.float32) * float(src.tags()["dem_max_m"])
    sar_predicted = reg.sar_prediction_db(height_m, grid.resolution, float(tags["incidence_angle_deg"]),
                                          float(tags["platform_heading_deg"]), tags.get("look_side", "right") == "right")
    optical_predicted = reg.optical_prediction(height_m, grid.resolution, info["sun_zenith_deg"],
                                               info["sun_azimuth_deg"])
    return t["id"], [("SAR (VV dB)", sar_db, sar_predicted, np.isfinite(sar_db)),
                     ("optical", optical[:3].astype(np.float32).mean(axis=0), optical_predicted, optical[3] > 0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--triplet", default=None, help="triplet id (default: the first)")
    ap.add_argument("--window-px", type=int, default=512, help="window size (twice the patch size)")
    args = ap.parse_args()
    triplet, images = triplet_images(args.results, args.triplet)
    reg.estimate_shift(np.zeros((8, 8)), np.zeros((8, 8)))  # load the compiled kernels
    print(f"triplet {triplet}, windows of {args.window_px} px")
    print(f"{'image':<12} {'windows':>7} {'numpy s':>8} {'now s':>7} {'ratio':>6} {'max |d shift| px':>17} "
          f"{'max |d quality|':>16}")
    for name, measured, predicted, valid in images:
        size, windows = reg.grid_windows(*measured.shape, args.window_px)
        t = time.perf_counter()
        before = [estimate_shift_numpy(measured[r:r + size, c:c + size], predicted[r:r + size, c:c + size],
                                       valid[r:r + size, c:c + size]) for r, c in windows]
        t_before = time.perf_counter() - t
        t = time.perf_counter()
        now = reg.window_shifts(measured, predicted, valid, windows, size)
        t_now = time.perf_counter() - t
        pairs = [(a, b) for a, b in zip(before, now) if np.isfinite(a.quality) or np.isfinite(b.quality)]
        same_found = all(np.isfinite(a.quality) == np.isfinite(b.quality) for a, b in pairs)
        d_shift = max((max(abs(a.dx_px - b.dx_px), abs(a.dy_px - b.dy_px)) for a, b in pairs), default=0.0)
        d_quality = max((abs(a.quality - b.quality) for a, b in pairs), default=0.0)
        print(f"{name:<12} {len(windows):>7} {t_before:>8.2f} {t_now:>7.2f} {t_before / t_now:>6.1f} "
              f"{d_shift if same_found else float('nan'):>17.2e} {d_quality:>16.2e}")


if __name__ == "__main__":
    main()
