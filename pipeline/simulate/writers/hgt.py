"""SRTM HGT writer: a zipped 1" tile as ESA's mirror serves it (format: :mod:`pipeline.dem.hgt`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.dem.hgt import HGT_SIZE_1ARCSEC
from pipeline.io.atomic import atomic_path


def write_hgt_zip(path: str | Path, tile: str, heights: NDArray[np.int16]) -> Path:
    """Write a zipped 1" HGT tile atomically (heights int16, voids -32768)."""
    heights = np.asarray(heights)
    if heights.shape != (HGT_SIZE_1ARCSEC, HGT_SIZE_1ARCSEC) or heights.dtype != np.int16:
        raise ValueError(f"{tile}: a 1 arc-second HGT tile is 3601 x 3601 int16, got {heights.shape} {heights.dtype}")
    with atomic_path(path) as tmp:
        # a fixed member date (the SRTM mission, February 2000) keeps the bytes reproducible
        member = zipfile.ZipInfo(f"{tile}.hgt", date_time=(2000, 2, 11, 0, 0, 0))
        member.compress_type = zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr(member, heights.astype(">i2").tobytes())
    return Path(path)
