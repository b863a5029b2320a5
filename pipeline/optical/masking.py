"""Optical preparation (pure numerics): scene-classification masking and the per-channel stretch.

As the paper: masked pixels (invalid, cloud shadow, clouds, cirrus, snow by default) are set to 0
in every channel, then each channel is stretched linearly to use [0, 255] (here between
configurable percentiles of its valid pixels, which keeps single bright pixels from flattening
the rest).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def scl_mask(scl: NDArray, masked_classes: list[int] | tuple[int, ...]) -> NDArray[np.bool_]:
    """True where the scene classification is one of ``masked_classes``."""
    return np.isin(scl, np.asarray(masked_classes))


def stretch_to_uint8(reflectance: NDArray, valid: NDArray[np.bool_], percentiles: tuple[float, float]) -> tuple[NDArray[np.uint8], list[tuple[float, float]]]:
    """(C, rows, cols) reflectance -> uint8 in [0, 255] per channel; invalid pixels 0.

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
        scaled = np.clip((band - lo) / (hi - lo), 0.0, 1.0) * 255.0
        out[k] = np.where(valid, np.round(scaled), 0).astype(np.uint8)
        limits.append((float(lo), float(hi)))
    return out, limits
