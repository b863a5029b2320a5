"""SRTM HGT tiles: writer (as ESA's mirror serves them) and the tile naming rules.

Format: 3601 x 3601 big-endian int16 for 1 arc-second tiles, rows north to
south, pixel-centre registration (the first row is the tile's north edge,
the node (0, 0) sits exactly on the north-west corner), voids -32768,
heights in metres over EGM96. ESA's mirror serves ``N45E006.SRTMGL1.hgt.zip``
holding ``N45E006.hgt``. GDAL reads both with its SRTMHGT driver.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .atomic import atomic_path

HGT_VOID = -32768
HGT_SIZE_1ARCSEC = 3601


def hgt_zip_name(tile: str) -> str:
    """ESA mirror file name of a 1" tile: 'N45E006' -> 'N45E006.SRTMGL1.hgt.zip'."""
    return f"{tile}.SRTMGL1.hgt.zip"


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


def hgt_vsi_path(path: str | Path) -> str:
    """GDAL path of the .hgt inside an ESA-style zip, a skadi-style gzip, or the .hgt itself."""
    path = Path(path)
    if path.suffix == ".zip":
        tile = path.name.split(".")[0]
        return f"/vsizip/{path}/{tile}.hgt"
    if path.suffix == ".gz":  # the skadi tiles: N45E006.hgt.gz
        return f"/vsigzip/{path}"
    return str(path)
