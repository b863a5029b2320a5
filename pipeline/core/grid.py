"""Map grids: north-up UTM grids snapped to whole pixels, SRTM tile names; a cache of a raster's rows.

Pure numerics and plain data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyproj
from numpy.typing import NDArray


def utm_epsg(lat: float, lon: float) -> int:
    """EPSG code of the WGS84 UTM zone containing (lat, lon)."""
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def tile_name(lat: float, lon: float) -> str:
    """SRTM tile containing (lat, lon), named by its south-west corner."""
    la, lo = math.floor(lat), math.floor(lon)
    return f"{'N' if la >= 0 else 'S'}{abs(la):02d}{'E' if lo >= 0 else 'W'}{abs(lo):03d}"


@dataclass(frozen=True)
class MapGrid:
    """A north-up map grid: pixel (row, col) centre at (left + (col + 0.5) * res, top - (row + 0.5) * res)."""

    epsg: int
    left: float
    top: float
    resolution: float
    width: int
    height: int

    @property
    def easting(self) -> NDArray[np.float64]:
        return self.left + (np.arange(self.width) + 0.5) * self.resolution

    @property
    def northing(self) -> NDArray[np.float64]:
        return self.top - (np.arange(self.height) + 0.5) * self.resolution

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in metres."""
        return (self.left, self.top - self.height * self.resolution, self.left + self.width * self.resolution, self.top)

    @property
    def transform(self):  # rasterio Affine
        from rasterio.transform import from_origin

        return from_origin(self.left, self.top, self.resolution, self.resolution)

    def resampled(self, resolution: float) -> "MapGrid":
        """The same extent at another resolution (which must divide the extent)."""
        w = self.width * self.resolution / resolution
        h = self.height * self.resolution / resolution
        if abs(w - round(w)) > 1e-9 or abs(h - round(h)) > 1e-9:
            raise ValueError(f"resolution {resolution} does not divide the grid extent")
        return MapGrid(self.epsg, self.left, self.top, resolution, int(round(w)), int(round(h)))

    def coarsened(self, resolution: float) -> "MapGrid":
        """A grid from the same corner at a coarser resolution, covering at least the same extent."""
        w = math.ceil(self.width * self.resolution / resolution - 1e-9)
        h = math.ceil(self.height * self.resolution / resolution - 1e-9)
        return MapGrid(self.epsg, self.left, self.top, resolution, w, h)

    def expanded(self, margin_m: float) -> "MapGrid":
        """The grid grown by ``margin_m`` (rounded up to whole pixels) on every side."""
        n = int(math.ceil(margin_m / self.resolution))
        return MapGrid(self.epsg, self.left - n * self.resolution, self.top + n * self.resolution,
                       self.resolution, self.width + 2 * n, self.height + 2 * n)


def aoi_grid_around(center_lat: float, center_lon: float, size_m: float, resolution: float = 10.0) -> MapGrid:
    """A square AOI of ``size_m`` around a centre, in the centre's UTM zone, snapped to multiples of
    ``resolution`` (so the grids of all scenes of one AOI align pixel for pixel)."""
    epsg = utm_epsg(center_lat, center_lon)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    e, n = to_utm.transform(center_lon, center_lat)
    half = size_m / 2
    left = math.floor((e - half) / resolution) * resolution
    top = math.ceil((n + half) / resolution) * resolution
    size = int(round(size_m / resolution))
    return MapGrid(epsg, left, top, resolution, size, size)


def covering_grid(aligned_to: MapGrid, easting_m: NDArray, northing_m: NDArray, margin_m: float) -> MapGrid:
    """The smallest grid aligned with ``aligned_to`` (same origin modulo pixels) that covers the points plus a margin."""
    res = aligned_to.resolution
    left = aligned_to.left + math.floor((float(np.min(easting_m)) - margin_m - aligned_to.left) / res) * res
    right = aligned_to.left + math.ceil((float(np.max(easting_m)) + margin_m - aligned_to.left) / res) * res
    top = aligned_to.top + math.ceil((float(np.max(northing_m)) + margin_m - aligned_to.top) / res) * res
    bottom = aligned_to.top + math.floor((float(np.min(northing_m)) - margin_m - aligned_to.top) / res) * res
    return MapGrid(aligned_to.epsg, left, top, res, int(round((right - left) / res)), int(round((top - bottom) / res)))


def aoi_grid_for_bbox(west: float, south: float, east: float, north: float, resolution: float = 10.0) -> MapGrid:
    """The grid covering a lon/lat box (degrees), in the UTM zone of its centre, snapped to ``resolution``."""
    if not (west < east and south < north):
        raise ValueError(f"bbox [{west}, {south}, {east}, {north}]: expected west < east and south < north")
    epsg = utm_epsg(0.5 * (south + north), 0.5 * (west + east))
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    left, bottom, right, top = to_utm.transform_bounds(west, south, east, north, densify_pts=21)
    left = math.floor(left / resolution) * resolution
    top = math.ceil(top / resolution) * resolution
    width = int(math.ceil((right - left) / resolution))
    height = int(math.ceil((top - bottom) / resolution))
    return MapGrid(epsg, left, top, resolution, width, height)


def lonlat_bounds(grid: MapGrid) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of a grid's extent (edges densified)."""
    to_ll = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    return tuple(float(v) for v in to_ll.transform_bounds(*grid.bounds, densify_pts=21))


class RowCache:
    """The rows of a raster last read, as float32, so that overlapping requests read only new rows: it reads
    ``ahead`` rows more in the direction it grows, and forgets rows more than ``ahead`` rows away from the
    last request. ``read_rows(first, stop)`` reads rows [first, stop) of the whole width.

    Whole-width strips are what GDAL decodes fastest: a window read spanning several blocks decodes them
    again at every call (the block cache serves small reads only), so 512 px tiles that read their own
    windows with a one-pixel margin decode 9 blocks of 256 px for the 4 they cover.

    The rows live in a buffer with room on the side the requests move to: new rows are copied in once, and
    the kept ones move only when the room runs out (the new buffer has room for half the kept rows again),
    so a sweep copies each row about twice however many rows a request keeps (the distortion profiles keep
    thousands; growing by ``ahead`` rows and copying all of them each time copied each row ten times).
    Within a buffer, buffer row ``offset - first + row`` always holds raster row ``row``, so the arrays
    returned earlier keep their values."""

    def __init__(self, read_rows: Callable[[int, int], NDArray], n_rows: int, ahead: int = 256,
                 read_into: Callable[[int, int, NDArray], None] | None = None):
        self.read_rows, self.n_rows, self.ahead, self.read_into = read_rows, n_rows, ahead, read_into
        self.buffer: NDArray[np.float32] | None = None
        self.offset = 0  # buffer row of row ``first``
        self.first, self.count = 0, 0

    def _read(self, first: int, stop: int) -> NDArray[np.float32]:
        return np.asarray(self.read_rows(first, stop), np.float32)

    def _fill(self, rows: NDArray[np.float32], first: int, stop: int) -> None:
        """Rows [first, stop) into ``rows`` (a slice of a buffer): straight into it with ``read_into(first, stop,
        out)`` where given (GDAL decodes into the buffer: no copy, 0.3 s of a 100 Mpx terrain correction)."""
        if self.read_into is not None:
            self.read_into(first, stop, rows)
        else:
            rows[...] = self._read(first, stop)

    def get(self, first: int, stop: int) -> NDArray:
        end = self.first + self.count
        if self.buffer is None or stop <= self.first or first >= end:  # nothing to keep
            self.buffer = np.ascontiguousarray(self._read(first, stop))
            self.offset, self.first, self.count = 0, first, stop - first
        elif first < self.first or stop > end:
            forward = stop > end
            new_first = max(min(first, self.first - self.ahead), 0) if first < self.first else self.first
            new_stop = min(max(stop, end + self.ahead), self.n_rows) if forward else end
            keep_first, keep_stop = max(new_first, first - self.ahead), min(new_stop, stop + self.ahead)
            capacity = self.buffer.shape[0]
            if forward and first >= self.first and self.offset + new_stop - self.first <= capacity:
                # room after the kept rows: read the new ones into it, forget those before keep_first
                self._fill(self.buffer[self.offset + self.count : self.offset + new_stop - self.first], end, new_stop)
            elif not forward and self.offset >= self.first - new_first:
                self._fill(self.buffer[self.offset - (self.first - new_first) : self.offset], new_first, self.first)
                self.offset -= self.first - new_first
                self.first = new_first
            else:  # a new buffer: the kept rows and half as many again of room on the side the requests move to
                size = keep_stop - keep_first
                room = max(size // 2, 2 * self.ahead)
                buffer = np.empty((min(size + room, max(self.n_rows, size)), *self.buffer.shape[1:]), np.float32)
                offset = 0 if forward else buffer.shape[0] - size
                for a, b, rows in ((new_first, self.first, None), (self.first, end, self.buffer),
                                   (end, new_stop, None)):
                    a, b = max(a, keep_first), min(b, keep_stop)
                    if a < b and rows is not None:
                        buffer[offset + a - keep_first : offset + b - keep_first] = \
                            rows[self.offset + a - self.first : self.offset + b - self.first]
                    elif a < b:
                        self._fill(buffer[offset + a - keep_first : offset + b - keep_first], a, b)
                self.buffer, self.offset, self.first, self.count = buffer, offset, keep_first, size
                return self.buffer[self.offset + first - keep_first : self.offset + stop - keep_first]
            self.offset += keep_first - self.first
            self.first, self.count = keep_first, keep_stop - keep_first
        return self.buffer[self.offset + first - self.first : self.offset + stop - self.first]
