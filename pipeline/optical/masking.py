"""Optical preparation (pure numerics): scene-classification masking and the per-channel stretch.

As the paper: masked pixels (invalid, cloud shadow, clouds, cirrus, snow by default) are set to 0
in every channel, then each channel is stretched linearly to use [1, 255] (here between
configurable percentiles of its valid pixels, which keeps single bright pixels from flattening
the rest; 0 stays reserved for masked pixels). Beyond the paper, the mask can be grown by a few
pixels (cloud and snow fringes that the scene classification misses) and small isolated valid
islands dropped.
"""

from __future__ import annotations

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
        hi = hi if hi > lo else lo + 1e-6
        scaled = 1.0 + np.clip((band - lo) / (hi - lo), 0.0, 1.0) * 254.0
        out[k] = np.where(valid, np.round(scaled), 0).astype(np.uint8)
        limits.append((float(lo), float(hi)))
    return out, limits


def refine_mask(masked: NDArray[np.bool_], dilation_px: int, min_island_px: int) -> NDArray[np.bool_]:
    """The mask grown by ``dilation_px`` (Euclidean distance, pixels), then valid regions smaller than
    ``min_island_px`` pixels (4-connected) added to it."""
    out = np.asarray(masked, dtype=bool)
    if dilation_px > 0 and out.any():
        out = ndimage.distance_transform_edt(~out) <= dilation_px
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
    near = (ndimage.distance_transform_edt(valid) <= distance_px) & valid
    far = valid & ~near
    values = np.asarray(image, dtype=np.float64)
    values = values if values.ndim == 3 else values[None]
    mean = lambda m: float(values[:, m].mean()) if m.any() else float("nan")  # noqa: E731
    return mean(near), mean(far)
