"""Stage ``distortion``: foreshortening, layover and shadow maps of one product on the AOI grid.

Consumes the DEM product on the AOI grid extended by the scan margin (rule ``dem_extended``):
ridges outside the AOI shadow and lay over into it, so the scan runs on the extended grid and
the result is cut to the AOI.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from pipeline.core.grid import MapGrid
from pipeline.errors import UserError
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import grid_of, open_raster, write_geotiff
from pipeline.sar.annotation import parse_annotation
from pipeline.sar.distortion import distortion_map, evaluation_regions
from pipeline.sar.orbit_file import parse_eof
from pipeline.sar.product import RadarGeometry
from pipeline.sar.safe import item_orbit_file, open_xml, product_files
from pipeline.sar.surface import slope_aspect

log = logging.getLogger(__name__)


def aoi_crop(extended: MapGrid, aoi: MapGrid) -> tuple[slice, slice]:
    """(rows, cols) of ``aoi`` inside ``extended``: same CRS and resolution, pixel-aligned."""
    rows = (extended.top - aoi.top) / extended.resolution
    cols = (aoi.left - extended.left) / extended.resolution
    r, c = int(round(rows)), int(round(cols))
    if (extended.epsg != aoi.epsg or extended.resolution != aoi.resolution or abs(rows - r) > 1e-6
            or abs(cols - c) > 1e-6 or r < 0 or c < 0 or r + aoi.height > extended.height
            or c + aoi.width > extended.width):
        raise UserError(f"the extended DEM grid {extended} does not contain the AOI grid {aoi} pixel for pixel")
    return slice(r, r + aoi.height), slice(c, c + aoi.width)


def distortion_maps(safe: str | Path, dem_orthometric: str | Path, dem_ellipsoidal: str | Path, grid: MapGrid,
                    out_flags: str | Path, out_geometry: str | Path) -> None:
    """Flags and geometry layers of one product on the AOI ``grid``, scanned over the extended DEM.

    ``dem_orthometric``/``dem_ellipsoidal``: EGM96 and WGS84 heights (m) on the AOI grid extended by
    the scan margin. Writes a uint8 flags COG and a float32 COG with local incidence, slope, aspect
    (deg) and the evaluation region.
    """
    t0 = time.perf_counter()
    files = next(iter(product_files(safe).values()))
    with open_xml(files.annotation) as fh:
        annotation = parse_annotation(fh, files.annotation)
    orbit_file = item_orbit_file(safe)  # a local item may name a precise orbit
    geometry = RadarGeometry(annotation, parse_eof(orbit_file, annotation.epoch) if orbit_file else None)
    with open_raster(dem_orthometric, "DEM") as src:
        ortho, big = src.read(1), grid_of(src)
    with open_raster(dem_ellipsoidal, "DEM") as src:
        ell = src.read(1)
        if grid_of(src) != big:
            raise UserError(f"{dem_ellipsoidal}: not on the grid of {dem_orthometric}")
    crop = aoi_crop(big, grid)
    log.info("distortion maps of %s: scan over %d x %d pixels (AOI %d x %d), orbit %s", Path(safe).name,
             big.height, big.width, grid.height, grid.width, orbit_file or "from the annotation")
    out = distortion_map(geometry, f"EPSG:{big.epsg}", big.easting, big.northing, ell)
    slope, aspect = slope_aspect(ortho, (big.resolution, big.resolution))
    flags = out["flags"][crop]
    layers = np.stack([out["local_incidence_deg"][crop], slope[crop].astype(np.float32),
                       aspect[crop].astype(np.float32), evaluation_regions(flags).astype(np.float32)])
    tags = {"product": Path(safe).name, "definitions": "pipeline.sar.distortion (Meier et al. 1993)",
            "orbit": Path(orbit_file).name if orbit_file else "annotation"}
    with atomic_path(out_flags) as tmp:
        write_geotiff(tmp, flags, grid, None, {**tags, "bits": "1 foreshortening, 2 active layover, "
                      "4 passive layover, 8 active shadow, 16 passive shadow"}, ["flags"])
    with atomic_path(out_geometry) as tmp:
        write_geotiff(tmp, layers, grid, np.nan, {**tags, "region": "0 non-distorted, 1 foreshortening "
                      "(incl. layover), 2 shadow"}, ["local_incidence_deg", "slope_deg", "aspect_deg", "region"])
    counts = {name: int(((flags & bit) > 0).sum()) for name, bit in
              (("foreshortening", 1), ("active layover", 2), ("passive layover", 4), ("active shadow", 8),
               ("passive shadow", 16))}
    log.info("AOI pixels flagged: %s; wrote %s and %s in %.1f s", counts, out_flags, out_geometry,
             time.perf_counter() - t0)
