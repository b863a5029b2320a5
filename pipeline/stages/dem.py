"""Stages ``dem``, ``dem_extended`` and ``dem_normalise``: the SRTM DEM on a map grid, and normalised."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyproj
from rasterio.windows import Window

from pipeline.core.grid import MapGrid
from pipeline.dem.geoid import find_grid
from pipeline.dem.prepare import dem_on_grid, fill_voids, normalise_by_max
from pipeline.dem.tiles import LonLatRaster, read_mosaic
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import band_range, cog_writer, grid_of, open_raster, record_band_range

log = logging.getLogger(__name__)


def prepare_dem(tiles_dir: str | Path, grid: MapGrid, out_orthometric: str | Path, out_ellipsoidal: str | Path,
                geoid_grid: str | None = None, margin_deg: float = 0.01, strip_rows: int = 512) -> None:
    """Mosaic the 1" tiles covering the grid, fill voids, resample to the grid; write EGM96 and WGS84 heights.

    The grid is computed and written ``strip_rows`` rows at a time: memory grows with the mosaic and the
    grid's width, not its area (a 100 Mpx grid in one piece took 10.5 GB).
    """
    log.info("DEM from %s on %s (geoid grid: %s)", tiles_dir, grid, geoid_grid or "default")
    to_geo = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    left, bottom, right, top = grid.bounds
    west, south, east, north = to_geo.transform_bounds(left, bottom, right, top, densify_pts=21)
    mosaic = read_mosaic(tiles_dir, west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg)
    voids = int(np.isnan(mosaic.values).sum())
    filled = LonLatRaster(fill_voids(mosaic.values), mosaic.lat_top, mosaic.lon_left, mosaic.step_deg)
    geoid = find_grid([south, north], [west, east], geoid_grid)  # covers the grid's lat/lon bounding box
    tags = {"source": "SRTM 1 arc-second", "resampling": "bilinear after void filling"}
    low, high = np.inf, -np.inf
    ell_low, ell_high = np.inf, -np.inf
    with atomic_path(out_orthometric) as tmp_ortho, atomic_path(out_ellipsoidal) as tmp_ell:
        with cog_writer(tmp_ortho, grid, 1, "float32", np.nan) as odst, \
                cog_writer(tmp_ell, grid, 1, "float32", np.nan) as edst:
            for r0 in range(0, grid.height, strip_rows):
                r1 = min(r0 + strip_rows, grid.height)
                ortho, ell = dem_on_grid(filled, grid, geoid, slice(r0, r1))
                window = Window(0, r0, grid.width, r1 - r0)
                odst.write(ortho, 1, window=window)
                edst.write(ell, 1, window=window)
                low, high = min(low, float(np.nanmin(ortho))), max(high, float(np.nanmax(ortho)))
                ell_low, ell_high = min(ell_low, float(np.nanmin(ell))), max(ell_high, float(np.nanmax(ell)))
            odst.update_tags(**tags, vertical_datum="EGM96 geoid", units="m")
            edst.update_tags(**tags, vertical_datum="WGS84 ellipsoid", units="m")
            record_band_range(odst, low, high)
            record_band_range(edst, ell_low, ell_high)
    log.info("mosaic %d x %d nodes, %d voids filled; heights %.0f..%.0f m (EGM96); wrote %s and %s",
             *mosaic.values.shape, voids, low, high, out_orthometric, out_ellipsoidal)


def normalise_dem(dem_tif: str | Path, out_tif: str | Path, dem_max_m: float | None,
                  strip_rows: int = 512) -> float:
    """DEM (orthometric) / maximum elevation; the maximum is the AOI's unless ``dem_max_m`` fixes it.
    Read and written ``strip_rows`` rows at a time (the maximum from a first pass, block by block)."""
    with open_raster(dem_tif, "DEM") as src:
        grid = grid_of(src)
        top = band_range(src)[1] if dem_max_m is None else float(dem_max_m)
        with atomic_path(out_tif) as tmp, cog_writer(tmp, grid, 1, "float32", np.nan) as dst:
            for r0 in range(0, grid.height, strip_rows):
                window = Window(0, r0, grid.width, min(strip_rows, grid.height - r0))
                dst.write(normalise_by_max(src.read(1, window=window), top)[0], 1, window=window)
            dst.update_tags(dem_max_m=str(top))
    log.info("%s / %.1f m -> %s", dem_tif, top, out_tif)
    return top
