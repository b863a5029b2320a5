"""Stage ``distortion``: foreshortening, layover and shadow maps of one product on the AOI grid.

Consumes the DEM product on the AOI grid extended by the scan margin (rule ``dem_extended``):
ridges outside the AOI shadow and lay over into it, so the scan runs on the extended grid and
the result is cut to the AOI.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from pipeline.core.grid import MapGrid, RowCache
from pipeline.errors import UserError
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import band_range, cog_writer, grid_of, open_raster, stage_env
from pipeline.sar.annotation import parse_annotation
from pipeline.sar.distortion import distortion_strips, evaluation_regions
from pipeline.sar.orbit_file import parse_eof
from pipeline.sar.product import RadarGeometry
from pipeline.sar.safe import item_orbit_file, open_xml, product_files
from pipeline.sar.surface import slope_aspect

log = logging.getLogger(__name__)

FLAG_NAMES = {"foreshortening": 1, "active layover": 2, "passive layover": 4, "active shadow": 8, "passive shadow": 16}


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


def distortion_maps(safe: str | Path, dem_orthometric: str | Path | None, dem_ellipsoidal: str | Path, grid: MapGrid,
                    out_flags: str | Path | None, out_geometry: str | Path | None = None,
                    strip_rows: int = 128) -> None:
    """Flags and, when asked for, geometry layers of one product on the AOI ``grid``, scanned over the
    extended DEM.

    ``dem_orthometric``/``dem_ellipsoidal``: EGM96 and WGS84 heights (m) on the AOI grid extended by
    the scan margin (the orthometric heights only for the geometry layers' slope and aspect). Writes
    ``out_flags``, a uint8 flags COG, and ``out_geometry``, a float32 COG with local incidence, slope,
    aspect (deg) and the evaluation region; either may be None (not written), not both. No later stage
    reads the geometry layers (the workflow writes them on demand): without them the stage reads one DEM,
    and neither the incidence angles, slope and aspect nor their COG (four float32 bands) are computed.
    Reads the DEMs and writes the layers strip by strip (``strip_rows``, a performance knob that does not
    change the result): memory grows with the grid's width, not its area.
    """
    if out_flags is None and out_geometry is None:
        raise ValueError("distortion_maps needs an output: out_flags, out_geometry or both")
    if out_geometry is not None and dem_orthometric is None:
        raise ValueError("the geometry layers need the orthometric DEM (slope and aspect)")
    t0 = time.perf_counter()
    files = next(iter(product_files(safe).values()))
    with open_xml(files.annotation) as fh:
        annotation = parse_annotation(fh, files.annotation)
    orbit_file = item_orbit_file(safe)  # a local item may name a precise orbit
    geometry = RadarGeometry(annotation, parse_eof(orbit_file, annotation.epoch) if orbit_file else None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(stage_env(64))  # MB: block cache; as many decoding threads as the kernels
        ell = stack.enter_context(open_raster(dem_ellipsoidal, "DEM"))
        big = grid_of(ell)
        ortho = None
        if out_geometry is not None:
            ortho = stack.enter_context(open_raster(dem_orthometric, "DEM"))
            if grid_of(ortho) != big:
                raise UserError(f"{dem_ellipsoidal}: not on the grid of {dem_orthometric}")
        rows, cols = aoi_crop(big, grid)
        log.info("distortion maps of %s: scan over %d x %d pixels (AOI %d x %d), orbit %s", Path(safe).name,
                 big.height, big.width, grid.height, grid.width, orbit_file or "from the annotation")

        def heights(r0: int, r1: int) -> np.ndarray:
            return ell.read(1, window=Window(0, r0, big.width, r1 - r0))

        strips = distortion_strips(geometry, f"EPSG:{big.epsg}", big.easting, big.northing, heights, band_range(ell),
                                   (rows.start, rows.stop, cols.start, cols.stop), strip_rows,
                                   ellipsoid_incidence=False, local_incidence=out_geometry is not None)
        tags = {"product": Path(safe).name, "definitions": "pipeline.sar.distortion (Meier et al. 1993)",
                "orbit": Path(orbit_file).name if orbit_file else "annotation"}
        histogram = np.zeros(256, np.int64)  # of the AOI's flag values
        fdst = gdst = None
        if out_flags is not None:
            fdst = stack.enter_context(cog_writer(stack.enter_context(atomic_path(out_flags)), grid, 1, "uint8"))
        if out_geometry is not None:
            gdst = stack.enter_context(cog_writer(stack.enter_context(atomic_path(out_geometry)), grid, 4, "float32",
                                                  np.nan, overviews=False))
            # the orthometric rows for slope and aspect: whole-width strips, each block decoded about once
            ortho_rows = RowCache(lambda a, b: ortho.read(1, window=Window(0, a, big.width, b - a)), big.height)
        for r, layers in strips:
            flags, h = layers["flags"], layers["flags"].shape[0]
            window = Window(0, r - rows.start, grid.width, h)
            if fdst is not None:
                fdst.write(flags, 1, window=window)
            if gdst is not None:
                # slope and aspect by central differences: the strip's rows with one row of margin
                m0, m1 = max(r - 1, 0), min(r + h + 1, big.height)
                c0, c1 = max(cols.start - 1, 0), min(cols.stop + 1, big.width)
                z = ortho_rows.get(m0, m1)[:, c0:c1]
                inner = (slice(r - m0, r - m0 + h), slice(cols.start - c0, cols.stop - c0))
                block = np.empty((4, *flags.shape), np.float32)
                block[0] = layers["local_incidence_deg"]
                slope_aspect(z, (big.resolution, big.resolution), inner, out=(block[1], block[2]))
                block[3] = evaluation_regions(flags)
                gdst.write(block, window=window)
            histogram += np.bincount(flags.ravel(), minlength=256)
        if fdst is not None:
            fdst.update_tags(**tags, bits="1 foreshortening, 2 active layover, 4 passive layover, "
                             "8 active shadow, 16 passive shadow")
            fdst.set_band_description(1, "flags")
        if gdst is not None:
            gdst.update_tags(**tags, region="0 non-distorted, 1 foreshortening (incl. layover), 2 shadow")
            for band, name in enumerate(("local_incidence_deg", "slope_deg", "aspect_deg", "region"), start=1):
                gdst.set_band_description(band, name)
    counts = {name: int(histogram[(np.arange(256) & bit) > 0].sum()) for name, bit in FLAG_NAMES.items()}
    log.info("AOI pixels flagged: %s; wrote %s in %.1f s", counts,
             " and ".join(str(p) for p in (out_flags, out_geometry) if p is not None), time.perf_counter() - t0)
