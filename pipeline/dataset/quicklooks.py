"""Quicklook panel per triplet: SAR [VV, VH, 0], DEM, optical RGB, distortion overlay (side by side)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.io import quicklook as q
from pipeline.sar import distortion as dist


DISTORTION_COLOURS = ((dist.FORESHORTENING, (90, 190, 90), "foreshortening"),
                      (dist.LAYOVER, (255, 215, 0), "layover (active or passive)"),
                      (dist.SHADOW, (40, 60, 220), "shadow (active or passive)"))


def distortion_rgb(flags: NDArray, background: NDArray) -> NDArray[np.uint8]:
    """Grey background with foreshortening green, layover yellow, shadow blue (:data:`DISTORTION_COLOURS`)."""
    rgb = np.dstack([background] * 3).astype(np.uint8)
    for bits, colour, _ in DISTORTION_COLOURS:
        rgb[(flags & bits) > 0] = colour
    return rgb


def dem_grey(dem: NDArray) -> NDArray[np.uint8]:
    """The DEM stretched between its minimum and maximum to grey levels."""
    return q.stretch(dem, float(np.nanmin(dem)), float(np.nanmax(dem)))


def triplet_panel(vv_db: NDArray, vh_db: NDArray, grey: NDArray[np.uint8], optical_rgb: NDArray[np.uint8],
                  flags: NDArray, pixel_m: float, titles: tuple[str, str, str, str] | None = None,
                  max_size: int = 700) -> NDArray[np.uint8]:
    """Four titled panels side by side: SAR [VV, VH, 0], the DEM in grey, the optical RGB (masked pixels
    black), the distortion overlay with its colour key; a scale bar. Panels shrunk to ``max_size`` px."""
    panels = [q.sar_rgb(vv_db, vh_db), np.dstack([grey] * 3), optical_rgb, distortion_rgb(flags, grey // 2 + 64)]
    scale = max(1.0, max(vv_db.shape) / max_size)
    panels = [q.shrink(p, max_size) for p in panels]
    titles = titles or ("Sentinel-1 [VV, VH, 0]", "DEM", "Sentinel-2 RGB (black: masked)", "distortion")
    legend = [(colour, label) for _, colour, label in DISTORTION_COLOURS]
    return q.annotated_mosaic(panels, list(titles), pixel_m * scale, legend)
