"""EGM96 geoid undulations: orthometric (SRTM) <-> ellipsoidal (WGS84) heights.

h_ellipsoid = H_egm96 + N, with N the geoid undulation (about +50 m in the
Alps). Ignoring N shifts targets by several 10 m pixels in range.

Where the grid comes from, in order (the first that covers the points wins):

1. an explicit ``path`` (any GDAL-readable grid in EPSG:4326, e.g. PROJ's
   ``us_nga_egm96_15.tif`` or Debian proj-data's ``egm96_15.gtx``);
2. the Europe crop vendored in this package, ``pipeline/dem/data/egm96_15_europe.tif``
   (35-60 N, 10 W-30 E, cut from Debian proj-data's ``egm96_15.gtx``, NGA's
   public-domain EGM96 15-minute grid), so the offline default needs nothing else;
3. the global grid in the usual places: ``$PROJ_DATA`` / pyproj's data
   directory / ``/usr/share/proj`` (``us_nga_egm96_15.tif`` or ``egm96_15.gtx``).

Values are bilinearly interpolated between the 15-minute grid nodes, as PROJ does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import ArrayLike, NDArray
from pipeline.errors import SardemError

VENDORED_GRID = Path(__file__).parent / "data" / "egm96_15_europe.tif"
GLOBAL_GRID_NAMES = ("us_nga_egm96_15.tif", "egm96_15.gtx")


class GeoidError(SardemError, RuntimeError):
    """No EGM96 grid covers the requested points."""


@dataclass(frozen=True)
class GeoidGrid:
    """Undulations (m) on a regular lat/lon grid: node (i, j) at (lat0 - i*dlat, lon0 + j*dlon)."""

    undulation_m: NDArray[np.float32]
    lat0_deg: float
    lon0_deg: float
    dlat_deg: float
    dlon_deg: float
    global_lon: bool
    source: str

    def covers(self, lat_deg: NDArray, lon_deg: NDArray) -> bool:
        rows, cols = self.undulation_m.shape
        lat_ok = (lat_deg <= self.lat0_deg) & (lat_deg >= self.lat0_deg - (rows - 1) * self.dlat_deg)
        if self.global_lon:
            return bool(np.all(lat_ok))
        lon_ok = (lon_deg >= self.lon0_deg) & (lon_deg <= self.lon0_deg + (cols - 1) * self.dlon_deg)
        return bool(np.all(lat_ok & lon_ok))

    def undulation(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> NDArray[np.float64]:
        """Bilinear geoid undulation N (m) at latitudes and longitudes (deg)."""
        lat = np.asarray(lat_deg, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        rows, cols = self.undulation_m.shape
        r = (self.lat0_deg - lat) / self.dlat_deg
        c = (lon - self.lon0_deg) / self.dlon_deg
        if self.global_lon:
            c = np.mod(c, cols)
        r0 = np.clip(np.floor(r).astype(np.int64), 0, rows - 2)
        c0 = np.floor(c).astype(np.int64)
        fr, fc = r - r0, c - c0
        c1 = (c0 + 1) % cols if self.global_lon else np.clip(c0 + 1, 0, cols - 1)
        c0 = c0 % cols if self.global_lon else np.clip(c0, 0, cols - 1)
        g = self.undulation_m.astype(np.float64)
        top = g[r0, c0] * (1 - fc) + g[r0, c1] * fc
        bottom = g[r0 + 1, c0] * (1 - fc) + g[r0 + 1, c1] * fc
        return top * (1 - fr) + bottom * fr


def read_grid(path: str | Path) -> GeoidGrid:
    """Read a geoid grid (pixel-is-point nodes) with rasterio."""
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            data = src.read(1).astype(np.float32)
            t = src.transform
    except rasterio.errors.RasterioIOError as exc:
        raise GeoidError(f"{path}: cannot read the geoid grid ({exc})") from exc
    # GDAL reports the area covered by the nodes: node centres sit half a cell inside
    lat0, lon0 = t.f + 0.5 * t.e, t.c + 0.5 * t.a
    span = data.shape[1] * t.a
    return GeoidGrid(data, lat0, lon0, -t.e, t.a, bool(abs(span - 360.0) < 1e-6), str(path))


def _global_candidates() -> list[Path]:
    dirs = [os.environ.get("PROJ_DATA"), os.environ.get("PROJ_LIB")]
    try:
        import pyproj

        dirs.append(pyproj.datadir.get_data_dir())
        dirs.append(pyproj.datadir.get_user_data_dir())
    except Exception:  # pragma: no cover - pyproj without data dirs
        pass
    dirs.append("/usr/share/proj")
    return [Path(d) / name for d in dirs if d for name in GLOBAL_GRID_NAMES]


@lru_cache(maxsize=8)
def _load(path: str) -> GeoidGrid:
    return read_grid(path)


def find_grid(lat_deg: ArrayLike, lon_deg: ArrayLike, path: str | Path | None = None) -> GeoidGrid:
    """The first grid (see the module docstring) that covers all the points."""
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
    candidates = [Path(path)] if path else [VENDORED_GRID, *_global_candidates()]
    tried = []
    for candidate in candidates:
        if not candidate.exists():
            tried.append(f"{candidate} (missing)")
            continue
        grid = _load(str(candidate))
        if grid.covers(lat, lon):
            return grid
        tried.append(f"{candidate} (does not cover)")
    raise GeoidError(
        "no EGM96 grid covers latitudes "
        f"{lat.min():.3f}..{lat.max():.3f}, longitudes {lon.min():.3f}..{lon.max():.3f}; tried: "
        + "; ".join(tried)
        + ". Install Debian's proj-data or set geoid_grid in config.yaml to us_nga_egm96_15.tif."
    )


def orthometric_to_ellipsoidal(
    height_m: ArrayLike, lat_deg: ArrayLike, lon_deg: ArrayLike, path: str | Path | None = None
) -> NDArray[np.float64]:
    """Ellipsoidal height h = H + N (m) of EGM96 heights H at latitudes and longitudes (deg)."""
    return np.asarray(height_m, dtype=np.float64) + find_grid(lat_deg, lon_deg, path).undulation(lat_deg, lon_deg)


def ellipsoidal_to_orthometric(
    height_m: ArrayLike, lat_deg: ArrayLike, lon_deg: ArrayLike, path: str | Path | None = None
) -> NDArray[np.float64]:
    """EGM96 height H = h - N (m) of ellipsoidal heights h."""
    return np.asarray(height_m, dtype=np.float64) - find_grid(lat_deg, lon_deg, path).undulation(lat_deg, lon_deg)
