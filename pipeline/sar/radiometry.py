"""Radiometric helpers in radar geometry: bilinear accumulation, interpolation, terrain flattening, dB.

Pure numerics. Powers are linear unless a name says dB.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray


def splat(
    line: NDArray, pixel: NDArray, values: NDArray, shape: tuple[int, int], out: NDArray[np.float64] | None = None,
    origin: tuple[float, float] = (0, 0),
) -> NDArray[np.float64]:
    """Sum ``values`` into an image of ``shape`` at fractional (line, pixel), bilinear weights.

    Each value goes to the four pixels around its position with weights (1 - fl, fl) x (1 - fp, fp),
    where (fl, fp) are the fractional parts; contributions outside the image are dropped, as are
    positions that are not finite. ``origin``: the (line, pixel) of the image's first element.
    ``out``: a float64 C-contiguous image of ``shape`` to add into (in place) instead of a new one.

    One compiled pass, no temporaries (numba), in parallel over bands of the image's lines that the
    positions reach: each thread reads every position and adds those that fall in its band, in their
    order, so every pixel sums its values in the same order as one thread would (the same bits).
    """
    l = np.ascontiguousarray(np.ravel(line), dtype=np.float64)
    p = np.ascontiguousarray(np.ravel(pixel), dtype=np.float64)
    v = np.ascontiguousarray(np.ravel(values), dtype=np.float64)
    if out is None:
        out = np.zeros(shape, dtype=np.float64)
    elif out.shape != tuple(shape) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {tuple(shape)}")
    _splat_into(l, p, v, float(origin[0]), float(origin[1]), out, numba.get_num_threads())
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _splat_into(line, pixel, values, line0, pixel0, out, threads):  # pragma: no cover - compiled
    rows, cols = out.shape
    first, last = rows, -1  # the image lines the positions reach
    for i in range(line.size):
        li = line[i] - line0
        if li > -1.0 and li < rows:  # also False for NaN
            l0 = int(np.floor(li))
            first, last = min(first, max(l0, 0)), max(last, min(l0 + 1, rows - 1))
    bands = max(min(threads, last - first + 1), 1)
    for band in numba.prange(bands):
        band_first = first + band * (last - first + 1) // bands
        band_stop = first + (band + 1) * (last - first + 1) // bands
        for i in range(line.size):
            li, pi = line[i] - line0, pixel[i] - pixel0
            if not (li > -1.0 and li < rows and pi > -1.0 and pi < cols):  # also False for NaN
                continue
            l0, p0 = int(np.floor(li)), int(np.floor(pi))
            if l0 + 1 < band_first or l0 >= band_stop:
                continue
            fl, fp = li - l0, pi - p0
            for dl in range(2):
                r = l0 + dl
                if r < band_first or r >= band_stop:
                    continue
                vl = values[i] * (fl if dl else 1.0 - fl)
                for dp in range(2):
                    c = p0 + dp
                    if 0 <= c < cols:
                        out[r, c] += vl * (fp if dp else 1.0 - fp)


def sample_bilinear(image: NDArray, line: NDArray, pixel: NDArray,
                    origin: tuple[float, float] = (0, 0)) -> NDArray[np.float32]:
    """Bilinear interpolation of ``image`` at fractional (line, pixel); NaN outside or next to NaN.
    ``origin``: the (line, pixel) of the image's first element.

    One compiled pass (numba, in parallel), in float64 whatever the image's type; the origin subtracted
    there (no temporaries).
    """
    l = np.ascontiguousarray(line, dtype=np.float64)
    p = np.ascontiguousarray(pixel, dtype=np.float64)
    l, p = np.broadcast_arrays(l, p)
    out = np.empty(l.shape, np.float32)
    _bilinear_into(np.ascontiguousarray(image), np.ascontiguousarray(l).ravel(), np.ascontiguousarray(p).ravel(),
                   float(origin[0]), float(origin[1]), out.reshape(-1))
    return out


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _bilinear_into(image, line, pixel, line0, pixel0, out):  # pragma: no cover - compiled
    rows, cols = image.shape
    for k in numba.prange(line.size):
        li, pi = line[k] - line0, pixel[k] - pixel0
        if not (li >= 0.0 and li < rows - 1 and pi >= 0.0 and pi < cols - 1):  # also False for NaN
            out[k] = np.nan
            continue
        l0, p0 = int(li), int(pi)
        fl, fp = li - l0, pi - p0
        out[k] = (np.float64(image[l0, p0]) * (1 - fl) * (1 - fp) + np.float64(image[l0 + 1, p0]) * fl * (1 - fp)
                  + np.float64(image[l0, p0 + 1]) * (1 - fl) * fp + np.float64(image[l0 + 1, p0 + 1]) * fl * fp)


def sample_bicubic(image: NDArray, line: NDArray, pixel: NDArray,
                   origin: tuple[float, float] = (0, 0)) -> NDArray[np.float32]:
    """Cubic-spline interpolation at fractional (line, pixel); NaN outside or where bilinear is NaN.
    ``origin``: the (line, pixel) of the image's first element.

    NaNs are replaced by 0 before the spline prefilter, and every point whose
    bilinear neighbourhood holds a NaN is masked.
    """
    from scipy import ndimage  # here: importing it takes 0.17 s of every job's start, most never resample so

    line, pixel = np.asarray(line) - origin[0], np.asarray(pixel) - origin[1]
    img = np.asarray(image, dtype=np.float64)
    nan = ~np.isfinite(img)
    out = ndimage.map_coordinates(np.where(nan, 0.0, img), [line, pixel], order=3, mode="nearest")
    mask = sample_bilinear(nan.astype(np.float32), line, pixel)
    return np.where(np.isfinite(mask) & (mask == 0), out, np.nan).astype(np.float32)


def to_db(power: NDArray, floor_db: float) -> NDArray[np.float32]:
    """10 log10(power) in float64, clipped below at ``floor_db``, as float32: 0 gives the floor, NaN and
    negative powers NaN. In place on one float64 copy: 2.7 ns a pixel, where the same expression with a
    temporary per step took 10 ns (7 % of a terrain correction at 100 Mpx) and a compiled loop 7 ns
    (scalar log10, where NumPy's is vectorised)."""
    db = np.array(power, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log10(db, out=db)
    db *= 10.0
    np.maximum(db, floor_db, out=db)  # NaN propagates
    return db.astype(np.float32)


def flattening_area(
    line: NDArray, pixel: NDArray, projected_area_m2: NDArray, shape: tuple[int, int], origin: tuple[int, int] = (0, 0),
    out: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Illuminated area (m^2) per radar pixel (Small 2011): each facet's area projected onto the plane
    perpendicular to the line of sight (0 when it faces away), summed into the radar pixels it maps to.

    ``origin`` is the (line, pixel) of the accumulator's first element; ``out``: an accumulator to add
    into (see :func:`splat`).
    """
    return splat(line, pixel, projected_area_m2, shape, out, origin)
