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


def triplet_quicklooks(triplets: list[dict], args, out_dir: Path, max_size: int = 700) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = Path(args.results)
    with rasterio.open(args.dem) as src:
        dem = src.read(1)
    dem_grey = q.stretch(dem, float(np.nanmin(dem)), float(np.nanmax(dem)))
    written = []
    for t in triplets:
        with rasterio.open(results / "sar" / f"{t['s1']}_backscatter.tif") as src:
            sar = q.sar_rgb(src.read(1), src.read(2))
        with rasterio.open(results / "distortion" / f"{t['s1']}_flags.tif") as src:
            flags = src.read(1)
        with rasterio.open(results / "optical" / f"{t['s2']}.tif") as src:
            opt = np.dstack([src.read(b) for b in (1, 2, 3)])
        panels = [sar, np.dstack([dem_grey] * 3), opt, distortion_rgb(flags, dem_grey // 2 + 64)]
        written.append(q.save_png(out_dir / f"{t['id']}.png", q.mosaic(panels), 4 * max_size))
    return written
