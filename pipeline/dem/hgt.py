"""SRTM HGT tiles: the file naming rules and the GDAL path of a zipped or gzipped tile.

Format: 3601 x 3601 big-endian int16 for 1 arc-second tiles, rows north to
south, pixel-centre registration (the first row is the tile's north edge,
the node (0, 0) sits exactly on the north-west corner), voids -32768,
heights in metres over EGM96. ESA's mirror serves ``N45E006.SRTMGL1.hgt.zip``
holding ``N45E006.hgt``. GDAL reads both with its SRTMHGT driver.
"""

from __future__ import annotations

from pathlib import Path

HGT_VOID = -32768
HGT_SIZE_1ARCSEC = 3601


def hgt_zip_name(tile: str) -> str:
    """ESA mirror file name of a 1" tile: 'N45E006' -> 'N45E006.SRTMGL1.hgt.zip'."""
    return f"{tile}.SRTMGL1.hgt.zip"


def hgt_vsi_path(path: str | Path) -> str:
    """GDAL path of the .hgt inside an ESA-style zip, a skadi-style gzip, or the .hgt itself."""
    path = Path(path)
    if path.suffix == ".zip":
        tile = path.name.split(".")[0]
        return f"/vsizip/{path}/{tile}.hgt"
    if path.suffix == ".gz":  # the skadi tiles: N45E006.hgt.gz
        return f"/vsigzip/{path}"
    return str(path)
