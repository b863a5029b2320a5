"""Radiometric calibration and thermal noise removal of GRD digital numbers.

Pure numerics. Lookup tables are sparse vectors, each at one image line
with values at a list of pixels; they are interpolated bilinearly in
(line, pixel), separably (first along pixels within each vector, then
linearly between the two vectors that bracket each line, clamped at the
ends). All powers are linear (never dB).

sigma0 = (DN^2 - noise) / A_sigma^2, and likewise beta0 and gamma0 with
their own LUTs; noise = noiseRangeLut(line, pixel) * noiseAzimuthLut(line)
inside each azimuth block's rectangle (IPF >= 2.9), or noiseLut alone for
older products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class LutVectors:
    """Sparse LUT vectors: ``line[i]`` holds ``values[i]`` at ``pixel[i]`` (ragged lists allowed)."""

    line: NDArray[np.float64]
    pixel: tuple[NDArray[np.float64], ...]
    values: tuple[NDArray[np.float64], ...]

    def __post_init__(self) -> None:
        if not (len(self.line) == len(self.pixel) == len(self.values)) or len(self.line) == 0:
            raise ValueError("LUT vectors need matching, non-empty line, pixel and value lists")
        for p, v in zip(self.pixel, self.values):
            if len(p) != len(v):
                raise ValueError(f"LUT vector has {len(p)} pixels but {len(v)} values")


@dataclass(frozen=True)
class NoiseAzimuthBlock:
    """One azimuth noise vector, applied to the rectangle it names (inclusive bounds)."""

    swath: str
    first_line: int
    last_line: int
    first_pixel: int
    last_pixel: int
    line: NDArray[np.float64]
    values: NDArray[np.float64]


def interpolate_lut(vectors: LutVectors, lines: ArrayLike, pixels: ArrayLike) -> NDArray[np.float64]:
    """LUT values on the grid ``lines`` x ``pixels`` (2-D, (len(lines), len(pixels))), bilinear."""
    lines = np.asarray(lines, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    vl = np.asarray(vectors.line, dtype=np.float64)
    if vl.size == 1:
        along = np.interp(pixels, vectors.pixel[0], vectors.values[0])
        return np.broadcast_to(along, (lines.size, pixels.size)).copy()
    i = np.clip(np.searchsorted(vl, lines, side="right") - 1, 0, vl.size - 2)
    first = int(i.min()) if i.size else 0
    stop = int(i.max()) + 2 if i.size else 2
    # only the vectors that bracket the lines (a window of a product needs a few of its dozens)
    along = np.stack([np.interp(pixels, vectors.pixel[k], vectors.values[k]) for k in range(first, stop)])
    w = np.clip((lines - vl[i]) / (vl[i + 1] - vl[i]), 0.0, 1.0)[:, None]
    return along[i - first] * (1.0 - w) + along[i - first + 1] * w


def noise_power(
    range_vectors: LutVectors,
    azimuth_blocks: tuple[NoiseAzimuthBlock, ...],
    lines: ArrayLike,
    pixels: ArrayLike,
) -> NDArray[np.float64]:
    """Thermal noise power (DN^2) on the grid ``lines`` x ``pixels``.

    Each azimuth block scales only its own rectangle; pixels outside every
    block keep the range LUT alone (products before IPF 2.9 have no blocks).
    """
    lines = np.asarray(lines, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    noise = interpolate_lut(range_vectors, lines, pixels)
    for block in azimuth_blocks:
        rows = (lines >= block.first_line) & (lines <= block.last_line)
        cols = (pixels >= block.first_pixel) & (pixels <= block.last_pixel)
        if not rows.any() or not cols.any():
            continue
        scale = np.interp(lines[rows], block.line, block.values)
        noise[np.ix_(rows, cols)] *= scale[:, None]
    return noise


def calibrate(
    dn: ArrayLike,
    calibration_lut: ArrayLike,
    noise: ArrayLike | None = None,
    floor: float = 1e-5,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Calibrated backscatter (linear) = (DN^2 - noise) / LUT^2, clipped to ``floor``.

    Returns the power and a mask of the pixels that noise removal drove
    below ``floor`` (noise-dominated; they are set to ``floor``, never NaN).
    DN = 0 (the GRD no-data border) gives NaN. One compiled pass in double
    precision (the same operations, in the same order, as the NumPy expression).
    """
    dn = np.asarray(dn)
    shape = dn.shape
    as_2d = (-1, shape[-1]) if dn.ndim else (1, 1)

    def plane(values: ArrayLike) -> NDArray[np.float64]:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype=np.float64), shape)).reshape(as_2d)

    has_noise = noise is not None
    power = np.empty(shape, np.float32)
    clipped = np.empty(shape, np.bool_)
    _calibrate_into(np.ascontiguousarray(dn).reshape(as_2d), plane(calibration_lut),
                    plane(noise) if has_noise else np.zeros((1, 1)), has_noise, float(floor),
                    power.reshape(as_2d), clipped.reshape(as_2d))
    return power, clipped


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _calibrate_into(dn, lut, noise, has_noise, floor, power, clipped):  # pragma: no cover - compiled
    for a in numba.prange(dn.shape[0]):
        for b in range(dn.shape[1]):
            d = np.float64(dn[a, b])
            p = d * d
            if has_noise:
                p = p - noise[a, b]
            p = p / (lut[a, b] * lut[a, b])
            low = p < floor
            if low:
                p = floor
            if d == 0.0:
                p = np.nan
            power[a, b] = p
            clipped[a, b] = low and d != 0.0
