"""Layer 2: range-Doppler geocoding against ESA's geolocation grids (real products)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.constants import SPEED_OF_LIGHT_M_S
from pipeline.core.geodesy import geodetic_to_ecef
from pipeline.sar import open_product
from pipeline.sar.annotation import AnnotationError, GeolocationGrid, parse_annotation
from pipeline.sar.geocoding import elevation_angle_deg, incidence_angle_deg
from pipeline.sar.orbit import OrbitPolynomial

from .conftest import REAL_S1_ASCENDING, REAL_S1_DESCENDING


@pytest.mark.parametrize("path", [REAL_S1_DESCENDING, REAL_S1_ASCENDING])
def test_geolocation_grid_reproduced(path) -> None:
    """Every tie point (lat, lon, h) maps to its (line, pixel) within 0.1 px RMS, and its angles within 0.01 deg."""
    product = open_product(path)
    g = product.geometry.annotation.geolocation_grid
    line, pixel = product.geographic_to_radar(g.latitude_deg, g.longitude_deg, g.height_m)
    rms_line = float(np.sqrt(np.mean((line - g.line) ** 2)))
    rms_pixel = float(np.sqrt(np.mean((pixel - g.pixel) ** 2)))
    assert rms_line < 0.1 and rms_pixel < 0.1, (rms_line, rms_pixel)
    rc = product.geometry.ecef_to_radar(geodetic_to_ecef(g.latitude_deg, g.longitude_deg, g.height_m))
    sat = product.geometry.orbit.position(rc.zero_doppler_time_s)
    target = geodetic_to_ecef(g.latitude_deg, g.longitude_deg, g.height_m)
    assert np.abs(incidence_angle_deg(sat, target) - g.incidence_angle_deg).max() < 0.01
    assert np.abs(elevation_angle_deg(sat, target) - g.elevation_angle_deg).max() < 0.01
    # slant range to a millimetre, zero-Doppler time to 0.1 ms
    assert np.abs(rc.slant_range_m - g.slant_range_time_s * SPEED_OF_LIGHT_M_S / 2).max() < 0.005
    assert np.abs(rc.zero_doppler_time_s - g.azimuth_time_s).max() < 1e-4


def check_grid_identities(grid: GeolocationGrid, orbit: OrbitPolynomial) -> None:
    """Conventions that ESA's grid follows (geocentric incidence, elevation from nadir at the satellite)."""
    target = geodetic_to_ecef(grid.latitude_deg, grid.longitude_deg, grid.height_m)
    sat = orbit.position(grid.azimuth_time_s)
    r = np.linalg.norm(sat - target, axis=-1)
    np.testing.assert_allclose(r, grid.slant_range_time_s * SPEED_OF_LIGHT_M_S / 2, atol=0.01)
    # triangle earth centre - satellite - target: sin(incidence) / |S| = sin(elevation) / |P|
    s, p = np.linalg.norm(sat, axis=-1), np.linalg.norm(target, axis=-1)
    inc = np.degrees(np.arcsin(s * np.sin(np.radians(grid.elevation_angle_deg)) / p))
    np.testing.assert_allclose(inc, grid.incidence_angle_deg, atol=0.01)
    # zero Doppler: the line of sight is perpendicular to the velocity
    v = orbit.velocity(grid.azimuth_time_s)
    cos_squint = np.einsum("...i,...i", target - sat, v) / (r * np.linalg.norm(v, axis=-1))
    assert np.abs(cos_squint).max() < 1e-5


@pytest.mark.parametrize("path", [REAL_S1_DESCENDING, REAL_S1_ASCENDING])
def test_real_grid_identities(path) -> None:
    ann = parse_annotation(path)
    check_grid_identities(ann.geolocation_grid, OrbitPolynomial(ann.orbit))


def test_annotation_reader_errors(tmp_path) -> None:
    bad = tmp_path / "s1a-iw-grd-vv-x.xml"
    bad.write_text("<product><adsHeader></adsHeader></product>")
    with pytest.raises(AnnotationError, match="s1a-iw-grd-vv-x.xml: missing element adsHeader/missionId"):
        parse_annotation(bad)
    bad.write_text("<product><adsHeader>")
    with pytest.raises(AnnotationError, match="not a readable XML file"):
        parse_annotation(bad)
    calib = tmp_path / "calibration.xml"
    calib.write_text("<calibration/>")
    with pytest.raises(AnnotationError, match="root element is <calibration>, not <product>"):
        parse_annotation(calib)
