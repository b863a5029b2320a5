"""The simulated world's specification and its map grids.

Pure numerics and plain data. The world is one 1-degree SRTM tile of
synthetic Alpine relief; the area of interest (AOI) is a square in the UTM
zone of its centre, snapped to the 10 m grid; the simulation grid adds a
margin (terrain outside the AOI casts shadows and lays over into it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
from numpy.typing import NDArray


@dataclass(frozen=True)
class DatePair:
    """One Sentinel-1 / Sentinel-2 acquisition pair and the season's state."""

    s1_time: np.datetime64
    s2_time: np.datetime64
    snow_line_m: float
    wet_snow: bool
    cloud_fraction: float


@dataclass(frozen=True)
class WorldSpec:
    """Everything that defines a simulated world (from ``config['simulation']``)."""

    seed: int
    center_lat: float
    center_lon: float
    aoi_size_m: float
    margin_m: float
    splat_oversampling: int
    incidence_deg: float
    mission: str
    relative_orbit: int
    first_absolute_orbit: int
    dates: tuple[DatePair, ...]
    corner_reflectors: int
    enl: float
    relief: str = "alpine"
    flat_height_m: float = 1000.0

    @classmethod
    def from_config(cls, sim: dict[str, Any]) -> "WorldSpec":
        dates = tuple(
            DatePair(
                s1_time=np.datetime64(d["s1"], "ns"),
                s2_time=np.datetime64(d["s2"], "ns"),
                snow_line_m=float(d["snow_line_m"]),
                wet_snow=bool(d["wet_snow"]),
                cloud_fraction=float(d["cloud_fraction"]),
            )
            for d in sim["dates"]
        )
        return cls(
            seed=int(sim["seed"]),
            center_lat=float(sim["aoi"]["center_lat"]),
            center_lon=float(sim["aoi"]["center_lon"]),
            aoi_size_m=float(sim["aoi"]["size_m"]),
            margin_m=float(sim["margin_m"]),
            splat_oversampling=int(sim["sentinel1"]["splat_oversampling"]),
            incidence_deg=float(sim["sentinel1"]["incidence_deg"]),
            mission=str(sim["sentinel1"]["mission"]),
            relative_orbit=int(sim["sentinel1"]["relative_orbit"]),
            first_absolute_orbit=int(sim["sentinel1"]["first_absolute_orbit"]),
            dates=dates,
            corner_reflectors=int(sim["sentinel1"]["corner_reflectors"]),
            enl=float(sim["sentinel1"]["enl"]),
            relief=str(sim.get("relief", "alpine")),
            flat_height_m=float(sim.get("flat_height_m", 1000.0)),
        )

    @property
    def tile(self) -> str:
        """SRTM tile name of the AOI centre (south-west corner), e.g. 'N45E006'."""
        return tile_name(self.center_lat, self.center_lon)

    @property
    def tile_south_west(self) -> tuple[int, int]:
        return math.floor(self.center_lat), math.floor(self.center_lon)

    @property
    def utm_epsg(self) -> int:
        zone = int((self.center_lon + 180) // 6) + 1
        return (32600 if self.center_lat >= 0 else 32700) + zone

    @property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_epsg(self.utm_epsg)


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


def aoi_grid(spec: WorldSpec, resolution: float = 10.0) -> MapGrid:
    """The AOI: a square of ``aoi_size_m`` around the centre, snapped to multiples of ``resolution``."""
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", spec.crs, always_xy=True)
    e, n = to_utm.transform(spec.center_lon, spec.center_lat)
    half = spec.aoi_size_m / 2
    left = math.floor((e - half) / resolution) * resolution
    top = math.ceil((n + half) / resolution) * resolution
    size = int(round(spec.aoi_size_m / resolution))
    return MapGrid(spec.utm_epsg, left, top, resolution, size, size)


def simulation_grid(spec: WorldSpec) -> MapGrid:
    """The AOI plus the margin, at 10 m (land cover, Sentinel-2)."""
    return aoi_grid(spec).expanded(spec.margin_m)


def covering_grid(aligned_to: MapGrid, easting_m: NDArray, northing_m: NDArray, margin_m: float) -> MapGrid:
    """The smallest grid aligned with ``aligned_to`` (same origin modulo pixels) that covers the points plus a margin."""
    res = aligned_to.resolution
    left = aligned_to.left + math.floor((float(np.min(easting_m)) - margin_m - aligned_to.left) / res) * res
    right = aligned_to.left + math.ceil((float(np.max(easting_m)) + margin_m - aligned_to.left) / res) * res
    top = aligned_to.top + math.ceil((float(np.max(northing_m)) + margin_m - aligned_to.top) / res) * res
    bottom = aligned_to.top + math.floor((float(np.min(northing_m)) - margin_m - aligned_to.top) / res) * res
    return MapGrid(aligned_to.epsg, left, top, res, int(round((right - left) / res)), int(round((top - bottom) / res)))
