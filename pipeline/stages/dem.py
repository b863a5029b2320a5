"""Stages ``dem``, ``dem_extended`` and ``dem_normalise``: the SRTM DEM on a map grid, and normalised."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyproj

from pipeline.core.grid import MapGrid
from pipeline.dem.prepare import dem_on_grid, normalise_by_max
from pipeline.dem.tiles import read_mosaic
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import grid_of, open_raster, write_geotiff

log = logging.getLogger(__name__)


def prepare_dem(tiles_dir: str | Path, grid: MapGrid, out_orthometric: str | Path, out_ellipsoidal: str | Path,
                geoid_grid: str | None = None, margin_deg: float = 0.01) -> None:
    """Mosaic the 1" tiles covering the grid, fill voids, resample to the grid; write EGM96 and WGS84 heights."""
    log.info("DEM from %s on %s (geoid grid: %s)", tiles_dir, grid, geoid_grid or "default")
    to_geo = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    left, bottom, right, top = grid.bounds
    west, south, east, north = to_geo.transform_bounds(left, bottom, right, top, densify_pts=21)
    mosaic = read_mosaic(tiles_dir, west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg)
    voids = int(np.isnan(mosaic.values).sum())
    ortho, ell = dem_on_grid(mosaic, grid, geoid_grid)
    log.info("mosaic %d x %d nodes, %d voids filled; heights %.0f..%.0f m (EGM96)", *mosaic.values.shape, voids,
             float(np.nanmin(ortho)), float(np.nanmax(ortho)))
    tags = {"source": "SRTM 1 arc-second", "resampling": "bilinear after void filling"}
    with atomic_path(out_orthometric) as tmp:
        write_geotiff(tmp, ortho, grid, np.nan, {**tags, "vertical_datum": "EGM96 geoid", "units": "m"})
    with atomic_path(out_ellipsoidal) as tmp:
        write_geotiff(tmp, ell, grid, np.nan, {**tags, "vertical_datum": "WGS84 ellipsoid", "units": "m"})
    log.info("wrote %s and %s", out_orthometric, out_ellipsoidal)


def normalise_dem(dem_tif: str | Path, out_tif: str | Path, dem_max_m: float | None) -> float:
    """DEM (orthometric) / maximum elevation; the maximum is the AOI's unless ``dem_max_m`` fixes it."""
    with open_raster(dem_tif, "DEM") as src:
        h = src.read(1)
        grid = grid_of(src)
    normalised, top = normalise_by_max(h, dem_max_m)
    with atomic_path(out_tif) as tmp:
        write_geotiff(tmp, normalised, grid, np.nan, {"dem_max_m": str(top)})
    log.info("%s / %.1f m -> %s", dem_tif, top, out_tif)
    return top
