"""Reading SRTM 1" HGT tiles (zipped or not) into one mosaic on the tiles' lat/lon grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray

from pipeline.core.grid import tile_name
from pipeline.dem.hgt import HGT_VOID, hgt_vsi_path, hgt_zip_name
from pipeline.errors import SardemError
from pipeline.io.checksums import verify_cached


class DemError(SardemError, ValueError):
    """A DEM tile is missing or unreadable."""


@dataclass(frozen=True)
class LonLatRaster:
    """Values on a regular lat/lon node grid: node (i, j) at (lat_top - i*step, lon_left + j*step), degrees."""

    values: NDArray[np.float32]
    lat_top: float
    lon_left: float
    step_deg: float


def tiles_covering(west: float, south: float, east: float, north: float) -> list[str]:
    """Names of the 1-degree tiles that cover a lon/lat box (deg)."""
    return [
        tile_name(lat + 0.5, lon + 0.5)
        for lat in range(math.floor(south), math.floor(north) + 1)
        for lon in range(math.floor(west), math.floor(east) + 1)
    ]


def tile_path(directory: Path, tile: str) -> Path:
    """The tile's file in ``directory``: ESA's ``N45E006.SRTMGL1.hgt.zip``, skadi's ``N45E006.hgt.gz``
    or a plain ``N45E006.hgt``."""
    for name in (hgt_zip_name(tile), f"{tile}.hgt.gz", f"{tile}.hgt"):
        if (directory / name).exists():
            return directory / name
    raise DemError(f"{directory}: no SRTM tile {tile} ({hgt_zip_name(tile)} or {tile}.hgt)")


def read_mosaic(directory: str | Path, west: float, south: float, east: float, north: float) -> LonLatRaster:
    """Mosaic of the 1" tiles covering the box; voids become NaN (heights over EGM96, metres)."""
    directory = Path(directory)
    tiles = tiles_covering(west, south, east, north)
    lats = sorted({int(t[1:3]) * (1 if t[0] == "N" else -1) for t in tiles})
    lons = sorted({int(t[4:7]) * (1 if t[3] == "E" else -1) for t in tiles})
    n = 3600
    out = np.full((len(lats) * n + 1, len(lons) * n + 1), np.nan, np.float32)
    for tile in tiles:
        path = tile_path(directory, tile)
        verify_cached([path])
        lat = int(tile[1:3]) * (1 if tile[0] == "N" else -1)
        lon = int(tile[4:7]) * (1 if tile[3] == "E" else -1)
        try:
            with rasterio.open(hgt_vsi_path(path)) as src:
                data = src.read(1)
        except rasterio.errors.RasterioIOError as exc:
            raise DemError(f"{path}: unreadable HGT tile ({exc})") from exc
        if data.shape != (n + 1, n + 1):
            raise DemError(f"{path}: expected 3601 x 3601 samples (1 arc-second), got {data.shape}")
        r0 = (lats[-1] - lat) * n
        c0 = (lon - lons[0]) * n
        block = np.where(data == HGT_VOID, np.nan, data.astype(np.float32))
        out[r0 : r0 + n + 1, c0 : c0 + n + 1] = block
    return LonLatRaster(out, float(lats[-1] + 1), float(lons[0]), 1.0 / n)
