"""Quicklook images: SAR false colour, DEM hillshade, optical RGB, scene classification.

Pure numerics returning uint8 RGB arrays (rows, cols, 3); :func:`save_png`
writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pipeline.io.atomic import atomic_path

#: Colours of the L2A scene classes 0-11 (ESA's usual palette).
SCL_COLOURS = np.array(
    [
        [0, 0, 0], [255, 0, 0], [47, 47, 47], [100, 50, 0], [0, 160, 0], [255, 230, 90],
        [0, 0, 255], [128, 128, 128], [160, 160, 160], [255, 255, 255], [100, 200, 255], [255, 150, 255],
    ],
    np.uint8,
)


def stretch(x: NDArray, lo: float, hi: float) -> NDArray[np.uint8]:
    """Linear stretch of [lo, hi] to [0, 255] (NaN -> 0)."""
    y = np.clip((np.nan_to_num(x, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    return (255 * y).astype(np.uint8)


def percentile_stretch(x: NDArray, low: float = 2.0, high: float = 98.0) -> NDArray[np.uint8]:
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros(x.shape, np.uint8)
    lo, hi = np.percentile(finite, [low, high])
    return stretch(x, float(lo), float(hi) if hi > lo else float(lo) + 1e-6)


def sar_rgb(vv_db: NDArray, vh_db: NDArray) -> NDArray[np.uint8]:
    """[VV, VH, 0] in dB, VV over -25..0 dB and VH over -32..-7 dB."""
    return np.dstack([stretch(vv_db, -25.0, 0.0), stretch(vh_db, -32.0, -7.0), np.zeros(vv_db.shape, np.uint8)])


def hillshade(
    height_m: NDArray, pixel_m: float | tuple[float, float], azimuth_deg: float = 315.0, altitude_deg: float = 45.0
) -> NDArray[np.uint8]:
    """Grey hillshade (rows north to south), light from ``azimuth_deg`` clockwise from north.

    ``pixel_m``: one spacing, or (dy, dx) for non-square pixels (1 arc-second grids).
    """
    dy, dx = (pixel_m, pixel_m) if np.isscalar(pixel_m) else pixel_m
    dzdy, dzdx = np.gradient(np.asarray(height_m, dtype=np.float64), dy, dx)
    nx, ny, nz = -dzdx, dzdy, np.ones_like(dzdx)
    norm = np.sqrt(nx**2 + ny**2 + 1.0)
    az, alt = np.radians(azimuth_deg), np.radians(altitude_deg)
    shade = (nx * np.sin(az) * np.cos(alt) + ny * np.cos(az) * np.cos(alt) + nz * np.sin(alt)) / norm
    grey = stretch(np.nan_to_num(shade, nan=0.0), 0.0, 1.0)
    return np.dstack([grey] * 3)


def scl_rgb(scl: NDArray) -> NDArray[np.uint8]:
    return SCL_COLOURS[np.clip(scl, 0, 11)]


def save_png(path: str | Path, rgb: NDArray[np.uint8], max_size: int | None = None) -> Path:
    """Write an RGB image as PNG (atomically), shrunk to ``max_size`` pixels on its longer side if given."""
    img = Image.fromarray(rgb)
    if max_size and max(img.size) > max_size:
        img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def mosaic(tiles: list[NDArray[np.uint8]], gap: int = 8) -> NDArray[np.uint8]:
    """Side-by-side panels of equal height (shorter ones padded)."""
    h = max(t.shape[0] for t in tiles)
    padded = [np.pad(t, ((0, h - t.shape[0]), (0, gap), (0, 0)), constant_values=255) for t in tiles]
    return np.concatenate(padded, axis=1)
