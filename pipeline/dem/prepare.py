"""DEM preparation: void filling, resampling onto a map grid, EGM96 -> ellipsoidal heights.

Pure numerics (the tile reader is :mod:`pipeline.dem.tiles`).
"""

from __future__ import annotations

import numpy as np
import pyproj
from numpy.typing import NDArray
from rasterio.fill import fillnodata
from scipy import ndimage

from pipeline.dem.geoid import GeoidGrid
from pipeline.core.grid import MapGrid
from pipeline.dem.tiles import LonLatRaster


def fill_voids(values: NDArray, max_search_px: int = 200) -> NDArray[np.float32]:
    """Fill NaN voids by inverse-distance interpolation from their edges (GDAL's FillNodata), then smoothing."""
    data = np.asarray(values, dtype=np.float32)
    voids = ~np.isfinite(data)
    if not voids.any():
        return data
    filled = fillnodata(np.where(voids, 0, data), mask=(~voids).astype(np.uint8),
                        max_search_distance=max_search_px, smoothing_iterations=2)
    if not np.isfinite(filled).all() or (voids.all()):
        raise ValueError("DEM voids too large to fill")
    return filled.astype(np.float32)


def sample_lonlat(raster: LonLatRaster, lat_deg: NDArray, lon_deg: NDArray, order: int = 1) -> NDArray:
    """Values of a lat/lon node raster at points: bilinear (order 1) or nearest node (order 0)."""
    rows = (raster.lat_top - np.asarray(lat_deg)) / raster.step_deg
    cols = (np.asarray(lon_deg) - raster.lon_left) / raster.step_deg
    return ndimage.map_coordinates(raster.values, [rows, cols], order=order, mode="nearest")


def grid_lat_lon(grid: MapGrid, rows: slice = slice(None)) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Latitude and longitude (deg) of the pixel centres of a map grid (of its ``rows``, all by default)."""
    to_geo = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    ee, nn = np.meshgrid(grid.easting, grid.northing[rows])
    lon, lat = to_geo.transform(ee, nn)
    return lat, lon


def dem_on_grid(
    filled: LonLatRaster, grid: MapGrid, geoid: GeoidGrid, rows: slice = slice(None)
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Orthometric (EGM96) and ellipsoidal (WGS84) heights (m) at the pixel centres of the grid's ``rows``
    (all by default): bilinear between the nodes of ``filled`` (a void-free mosaic, :func:`fill_voids`),
    plus the ``geoid``'s undulation. Each pixel's value depends on its position alone, so a grid
    computed strip by strip is the grid computed whole."""
    lat, lon = grid_lat_lon(grid, rows)
    ortho = sample_lonlat(filled, lat, lon).astype(np.float32)
    ell = (ortho + geoid.undulation(lat, lon)).astype(np.float32)
    return ortho, ell


def normalise_by_max(height_m: NDArray, dem_max_m: float | None = None) -> tuple[NDArray[np.float32], float]:
    """Heights divided by the maximum elevation (the array's, NaN ignored, unless ``dem_max_m`` fixes it).

    Returns the normalised heights (float32, dimensionless) and the maximum used (m).
    """
    top = float(np.nanmax(height_m)) if dem_max_m is None else float(dem_max_m)
    return (height_m / top).astype(np.float32), top
