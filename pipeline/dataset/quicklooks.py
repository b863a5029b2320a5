"""Quicklook PNG per triplet: SAR [VV, VH, 0], DEM, optical RGB, distortion overlay (side by side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from .. import quicklook as q
from ..sar import distortion as dist


def distortion_rgb(flags: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Grey background with foreshortening green, layover yellow, shadow blue."""
    rgb = np.dstack([background] * 3).astype(np.uint8)
    rgb[(flags & dist.FORESHORTENING) > 0] = (90, 190, 90)
    rgb[(flags & dist.LAYOVER) > 0] = (255, 215, 0)
    rgb[(flags & dist.SHADOW) > 0] = (40, 60, 220)
    return rgb


def triplet_quicklooks(triplets: list[dict], sar: list[Path], flags: list[Path], optical: list[Path], dem: Path,
                       out_dir: Path, max_size: int = 700) -> list[Path]:
    """One PNG per triplet; ``sar``, ``flags`` and ``optical`` are the triplets' rasters, in their order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dem) as src:
        dem_values = src.read(1)
    dem_grey = q.stretch(dem_values, float(np.nanmin(dem_values)), float(np.nanmax(dem_values)))
    written = []
    for t, sar_tif, flags_tif, optical_tif in zip(triplets, sar, flags, optical, strict=True):
        with rasterio.open(sar_tif) as src:
            sar_rgb = q.sar_rgb(src.read(1), src.read(2))
        with rasterio.open(flags_tif) as src:
            flag_values = src.read(1)
        with rasterio.open(optical_tif) as src:
            opt = np.dstack([src.read(b) for b in (1, 2, 3)])
        panels = [sar_rgb, np.dstack([dem_grey] * 3), opt, distortion_rgb(flag_values, dem_grey // 2 + 64)]
        written.append(q.save_png(out_dir / f"{t['id']}.png", q.mosaic(panels), 4 * max_size))
    return written
