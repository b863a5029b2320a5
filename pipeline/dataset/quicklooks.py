"""Quicklook panel per triplet: SAR [VV, VH, 0], DEM, optical RGB, distortion overlay (side by side)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.io import quicklook as q
from pipeline.sar import distortion as dist


def distortion_rgb(flags: NDArray, background: NDArray) -> NDArray[np.uint8]:
    """Grey background with foreshortening green, layover yellow, shadow blue."""
    rgb = np.dstack([background] * 3).astype(np.uint8)
    rgb[(flags & dist.FORESHORTENING) > 0] = (90, 190, 90)
    rgb[(flags & dist.LAYOVER) > 0] = (255, 215, 0)
    rgb[(flags & dist.SHADOW) > 0] = (40, 60, 220)
    return rgb


def dem_grey(dem: NDArray) -> NDArray[np.uint8]:
    """The DEM stretched between its minimum and maximum to grey levels."""
    return q.stretch(dem, float(np.nanmin(dem)), float(np.nanmax(dem)))


def triplet_panel(vv_db: NDArray, vh_db: NDArray, grey: NDArray[np.uint8], optical_rgb: NDArray[np.uint8],
                  flags: NDArray) -> NDArray[np.uint8]:
    """Four panels side by side: SAR [VV, VH, 0], the DEM in grey, the optical RGB, the distortion overlay."""
    panels = [q.sar_rgb(vv_db, vh_db), np.dstack([grey] * 3), optical_rgb, distortion_rgb(flags, grey // 2 + 64)]
    return q.mosaic(panels)
