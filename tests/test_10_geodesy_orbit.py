"""Layer 1: geodesy, the EGM96 geoid, orbit interpolation."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from scipy import ndimage

from pipeline.dem import geoid
from pipeline.core.geodesy import ecef_to_geodetic, geodetic_to_ecef
from pipeline.sar.annotation import parse_annotation
from pipeline.sar.orbit import Orbit, OrbitPolynomial

from .conftest import REAL_S1_ASCENDING, REAL_S1_DESCENDING


def test_geodetic_ecef_against_pyproj() -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(-80, 80, 200)
    lon = rng.uniform(-180, 180, 200)
    h = rng.uniform(-100, 9000, 200)
    xyz = geodetic_to_ecef(lat, lon, h)
    t = pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    x, y, z = t.transform(lon, lat, h)
    np.testing.assert_allclose(xyz, np.stack([x, y, z], -1), atol=1e-6)
    lat2, lon2, h2 = ecef_to_geodetic(xyz)
    np.testing.assert_allclose(lat2, lat, atol=1e-10)
    np.testing.assert_allclose(lon2, lon, atol=1e-10)
    np.testing.assert_allclose(h2, h, atol=1e-6)
    # a satellite at 700 km
    _, _, hs = ecef_to_geodetic(geodetic_to_ecef(45.0, 7.0, 700_000.0))
    assert abs(hs - 700_000.0) < 1e-5


def test_geoid_matches_proj_vgridshift() -> None:
    """Our bilinear interpolation of the vendored grid equals PROJ's on the same grid."""
    rng = np.random.default_rng(1)
    lat = rng.uniform(36, 59, 100)
    lon = rng.uniform(-9, 29, 100)
    ours = geoid.find_grid(lat, lon).undulation(lat, lon)
    t = pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=vgridshift +grids={geoid.VENDORED_GRID} +multiplier=1 "
        "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )
    _, _, theirs = t.transform(lon, lat, np.zeros(100))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_geoid_alps_value_and_conversion() -> None:
    # EGM96 undulation in the northern French Alps is about +50 m
    n = geoid.find_grid(45.5, 6.5).undulation(45.5, 6.5)
    assert 49.0 < float(n) < 54.0
    h = geoid.orthometric_to_ellipsoidal(1000.0, 45.5, 6.5)
    assert float(geoid.ellipsoidal_to_orthometric(h, 45.5, 6.5)) == pytest.approx(1000.0)


def test_geoid_outside_coverage_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(geoid.GeoidError, match="no EGM96 grid covers"):
        geoid.find_grid(-30.0, 140.0, path=geoid.VENDORED_GRID)


@pytest.mark.parametrize("path", [REAL_S1_DESCENDING, REAL_S1_ASCENDING])
def test_orbit_interpolation_leave_one_out(path) -> None:
    """Fitting 15 of the 16 annotated state vectors predicts the 16th to better than 0.5 m."""
    orbit = parse_annotation(path).orbit
    worst = 0.0
    for k in range(3, orbit.time_s.size - 3):
        keep = np.arange(orbit.time_s.size) != k
        poly = OrbitPolynomial(Orbit(orbit.epoch, orbit.time_s[keep], orbit.position_m[keep], orbit.velocity_m_s[keep]))
        worst = max(worst, float(np.linalg.norm(poly.position(orbit.time_s[k]) - orbit.position_m[k])))
    assert worst < 0.5
    poly = OrbitPolynomial(orbit)
    # velocity is the derivative of the position fit: it matches the annotation to about 1 cm/s
    np.testing.assert_allclose(poly.velocity(orbit.time_s), orbit.velocity_m_s, atol=0.05)


def test_compiled_zero_doppler_newton_matches_the_numpy_iteration() -> None:
    """The compiled per-target Newton solve against the vectorised NumPy iteration it replaced, on the real
    annotation's orbit and targets across its swath and heights: same times (1e-9 s), zero Doppler."""
    from pipeline.sar.geocoding import zero_doppler_time

    annotation = parse_annotation(REAL_S1_DESCENDING)
    poly = OrbitPolynomial(annotation.orbit)
    g = annotation.geolocation_grid
    rng = np.random.default_rng(0)
    lat = rng.uniform(g.latitude_deg.min(), g.latitude_deg.max(), 500)
    lon = rng.uniform(g.longitude_deg.min(), g.longitude_deg.max(), 500)
    p = geodetic_to_ecef(lat, lon, rng.uniform(-100.0, 4800.0, 500)).reshape(20, 25, 3)
    guess = 0.5 * annotation.image.last_line_time_s
    t = np.full(p.shape[:-1], guess)
    for _ in range(10):  # the previous implementation: every target until all steps are below 1e-8 s
        s, v, a = poly.position(t), poly.velocity(t), poly.acceleration(t)
        d = p - s
        step = np.einsum("...i,...i->...", d, v) / (np.einsum("...i,...i->...", d, a) - np.einsum("...i,...i->...", v, v))
        t = t - step
        if np.all(np.abs(step) < 1e-8):
            break
    got = zero_doppler_time(poly, p, guess)
    assert got.shape == (20, 25) and zero_doppler_time(poly, p[3, 4], guess).shape == ()
    assert zero_doppler_time(poly, p[3, 4], guess) == got[3, 4]
    np.testing.assert_allclose(got, t, rtol=0, atol=1e-9)
    doppler = np.einsum("...i,...i->...", p - poly.position(got), poly.velocity(got))
    assert np.abs(doppler).max() < 1e-3 * 7600.0  # m^2/s: the target within a millimetre of the zero-Doppler plane


def test_dem_on_grid_lattice_matches_the_exact_transform_and_strips_match_the_whole() -> None:
    """Latitude, longitude and undulation interpolated from a 16 px lattice on a 10 m UTM grid: within
    1e-8 deg and 0.5 mm of PROJ and the geoid grid at every pixel; heights from a rough synthetic DEM
    within 1 cm of the per-pixel computation; strips of any height give the whole grid's bytes."""
    from pipeline.core.grid import MapGrid
    from pipeline.dem.prepare import dem_on_grid, grid_lat_lon, lattice_interpolate, _lattice_nodes
    from pipeline.dem.tiles import LonLatRaster

    grid = MapGrid(32632, 288310.0, 5052530.0, 10.0, 1500, 400)
    lat, lon = grid_lat_lon(grid)
    egm = geoid.find_grid([45.0, 46.0], [6.0, 7.0])
    n_exact = egm.undulation(lat, lon)
    node_rows, node_cols = _lattice_nodes(0, 399, 16, 400), _lattice_nodes(0, 1499, 16, 1500)
    rows, cols = np.arange(400), np.arange(1500)
    for exact in (lat, lon):
        assert np.abs(lattice_interpolate(exact[node_rows][:, node_cols], node_rows, node_cols, rows, cols)
                      - exact).max() < 1e-8
    assert np.abs(lattice_interpolate(n_exact[node_rows][:, node_cols], node_rows, node_cols, rows, cols)
                  - n_exact).max() < 5e-4
    rng = np.random.default_rng(0)
    relief = ndimage.gaussian_filter(rng.normal(size=(400, 400)), 3.0)
    relief *= 2.0 * 30.0 / np.abs(np.gradient(relief)).max()  # steepest node-to-node slope 2 (63 deg) at 30 m
    dem = LonLatRaster((2000.0 + relief).astype(np.float32), 45.65, 6.25, 1 / 3600)
    ortho, ell = dem_on_grid(dem, grid, egm)
    ortho_exact, ell_exact = dem_on_grid(dem, grid, egm, lattice_px=1)
    # position error (<= 1e-8 deg, about 1 mm) times slope (<= 2), plus float32 rounding at 2000 m
    assert np.abs(ortho - ortho_exact).max() < 0.003 and np.abs(ell - ell_exact).max() < 0.003
    for strip in (1, 37, 100):
        parts = [dem_on_grid(dem, grid, egm, slice(r, r + strip)) for r in range(0, 400, strip)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), ortho)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), ell)


def test_row_cache_serves_every_request_exactly_and_keeps_earlier_results() -> None:
    """pipeline.core.grid.RowCache against the array it reads: random walks forward, backward and jumps
    (each answer equal to the rows asked, every earlier answer still intact after later requests), and a
    forward sweep of overlapping requests reads each row about once; the same reading straight into its
    buffer (``read_into``)."""
    from pipeline.core.grid import RowCache

    table = np.random.default_rng(1).normal(size=(3000, 7)).astype(np.float32)
    reads: list[tuple[int, int]] = []

    def read(a: int, b: int) -> np.ndarray:
        reads.append((a, b))
        return table[a:b].astype(np.float64)  # the cache stores float32

    def read_into(a: int, b: int, out: np.ndarray) -> None:  # as rasterio's read(out=...): no copy
        reads.append((a, b))
        assert out.shape == (b - a, table.shape[1]) and out.dtype == np.float32 and out.flags.c_contiguous
        out[...] = table[a:b]

    rng = np.random.default_rng(2)
    for ahead, into in ((0, None), (5, None), (256, None), (5, read_into), (256, read_into)):
        cache, held = RowCache(read, len(table), ahead=ahead, read_into=into), []
        first = 1500
        for step in range(400):
            move = rng.choice([-1, 1, 1]) * int(rng.integers(0, 60)) if step % 50 else int(rng.integers(-1400, 1400))
            first = int(np.clip(first + move, 0, len(table) - 1))
            stop = min(first + int(rng.integers(1, 700)), len(table))
            got = cache.get(first, stop)
            assert got.dtype == np.float32 and got.flags.c_contiguous
            np.testing.assert_array_equal(got, table[first:stop])
            held.append((first, stop, got))
        for a, b, got in held:  # nothing returned was overwritten since
            np.testing.assert_array_equal(got, table[a:b])
    for into in (None, read_into):
        reads.clear()
        cache = RowCache(read, len(table), ahead=64, read_into=into)
        for a in range(0, 2800, 50):  # strips of 200 rows moving 50 at a time
            np.testing.assert_array_equal(cache.get(a, a + 200), table[a : a + 200])
        assert sum(b - a for a, b in reads) <= len(table), sum(b - a for a, b in reads)
