"""A Sentinel-1 GRD product: its annotation and the geometry that maps the ground to (line, pixel).

Radar coordinates are zero-based floats in (line, pixel) order, as in the
annotation's geolocation grid: line = azimuth, pixel = ground range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.core.constants import SPEED_OF_LIGHT_M_S
from pipeline.core.geodesy import geodetic_to_ecef
from pipeline.sar import geocoding
from pipeline.sar.annotation import ProductAnnotation
from pipeline.sar.orbit import Orbit, OrbitPolynomial


@dataclass(frozen=True)
class RadarCoordinates:
    """Where targets fall in the image: zero-based (line, pixel) and their timing."""

    line: NDArray[np.float64]
    pixel: NDArray[np.float64]
    zero_doppler_time_s: NDArray[np.float64]
    slant_range_m: NDArray[np.float64]


@dataclass(frozen=True)
class RadarTiming:
    """What maps (zero-Doppler time, slant range) to (line, pixel), as arrays for compiled kernels
    (:func:`pipeline.sar.facets.radar_line`, :func:`pipeline.sar.facets.radar_pixel`); the same arithmetic
    as :meth:`RadarGeometry.timing_to_radar`."""

    record_time_s: NDArray[np.float64]  # coordinateConversion records' azimuth times (s from the first line)
    sr0_m: NDArray[np.float64]  # their slant range origins
    srgr: NDArray[np.float64]  # (records, terms) slant-to-ground-range coefficients, increasing order
    bistatic: bool  # bistatic delay correction applied by the processor
    mid_slant_range_time_s: float  # two-way, of the swath centre
    azimuth_time_interval_s: float
    range_pixel_spacing_m: float

    def args(self) -> tuple:
        """(record_time_s, sr0_m, srgr, bistatic, mid_slant_range_time_s, azimuth_time_interval_s,
        range_pixel_spacing_m), the order kernels take them in."""
        return (self.record_time_s, self.sr0_m, self.srgr, self.bistatic, self.mid_slant_range_time_s,
                self.azimuth_time_interval_s, self.range_pixel_spacing_m)


class RadarGeometry:
    """Range-Doppler geometry of one GRD image (pure numerics, no I/O).

    Parameters
    ----------
    annotation : ProductAnnotation
        The parsed product annotation.
    orbit : Orbit, optional
        State vectors to use instead of the annotation's (e.g. a precise AUX_POEORB
        orbit, :func:`pipeline.sar.orbit_file.parse_eof`), times from the first line.
    """

    def __init__(self, annotation: ProductAnnotation, orbit: Orbit | None = None):
        self.annotation = annotation
        image = annotation.image
        source = annotation.orbit if orbit is None else orbit
        if source.time_s[0] > 0.0 or source.time_s[-1] < image.last_line_time_s:
            raise ValueError("the orbit's state vectors do not cover the product's acquisition")
        self.orbit = OrbitPolynomial(source.around(0.0, image.last_line_time_s))
        cc = annotation.coordinate_conversion
        self._cc = cc
        # mid-swath two-way slant range time: the swath centre pixel at mid-product time
        mid_time = 0.5 * image.last_line_time_s
        mid_ground_range = 0.5 * (image.number_of_samples - 1) * image.range_pixel_spacing_m
        mid_range = geocoding.ground_to_slant_range(cc.azimuth_time_s, cc.gr0_m, cc.grsr, mid_time, mid_ground_range)
        self.mid_slant_range_time_s = float(2.0 * mid_range / SPEED_OF_LIGHT_M_S)

    def timing(self) -> RadarTiming:
        """The timing tables for compiled kernels (:func:`pipeline.sar.facets.radar_line`, ``radar_pixel``)."""
        cc, image = self._cc, self.annotation.image
        return RadarTiming(np.ascontiguousarray(cc.azimuth_time_s, np.float64), np.ascontiguousarray(cc.sr0_m, np.float64),
                           np.ascontiguousarray(cc.srgr, np.float64), bool(self.annotation.bistatic_delay_applied),
                           self.mid_slant_range_time_s, image.azimuth_time_interval_s, image.range_pixel_spacing_m)

    def timing_to_radar(self, zero_doppler_time_s: ArrayLike, slant_range_m: ArrayLike) -> RadarCoordinates:
        """(line, pixel) of targets given their zero-Doppler time (s from the first line) and slant range (m).

        Applies the bistatic delay correction (when the product flags it) and
        the coordinateConversion record nearest in time.
        """
        image = self.annotation.image
        t = np.asarray(zero_doppler_time_s, dtype=np.float64)
        r = np.asarray(slant_range_m, dtype=np.float64)
        line_time = t
        if self.annotation.bistatic_delay_applied:
            tau = 2.0 * r / SPEED_OF_LIGHT_M_S
            line_time = t - geocoding.bistatic_line_offset_s(tau, self.mid_slant_range_time_s)
        cc = self._cc
        ground_range = geocoding.slant_to_ground_range(cc.azimuth_time_s, cc.sr0_m, cc.srgr, t, r)
        return RadarCoordinates(
            line=line_time / image.azimuth_time_interval_s,
            pixel=ground_range / image.range_pixel_spacing_m,
            zero_doppler_time_s=t,
            slant_range_m=r,
        )

    def ecef_to_radar(self, target_m: ArrayLike) -> RadarCoordinates:
        """(line, pixel) of ECEF targets (..., 3) in metres (exact Newton solution per target)."""
        p = np.asarray(target_m, dtype=np.float64)
        t = geocoding.zero_doppler_time(self.orbit, p, 0.5 * self.annotation.image.last_line_time_s)
        return self.timing_to_radar(t, geocoding.slant_range(self.orbit, p, t))

    def geographic_to_radar(
        self, lat_deg: ArrayLike, lon_deg: ArrayLike, height_m: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Zero-based (line, pixel) of points given by latitude, longitude (deg), ellipsoidal height (m)."""
        rc = self.ecef_to_radar(geodetic_to_ecef(lat_deg, lon_deg, height_m))
        return rc.line, rc.pixel


class Sentinel1Product:
    """One polarisation-independent view of a GRD product (geometry from the first annotation)."""

    def __init__(self, path: Path, annotations: dict[str, ProductAnnotation]):
        self.path = path
        self.annotations = annotations
        first = next(iter(annotations.values()))
        self.geometry = RadarGeometry(first)

    @property
    def polarisations(self) -> list[str]:
        return list(self.annotations)

    def geographic_to_radar(
        self, lat_deg: ArrayLike, lon_deg: ArrayLike, height_m: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Zero-based (line, pixel) floats of latitude, longitude (deg) and ellipsoidal height (m)."""
        return self.geometry.geographic_to_radar(lat_deg, lon_deg, height_m)


def open_product(path: str | Path) -> Sentinel1Product:
    """Open a SAFE directory, a SAFE zip, a STAC item (JSON), or one product annotation XML (geometry only)."""
    from pipeline.sar.safe import read_annotations

    path = Path(path)
    return Sentinel1Product(path, read_annotations(path))


def aoi_radar_window(geometry: RadarGeometry, grid, height_range_m: tuple[float, float],
                     margin_px: int = 16, samples_per_side: int = 64) -> tuple[tuple[int, int], tuple[int, int]]:
    """Lines and pixels, as half-open (first, stop) pairs, that an AOI grid can map to.

    The grid's boundary is geocoded at the lowest and the highest ellipsoidal height
    of the AOI: within a frame, line grows with along-track distance, pixel grows with
    ground range and falls with height, so the extremes over the AOI and the height range lie on
    that boundary. ``margin_px`` adds room for the interpolation kernel. The result is
    not clipped to the image.
    """
    import pyproj

    left, bottom, right, top = grid.bounds
    s = np.linspace(0.0, 1.0, samples_per_side)
    e = np.concatenate([left + s * (right - left), np.full_like(s, right), right - s * (right - left), np.full_like(s, left)])
    n = np.concatenate([np.full_like(s, top), top - s * (top - bottom), np.full_like(s, bottom), bottom + s * (top - bottom)])
    lon, lat = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True).transform(e, n)
    lines, pixels = [], []
    for h in height_range_m:
        li, pi = geometry.geographic_to_radar(lat, lon, np.full_like(lat, h))
        lines.append(li)
        pixels.append(pi)
    li, pi = np.concatenate(lines), np.concatenate(pixels)
    return ((int(np.floor(li.min())) - margin_px, int(np.ceil(li.max())) + 1 + margin_px),
            (int(np.floor(pi.min())) - margin_px, int(np.ceil(pi.max())) + 1 + margin_px))
