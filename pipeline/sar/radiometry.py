"""Radiometric helpers in radar geometry: bilinear accumulation, interpolation, terrain flattening, dB.

Pure numerics. Powers are linear unless a name says dB.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


def splat(
    line: NDArray, pixel: NDArray, values: NDArray, shape: tuple[int, int]
) -> NDArray[np.float64]:
    """Sum ``values`` into an image of ``shape`` at fractional (line, pixel), bilinear weights."""
    l = np.ravel(line)
    p = np.ravel(pixel)
    v = np.ravel(values).astype(np.float64)
    l0 = np.floor(l).astype(np.int64)
    p0 = np.floor(p).astype(np.int64)
    fl, fp = l - l0, p - p0
    out = np.zeros(shape[0] * shape[1])
    for dl, wl in ((0, 1 - fl), (1, fl)):
        for dp, wp in ((0, 1 - fp), (1, fp)):
            li, pi = l0 + dl, p0 + dp
            ok = (li >= 0) & (li < shape[0]) & (pi >= 0) & (pi < shape[1])
            out += np.bincount(li[ok] * shape[1] + pi[ok], weights=(v * wl * wp)[ok], minlength=out.size)
    return out.reshape(shape)



def sample_bilinear(image: NDArray, line: NDArray, pixel: NDArray) -> NDArray[np.float32]:
    """Bilinear interpolation of ``image`` at fractional (line, pixel); NaN outside or next to NaN."""
    l = np.asarray(line, dtype=np.float64)
    p = np.asarray(pixel, dtype=np.float64)
    rows, cols = image.shape
    l0 = np.floor(l).astype(np.int64)
    p0 = np.floor(p).astype(np.int64)
    inside = (l0 >= 0) & (l0 < rows - 1) & (p0 >= 0) & (p0 < cols - 1)
    l0c = np.clip(l0, 0, rows - 2)
    p0c = np.clip(p0, 0, cols - 2)
    fl, fp = l - l0c, p - p0c
    img = np.asarray(image, dtype=np.float64)
    out = (
        img[l0c, p0c] * (1 - fl) * (1 - fp)
        + img[l0c + 1, p0c] * fl * (1 - fp)
        + img[l0c, p0c + 1] * (1 - fl) * fp
        + img[l0c + 1, p0c + 1] * fl * fp
    )
    return np.where(inside, out, np.nan).astype(np.float32)


def sample_bicubic(image: NDArray, line: NDArray, pixel: NDArray) -> NDArray[np.float32]:
    """Cubic-spline interpolation at fractional (line, pixel); NaN outside or where bilinear is NaN.

    NaNs are replaced by 0 before the spline prefilter, and every point whose
    bilinear neighbourhood holds a NaN is masked.
    """
    img = np.asarray(image, dtype=np.float64)
    nan = ~np.isfinite(img)
    out = ndimage.map_coordinates(np.where(nan, 0.0, img), [line, pixel], order=3, mode="nearest")
    mask = sample_bilinear(nan.astype(np.float32), line, pixel)
    return np.where(np.isfinite(mask) & (mask == 0), out, np.nan).astype(np.float32)


def to_db(power: NDArray, floor_db: float) -> NDArray[np.float32]:
    """10 log10(power), clipped below at ``floor_db``; NaN stays NaN."""
    p = np.asarray(power, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(p)
    return np.where(np.isnan(p), np.nan, np.maximum(db, floor_db)).astype(np.float32)


def flattening_area(
    line: NDArray, pixel: NDArray, projected_area_m2: NDArray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0)
) -> NDArray[np.float64]:
    """Illuminated area (m^2) per radar pixel (Small 2011): each facet's area projected onto the plane
    perpendicular to the line of sight (0 when it faces away), summed into the radar pixels it maps to.

    ``origin`` is the (line, pixel) of the accumulator's first element.
    """
    return splat(np.asarray(line) - origin[0], np.asarray(pixel) - origin[1], projected_area_m2, shape)
