"""Optical preparation (pure numerics): scene-classification masking and the per-channel stretch.

As the paper: masked pixels (invalid, cloud shadow, clouds, cirrus, snow by default) are set to 0
in every channel, then each channel is stretched linearly to use [1, 255] (here between
configurable percentiles of its valid pixels, which keeps single bright pixels from flattening
the rest; 0 stays reserved for masked pixels). Beyond the paper, the mask can be grown by a few
pixels (cloud and snow fringes that the scene classification misses) and small isolated valid
islands dropped.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


def scl_mask(scl: NDArray, masked_classes: list[int] | tuple[int, ...]) -> NDArray[np.bool_]:
    """True where the scene classification is one of ``masked_classes``."""
    return np.isin(scl, np.asarray(masked_classes))


def stretch_to_uint8(reflectance: NDArray, valid: NDArray[np.bool_], percentiles: tuple[float, float]) -> tuple[NDArray[np.uint8], list[tuple[float, float]]]:
    """(C, rows, cols) reflectance -> uint8 per channel: valid pixels in [1, 255], invalid pixels 0.

    0 is reserved for masked pixels, so a valid pixel never looks masked (the ``valid`` layer
    says the same).

    Returns the image and each channel's (low, high) stretch limits (reflectance).
    """
    out = np.zeros(reflectance.shape, np.uint8)
    limits = []
    for k, band in enumerate(reflectance):
        values = band[valid & np.isfinite(band)]
        if values.size == 0:
            limits.append((0.0, 0.0))
            continue
        lo, hi = np.percentile(values, percentiles)
        del values
        hi = hi if hi > lo else lo + 1e-6
        for r in range(0, band.shape[0], 256):  # rows at a time: the float temporaries stay small
            rows = slice(r, r + 256)
            scaled = 1.0 + np.clip((band[rows] - lo) / (hi - lo), 0.0, 1.0) * 254.0
            out[k, rows] = np.where(valid[rows], np.round(scaled), 0).astype(np.uint8)
        limits.append((float(lo), float(hi)))
    return out, limits


@numba.njit(cache=True)
def _dilate_disk(mask: NDArray[np.bool_], reach: NDArray[np.int64]) -> NDArray[np.bool_]:  # pragma: no cover
    """True where a True pixel of ``mask`` lies at row offset ``di`` and column offset at most
    ``reach[di + radius]`` (radius = ``(reach.size - 1) // 2``). Per row, the column distance to the
    nearest True pixel (two sweeps), then per pixel one look at each of the 2 radius + 1 rows."""
    rows, cols = mask.shape
    radius = (reach.size - 1) // 2
    far = radius + 1  # any distance beyond the disk
    dist = np.empty((rows, cols), np.int16)
    for i in range(rows):
        d = far
        for j in range(cols):
            d = 0 if mask[i, j] else min(d + 1, far)
            dist[i, j] = d
        d = far
        for j in range(cols - 1, -1, -1):
            d = 0 if mask[i, j] else min(d + 1, far)
            dist[i, j] = min(dist[i, j], d)
    out = np.zeros((rows, cols), np.bool_)
    for i in range(rows):
        for di in range(-radius, radius + 1):
            ii = i + di
            if ii < 0 or ii >= rows:
                continue
            w = reach[di + radius]
            for j in range(cols):
                if dist[ii, j] <= w:
                    out[i, j] = True
    return out


def dilate_disk(mask: NDArray[np.bool_], radius_px: float) -> NDArray[np.bool_]:
    """``mask`` grown by ``radius_px`` (Euclidean, pixels): True within ``radius_px`` of a True pixel,
    i.e. ``distance_transform_edt(~mask) <= radius_px``, with a bool and an int16 array of the mask's
    size instead of the transform's float64 distances and int32 features (10 bytes more a pixel)."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    radius = int(np.floor(radius_px))
    if radius_px < 0 or not mask.any():
        return np.zeros_like(mask) if radius_px < 0 else mask.copy()
    di = np.arange(-radius, radius + 1)
    reach = np.floor(np.sqrt(np.maximum(radius_px**2 - di**2, 0))).astype(np.int64)
    while True:  # floor(sqrt) exactly: the largest dj with di^2 + dj^2 <= radius^2
        over = di**2 + reach**2 > radius_px**2
        under = di**2 + (reach + 1) ** 2 <= radius_px**2
        if not (over.any() or under.any()):
            break
        reach = reach - over + under
    return _dilate_disk(mask, reach)


def refine_mask(masked: NDArray[np.bool_], dilation_px: int, min_island_px: int) -> NDArray[np.bool_]:
    """The mask grown by ``dilation_px`` (Euclidean distance, pixels), then valid regions smaller than
    ``min_island_px`` pixels (4-connected) added to it."""
    out = np.asarray(masked, dtype=bool)
    if dilation_px > 0 and out.any():
        out = dilate_disk(out, dilation_px)
    if min_island_px > 0 and out.any():
        labels, n = ndimage.label(~out)
        if n:
            sizes = np.bincount(labels.ravel(), minlength=n + 1)
            small = sizes < min_island_px
            small[0] = False
            out = out | small[labels]
    return out


def fringe_statistic(image: NDArray, valid: NDArray[np.bool_], distance_px: float = 8.0) -> tuple[float, float]:
    """Mean value of the valid pixels within ``distance_px`` of a masked pixel, and of those further away.

    ``image``: (C, rows, cols) or (rows, cols); the mean runs over channels too. NaN where a group is empty.
    Bright fringes around masked clouds and snow show as a first value well above the second.
    """
    valid = np.asarray(valid, dtype=bool)
    if valid.all():
        return float("nan"), float(np.mean(image))
    near = dilate_disk(~valid, distance_px) & valid
    far = valid & ~near
    channels = np.asarray(image)
    channels = channels if channels.ndim == 3 else channels[None]
    # every channel counts the same pixels: the mean over all is the mean of the channels' means
    mean = lambda m: float(np.mean([c[m].mean(dtype=np.float64) for c in channels])) if m.any() else float("nan")  # noqa: E731
    return mean(near), mean(far)
