"""Small orchestration steps (files in, files out) that the rules and the CLI call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj

from .dem import dem_on_grid
from .grid import MapGrid
from .io.atomic import atomic_path
from .io.dem_tiles import read_mosaic
from .io.rasters import write_geotiff


def prepare_dem(tiles_dir: str | Path, grid: MapGrid, out_orthometric: str | Path, out_ellipsoidal: str | Path,
                geoid_grid: str | None = None, margin_deg: float = 0.01) -> None:
    """Mosaic the 1" tiles covering the grid, fill voids, resample to the grid; write EGM96 and WGS84 heights."""
    to_geo = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    left, bottom, right, top = grid.bounds
    west, south, east, north = to_geo.transform_bounds(left, bottom, right, top, densify_pts=21)
    mosaic = read_mosaic(tiles_dir, west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg)
    ortho, ell = dem_on_grid(mosaic, grid, geoid_grid)
    tags = {"source": "SRTM 1 arc-second", "resampling": "bilinear after void filling"}
    with atomic_path(out_orthometric) as tmp:
        write_geotiff(tmp, ortho, grid, np.nan, {**tags, "vertical_datum": "EGM96 geoid", "units": "m"})
    with atomic_path(out_ellipsoidal) as tmp:
        write_geotiff(tmp, ell, grid, np.nan, {**tags, "vertical_datum": "WGS84 ellipsoid", "units": "m"})
