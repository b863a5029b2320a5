"""Windowed reads of (cloud-optimised) GeoTIFFs, local or over HTTP, into local GeoTIFFs.

Only the tiles that intersect the window travel: GDAL's ``/vsicurl/`` asks for
byte ranges. Two shapes of output:

- :func:`copy_radar_window`: a Sentinel-1 GRD measurement keeps its full size
  (line, pixel) with only the window's blocks written (a sparse GeoTIFF: absent
  blocks read as 0, the GRD no-data value), so radar coordinates stay those of
  the annotation and every reader works unchanged;
- :func:`copy_map_window`: a map-projected band (Sentinel-2) cropped to the
  window, with the window's geotransform.

Transient failures (timeouts, 5xx, 429) are retried by GDAL
(``GDAL_HTTP_MAX_RETRY``) and then again here with exponential backoff; output
goes to a temporary name and is renamed into place when complete.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from pipeline.io.atomic import atomic_path
from pipeline.io.redact import redact
from pipeline.errors import SardemError

log = logging.getLogger(__name__)

GDAL_HTTP_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing of the remote folder
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "2",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "VSI_CACHE": "TRUE",
}


class WindowReadError(SardemError, RuntimeError):
    """A window could not be read (the message names the source and the last problem)."""


def gdal_path(href: str) -> str:
    """The GDAL path of an asset href: ``/vsicurl/`` for http(s), else the local path itself."""
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if "://" in href and not href.startswith("file://"):
        raise WindowReadError(f"{href}: unsupported scheme (http, https, file or a local path)")
    return href.removeprefix("file://")


class _IncompleteHeader(Exception):
    """The raster opened without its georeferencing (a header range that failed on the way): read again."""


def _georeferenced(src, href: str) -> None:
    """Raise :class:`_IncompleteHeader` unless ``src`` has a CRS or GCPs with their CRS.

    GDAL reports a TIFF tag it could not fetch as a warning and opens the file without it; a
    measurement without its GCPs, or a band without its CRS, must not be copied as if complete.
    """
    gcps, gcp_crs = src.gcps
    if (src.crs is None and not gcps) or (gcps and gcp_crs is None):
        raise _IncompleteHeader(f"{redact(href)} opened without its georeferencing (a header read failed)")


def _with_retries(href: str, fn, attempts: int = 4, backoff_s: float = 2.0):
    """Call ``fn`` under :data:`GDAL_HTTP_ENV`, retrying a failed read with exponential backoff.

    GDAL keeps what ``/vsicurl/`` saw of a URL (its size, that it does not exist, the bytes of
    the ranges read) for the life of the process; a retry that read through that cache would meet
    the same dropped header or wrong range again. Retries therefore bypass it for this URL
    (``CPL_VSIL_CURL_NON_CACHED``).
    """
    what = redact(href)
    path = gdal_path(href)
    if not path.startswith("/vsi") and not Path(path).is_file():
        raise WindowReadError(f"{what}: no such file")  # nothing to wait for
    for attempt in range(1, attempts + 1):
        env = dict(GDAL_HTTP_ENV)
        if attempt > 1:
            env["CPL_VSIL_CURL_NON_CACHED"] = path
        try:
            with rasterio.Env(**env):
                return fn()
        except (rasterio.errors.RasterioIOError, _IncompleteHeader) as exc:
            problem = redact(str(exc))
            if attempt == attempts:
                raise WindowReadError(f"{what}: giving up after {attempts} attempts: {problem}") from None
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: %s (attempt %d of %d), retrying in %.0f s", what, problem, attempt, attempts, wait)
            time.sleep(wait)


def copy_radar_window(href: str, target: str | Path, rows: tuple[int, int], cols: tuple[int, int],
                      block: int = 512) -> Path:
    """Copy lines ``rows`` = (first, stop) and pixels ``cols`` of a GRD measurement into a sparse full-size GeoTIFF.

    The window is widened to whole ``block`` x ``block`` tiles; an empty window writes
    no block at all (the scene misses the AOI). GCPs are kept.
    """
    target = Path(target)

    def run() -> Path:
        with rasterio.open(gdal_path(href)) as src, atomic_path(target) as tmp:
            _georeferenced(src, href)
            r0, r1 = max(rows[0], 0), min(rows[1], src.height)
            c0, c1 = max(cols[0], 0), min(cols[1], src.width)
            profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype=src.dtypes[0],
                           tiled=True, blockxsize=block, blockysize=block, compress="deflate",
                           sparse_ok=True, bigtiff="IF_SAFER")
            with warnings.catch_warnings():  # georeferenced by GCPs, set just below
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                dst = rasterio.open(tmp, "w", **profile)
            with dst:
                gcps, crs = src.gcps
                if gcps:
                    dst.gcps = (gcps, crs)
                if r1 > r0 and c1 > c0:
                    r0, c0 = (r0 // block) * block, (c0 // block) * block
                    r1, c1 = min(-(-r1 // block) * block, src.height), min(-(-c1 // block) * block, src.width)
                    for r in range(r0, r1, block):  # one row of tiles at a time: bounded memory
                        win = Window(c0, r, c1 - c0, min(block, r1 - r))
                        dst.write(src.read(1, window=win), 1, window=win)
                dst.update_tags(source=redact(href), window_rows=f"{r0},{r1}", window_cols=f"{c0},{c1}")
        return target

    return _with_retries(href, run)


def copy_map_window(href: str, target: str | Path, bounds: tuple[float, float, float, float],
                    bounds_crs: str, margin_px: int = 2) -> Path:
    """Crop a map-projected raster to ``bounds`` (left, bottom, right, top in ``bounds_crs``) plus a margin.

    The window is snapped outwards to whole source pixels; the crop keeps the
    source's CRS, resolution, dtype and no-data value.
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds, transform as window_transform

    target = Path(target)

    def run() -> Path:
        with rasterio.open(gdal_path(href)) as src, atomic_path(target) as tmp:
            _georeferenced(src, href)
            b = transform_bounds(bounds_crs, src.crs, *bounds, densify_pts=21)
            w = from_bounds(*b, transform=src.transform)
            c0 = max(int(np.floor(w.col_off)) - margin_px, 0)
            r0 = max(int(np.floor(w.row_off)) - margin_px, 0)
            c1 = min(int(np.ceil(w.col_off + w.width)) + margin_px, src.width)
            r1 = min(int(np.ceil(w.row_off + w.height)) + margin_px, src.height)
            if c1 <= c0 or r1 <= r0:
                raise WindowReadError(f"{redact(href)}: the raster does not overlap the AOI")
            win = Window(c0, r0, c1 - c0, r1 - r0)
            data = src.read(window=win)
            profile = dict(driver="GTiff", width=win.width, height=win.height, count=src.count,
                           dtype=src.dtypes[0], crs=src.crs, transform=window_transform(win, src.transform),
                           nodata=src.nodata, tiled=True, blockxsize=256, blockysize=256, compress="deflate")
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data)
                dst.update_tags(source=redact(href))
        return target

    return _with_retries(href, run)
