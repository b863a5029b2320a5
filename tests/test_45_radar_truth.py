"""The simulator's own radar truth (pipeline.simulate.radar_truth): closed forms and a second solver."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.geodesy import geodetic_to_ecef
from pipeline.simulate.orbit_design import design_orbit
from pipeline.simulate.radar_truth import MapLook, image_coverage, ray_shadow, shared_cell_layover, solve_zero_doppler


@pytest.mark.parametrize("descending", [True, False])
def test_zero_doppler_matches_a_bracketing_solver(descending: bool) -> None:
    """Newton on the closed-form orbit equals Brent's method on the same orbit (orbit_design), and the
    line of sight is the unit vector to the orbit's position at that time, orthogonal to its velocity."""
    centre = geodetic_to_ecef(45.4, 6.6, 1500.0)
    orbit = design_orbit(centre, 38.5, descending=descending)
    rng = np.random.default_rng(3)
    lat = 45.4 + rng.uniform(-0.3, 0.3, 20)
    lon = 6.6 + rng.uniform(-0.4, 0.4, 20)
    targets = geodetic_to_ecef(lat, lon, rng.uniform(0.0, 4000.0, 20))
    zd = solve_zero_doppler(orbit, targets)
    brent = np.array([orbit.zero_doppler_time(t, descending) for t in targets])
    np.testing.assert_allclose(zd.time_s, brent, atol=1e-7)  # 1e-7 s is 0.7 mm along the track
    sat, vel = orbit.state(zd.time_s)
    np.testing.assert_allclose(zd.slant_range_m, np.linalg.norm(sat - targets, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(zd.line_of_sight, (sat - targets) / zd.slant_range_m[:, None], atol=1e-12)
    assert np.abs(np.einsum("ij,ij->i", zd.line_of_sight, vel)).max() < 1e-6


def plane_look(shape: tuple[int, int], elevation_deg: float) -> MapLook:
    """Antenna due west, ``elevation_deg`` above the horizon, everywhere."""
    rise = np.full(shape, np.tan(np.radians(elevation_deg)))
    return MapLook(np.full(shape, -1.0), np.zeros(shape), rise)


@pytest.mark.parametrize("elevation_deg", [40.0, 50.0])
def test_ray_shadow_behind_a_cliff(elevation_deg: float) -> None:
    """A cliff of height H dropping away from the antenna shades the ground behind it over
    L = H / tan(elevation) from the cliff's top edge (the Earth's curvature adds under 0.01 m)."""
    pixel, height = 10.0, 300.0
    shape = (20, 400)
    h = np.zeros(shape)
    h[:, :100] = height  # plateau on the antenna side; the bilinear edge drops from x = 990 to 1000 m
    occluded, complete = ray_shadow(h, pixel, plane_look(shape, elevation_deg))
    length = height / np.tan(np.radians(elevation_deg))
    x = np.arange(shape[1]) * pixel
    expected = (x >= 1000.0) & (x < 990.0 + length)
    np.testing.assert_array_equal(occluded, np.broadcast_to(expected, shape))
    assert complete[:, 100:].all()


def test_ray_shadow_gentle_slope_and_incomplete_rays() -> None:
    shape = (10, 50)
    c = np.arange(shape[1])
    h = np.broadcast_to(500.0 + 1.0 * (49 - c), shape).copy()  # rising towards the antenna at 10 %
    occluded, complete = ray_shadow(h, 10.0, plane_look(shape, 40.0))
    assert not occluded.any() and complete.all()
    # a 2000 m wall at the far edge (facing the antenna, shading nothing) raises the highest node:
    # rays from everywhere else leave the grid long before they climb over it
    h[:, 49] = 2000.0
    occluded, complete = ray_shadow(h, 10.0, plane_look(shape, 40.0))
    assert not occluded.any()
    assert not complete[:, :49].any() and complete[:, 49].all()


def fold_geometry(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Line = row; pixel along a row rises 1 per column, falls 1 per column over columns 50-60
    (the slope facing the antenna folds over), then rises again: pixels 40-50 are imaged three times."""
    c = np.arange(shape[1], dtype=np.float64)
    p = np.where(c <= 50, c, np.where(c <= 60, 100 - c, c - 20))
    rows = np.arange(shape[0], dtype=np.float64)
    return np.repeat(rows[:, None], shape[1], axis=1), np.repeat(p[None, :], shape[0], axis=0)


def test_layover_by_surface_coverage_of_a_fold() -> None:
    line, pixel = fold_geometry((30, 120))
    counts, origin = image_coverage(line, pixel)
    assert origin == (0, 0)
    interior = counts[2:-2]
    np.testing.assert_array_equal(interior[:, 41:50], 3)  # foreground, slope and background
    np.testing.assert_array_equal(interior[:, 1:39], 1)
    np.testing.assert_array_equal(interior[:, 52:99], 1)
    layover = shared_cell_layover(line, pixel)
    c = np.arange(120)
    expected = (c >= 40) & (c <= 70)  # every facet whose pixel lies in [40, 50]
    # only where the pixel is exactly 50, the edge of the thrice-imaged interval, may a facet go
    # either way (the fold's tip and the background's point there)
    assert set(np.flatnonzero(layover[5] != expected)) <= {50, 70}


def test_no_layover_without_a_fold() -> None:
    """A rotated, sheared, non-folding mapping tiles the image once."""
    rows, cols = np.mgrid[0:60, 0:80].astype(np.float64)
    line = 0.9 * rows + 0.2 * cols + 3.3
    pixel = -0.15 * rows + 1.1 * cols + 0.01 * cols**1.5
    counts, (l0, p0) = image_coverage(line, pixel)
    inside = np.zeros(counts.shape, bool)
    inside[15:45, 20:70] = True  # well inside the mapped quadrilateral
    assert (counts[inside] == 1).all()
    assert not shared_cell_layover(line, pixel).any()
