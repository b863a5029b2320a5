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

from pipeline.core.grid import MapGrid, aoi_grid_around, tile_name, utm_epsg


@dataclass(frozen=True)
class DatePair:
    """One Sentinel-1 / Sentinel-2 acquisition pair and the season's state."""

    s1_time: np.datetime64
    s2_time: np.datetime64
    snow_line_m: float
    wet_snow: bool
    cloud_fraction: float
    pass_direction: str = "descending"  # of the Sentinel-1 pass: "descending" or "ascending"


#: Sentinel-1 pass directions, as STAC's sat:orbit_state spells them
PASS_DIRECTIONS = ("descending", "ascending")


@dataclass(frozen=True)
class Track:
    """The reference track of one pass direction: its relative orbit and its geocentric incidence
    angle (deg) at the AOI centre."""

    relative_orbit: int
    incidence_deg: float


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
    orbit_tube_m: float = 0.0
    ascending: Track = Track(88, 41.0)

    @classmethod
    def from_config(cls, sim: dict[str, Any]) -> "WorldSpec":
        """The world of a validated configuration's ``simulation`` section (the schema fills the defaults:
        they are written there, not here)."""
        dates = tuple(
            DatePair(
                s1_time=np.datetime64(d["s1"], "ns"),
                s2_time=np.datetime64(d["s2"], "ns"),
                snow_line_m=float(d["snow_line_m"]),
                wet_snow=bool(d["wet_snow"]),
                cloud_fraction=float(d["cloud_fraction"]),
                pass_direction=str(d.get("pass", "descending")),
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
            relief=str(sim["relief"]),
            flat_height_m=float(sim["flat_height_m"]),
            orbit_tube_m=float(sim["sentinel1"]["orbit_tube_m"]),
            ascending=Track(int(sim["sentinel1"]["ascending"]["relative_orbit"]),
                            float(sim["sentinel1"]["ascending"]["incidence_deg"])),
        )

    def track(self, pass_direction: str) -> Track:
        """The reference track of ``pass_direction`` ("descending": the top-level relative orbit and
        incidence; "ascending": ``ascending``)."""
        if pass_direction == "descending":
            return Track(self.relative_orbit, self.incidence_deg)
        if pass_direction == "ascending":
            return self.ascending
        raise ValueError(f"pass direction {pass_direction!r} is not one of {PASS_DIRECTIONS}")

    @property
    def passes(self) -> tuple[str, ...]:
        """The pass directions the dates fly, in the order they first occur."""
        return tuple(dict.fromkeys(d.pass_direction for d in self.dates))

    @property
    def first_dates(self) -> dict[str, int]:
        """Per pass direction, the index of its first date."""
        return {p: next(i for i, d in enumerate(self.dates) if d.pass_direction == p) for p in self.passes}

    @property
    def tile(self) -> str:
        """SRTM tile name of the AOI centre (south-west corner), e.g. 'N45E006'."""
        return tile_name(self.center_lat, self.center_lon)

    @property
    def tile_south_west(self) -> tuple[int, int]:
        return math.floor(self.center_lat), math.floor(self.center_lon)

    @property
    def utm_epsg(self) -> int:
        return utm_epsg(self.center_lat, self.center_lon)

    @property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_epsg(self.utm_epsg)


def aoi_grid(spec: WorldSpec, resolution: float = 10.0) -> MapGrid:
    """The simulated world's AOI grid."""
    return aoi_grid_around(spec.center_lat, spec.center_lon, spec.aoi_size_m, resolution)
