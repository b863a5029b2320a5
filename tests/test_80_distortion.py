"""Foreshortening, layover and shadow maps: closed-form geometry, flat terrain, simulator truth."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pipeline.core.geodesy import ellipsoid_normal, geodetic_to_ecef
from pipeline.core.grid import aoi_grid_around
from pipeline.sar import distortion as d
from pipeline.sar.lattice import RadarLattice
from pipeline.sar.product import RadarGeometry
from pipeline.simulate.orbit_design import design_orbit
from pipeline.simulate.s1_design import S1Acquisition, design_product

from .conftest import BuiltWorld

LAT, LON, BASE_M = 45.4, 6.6, 1000.0


@lru_cache(maxsize=8)
def scene(incidence_deg: float, descending: bool):
    """A product geometry seeing (LAT, LON) at ``incidence_deg``, its 8 km map grid, and the range direction."""
    grid = aoi_grid_around(LAT, LON, 8000)
    target = geodetic_to_ecef(LAT, LON, BASE_M)
    orbit = design_orbit(target, incidence_deg, descending)
    left, bottom, right, top = grid.bounds
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True).transform(
        np.array([left, right, left, right] * 2), np.array([bottom, bottom, top, top] * 2))
    footprint = geodetic_to_ecef(lat, lon, np.array([BASE_M] * 4 + [BASE_M + 1200] * 4))
    acq = S1Acquisition("S1A", np.datetime64("2020-08-12T05:34:20", "ns"), 1, 1, 1)
    geometry = RadarGeometry(design_product(orbit, acq, footprint, BASE_M).annotation)
    # the ground range direction (away from the radar) and the look angle at the centre
    lattice = RadarLattice(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, (BASE_M, BASE_M + 1200))
    e0, n0 = grid.easting.mean(), grid.northing.mean()
    los = lattice.line_of_sight(np.array(e0), np.array(n0), np.array(BASE_M))
    east = np.array([-np.sin(np.radians(LON)), np.cos(np.radians(LON)), 0.0])
    north = np.cross(ellipsoid_normal(LAT, LON), east)
    away = -np.array([los @ east, los @ north])
    away /= np.linalg.norm(away)
    theta = float(np.degrees(np.arccos(los @ ellipsoid_normal(LAT, LON))))
    return geometry, grid, away, theta


def profile_dem(grid, away, h_of_x):
    """Heights h(x) with x the signed distance (m) from the centre along ``away`` (ridges run in azimuth)."""
    ee, nn = np.meshgrid(grid.easting - grid.easting.mean(), grid.northing - grid.northing.mean())
    x = ee * away[0] + nn * away[1]
    y = -ee * away[1] + nn * away[0]
    return BASE_M + h_of_x(x, y), x, y


def extent(mask, x, y, band_m=300.0):
    sel = mask & (np.abs(y) < band_m)
    assert sel.any(), "nothing flagged"
    return float(x[sel].min()), float(x[sel].max())


def ridge(height, front_deg, back_deg):
    lf, lb = height / np.tan(np.radians(front_deg)), height / np.tan(np.radians(back_deg))

    def h(x, y):
        return np.where(x < 0, height * np.clip(1 + x / lf, 0, 1), height * np.clip(1 - x / lb, 0, 1))

    return h, lf, lb


CASES = [(32.0, True), (44.0, True), (32.0, False), (44.0, False)]


@pytest.mark.parametrize(("incidence", "descending"), CASES)
def test_ridge_layover_and_shadow_match_closed_form(incidence: float, descending: bool) -> None:
    geometry, grid, away, theta = scene(incidence, descending)
    H, front, back = 800.0, 60.0, 70.0
    h_of_x, lf, lb = ridge(H, front, back)
    dem, x, y = profile_dem(grid, away, h_of_x)
    out = d.distortion_map(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, dem)
    flags = out["flags"]
    t = np.radians(theta)
    tol = grid.resolution  # 1 px
    # layover: the front slope (active) and the ground sharing its slant ranges (passive)
    gap = H * np.cos(t) - lf * np.sin(t)  # R(foot) - R(top)
    expected_layover = (-lf - gap / np.sin(t), gap / (np.sin(t) + np.tan(np.radians(back)) * np.cos(t)))
    got = extent((flags & d.LAYOVER) > 0, x, y)
    assert abs(got[0] - expected_layover[0]) < tol and abs(got[1] - expected_layover[1]) < tol, (got, expected_layover)
    got = extent((flags & d.ACTIVE_LAYOVER) > 0, x, y)
    assert abs(got[0] + lf) < tol and abs(got[1]) < tol, got
    # shadow: the back slope (active, steeper than 90 - theta) and the ground hidden behind it
    got = extent((flags & d.SHADOW) > 0, x, y)
    assert abs(got[0]) < tol and abs(got[1] - H * np.tan(t)) < tol, (got, H * np.tan(t))
    got = extent((flags & d.ACTIVE_SHADOW) > 0, x, y)
    assert abs(got[0]) < tol and abs(got[1] - lb) < tol, (got, lb)
    # gentle slopes elsewhere: foreshortening on the radar side only
    fs = (flags & d.FORESHORTENING) > 0
    assert not (fs & (x > 0) & (np.abs(y) < 300)).any()


@pytest.mark.parametrize(("incidence", "descending"), CASES[:2])
def test_cone_through_its_centre(incidence: float, descending: bool) -> None:
    """A truncated cone (a 40 m flat top, so that the profile through the centre reaches the full height)."""
    geometry, grid, away, theta = scene(incidence, descending)
    H, slope, top = 800.0, 60.0, 40.0
    base = top + H / np.tan(np.radians(slope))
    dem, x, y = profile_dem(grid, away, lambda x, y: H * np.clip((base - np.hypot(x, y)) / (base - top), 0, 1))
    flags = d.distortion_map(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, dem)["flags"]
    t = np.radians(theta)
    gap = H * np.cos(t) - (base - top) * np.sin(t)  # R(foot) - R(near edge of the top)
    # a curved boundary measured on pixel centres in a 20 m band, and the top's edge rounded by the
    # DEM's bilinear interpolation: 2 px (the ridge's straight edges are held to 1 px)
    tol = 2 * grid.resolution
    got = extent((flags & d.LAYOVER) > 0, x, y, band_m=10.0)
    assert abs(got[0] - (-base - gap / np.sin(t))) < tol, (got, -base - gap / np.sin(t))
    got = extent((flags & d.ACTIVE_LAYOVER) > 0, x, y, band_m=10.0)
    assert abs(got[0] + base) < tol and abs(got[1] + top) < tol, (got, -base, -top)
    got = extent((flags & d.SHADOW) > 0, x, y, band_m=10.0)
    assert abs(got[1] - (top + H * np.tan(t))) < tol, (got, top + H * np.tan(t))


@pytest.mark.parametrize(("incidence", "descending"), CASES[1:3])
def test_vertical_steps(incidence: float, descending: bool) -> None:
    geometry, grid, away, theta = scene(incidence, descending)
    H, t = 300.0, np.radians(theta)
    # a cliff facing the radar (the plateau lies away from it): layover H / tan(theta) on both sides
    dem, x, y = profile_dem(grid, away, lambda x, y: np.where(x > 0, H, 0.0))
    flags = d.distortion_map(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, dem)["flags"]
    got = extent((flags & d.LAYOVER) > 0, x, y)
    tol = 1.5 * grid.resolution  # the DEM makes the step a one-pixel ramp
    assert abs(got[0] + H / np.tan(t)) < tol and abs(got[1] - H / np.tan(t)) < tol, (got, H / np.tan(t))
    # a cliff facing away: shadow H tan(theta) behind it
    dem, x, y = profile_dem(grid, away, lambda x, y: np.where(x < 0, H, 0.0))
    flags = d.distortion_map(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, dem)["flags"]
    got = extent((flags & d.SHADOW) > 0, x, y)
    assert abs(got[0]) < tol and abs(got[1] - H * np.tan(t)) < tol, (got, H * np.tan(t))


@pytest.mark.parametrize(("incidence", "descending"), CASES)
def test_flat_terrain_has_no_flag(incidence: float, descending: bool) -> None:
    geometry, grid, away, theta = scene(incidence, descending)
    dem = np.full((grid.height, grid.width), BASE_M)
    out = d.distortion_map(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, dem)
    assert not out["flags"].any()
    assert abs(float(np.median(out["local_incidence_deg"])) - theta) < 0.05
    np.testing.assert_allclose(out["local_incidence_deg"], out["ellipsoid_incidence_deg"], atol=1e-3)


def test_evaluation_regions_rule() -> None:
    flags = np.array([0, d.FORESHORTENING, d.ACTIVE_LAYOVER, d.PASSIVE_LAYOVER | d.PASSIVE_SHADOW, d.ACTIVE_SHADOW],
                     np.uint8)
    np.testing.assert_array_equal(d.evaluation_regions(flags), [0, 1, 1, 2, 2])


@pytest.mark.parametrize("date", [0, 1], ids=["descending", "ascending"])
def test_against_the_simulator_truth(alpine_world: BuiltWorld, tmp_path: Path, date: int) -> None:
    """The pipeline's maps from the SRTM tile (voids filled) and the product vs the forward model's
    truth, which the simulator computes with its own code (ray casting, surface coverage of the image);
    on both passes."""
    from pipeline.simulate.agreement import distortion_agreement
    from pipeline.stages.dem import prepare_dem
    from pipeline.stages.distortion import distortion_maps

    world = alpine_world.world
    safe = alpine_world.s1_safes()[date]
    aoi = world.grid  # the whole simulated region (the small AOI has few shadows)
    flags_path, geo_path = tmp_path / "flags.tif", tmp_path / "geometry.tif"
    extended = aoi.expanded(3000.0)  # the scan margin of the workflow's default
    ortho, ell = tmp_path / "dem_egm96.tif", tmp_path / "dem_wgs84.tif"
    prepare_dem(alpine_world.root / "dem", extended, ortho, ell)
    distortion_maps(safe, ortho, ell, aoi, flags_path, geo_path)
    with rasterio.open(flags_path) as src:
        flags = src.read(1)
        assert src.transform.c == aoi.left and src.transform.f == aoi.top
        # the overviews (what decimated reads and quicklooks see) hold only flag values of the map itself:
        # nearest, not an interpolation that invents bit combinations
        assert src.overviews(1)
        decimated = src.read(1, out_shape=(src.height // 2, src.width // 2))
        assert set(np.unique(decimated)) <= set(np.unique(flags)), np.unique(decimated)
    with rasterio.open(alpine_world.root / "truth" / f"{safe.name.removesuffix('.SAFE')}_distortion.tif") as src:
        truth = src.read(1)
    a = distortion_agreement(flags, truth)
    assert a.shadow_truth_px > 1000 and a.layover_truth_px > 1000
    # measured (where the product images the ground): descending layover 0.937, shadow 0.920; ascending
    # 0.867, 0.962. Differences: the SRTM's rounding and filled voids, the two definitions at the edges of
    # shadows, and the truth's sampling of fold tips (2 x 8 samples a pixel): with 4 x 16 and 8 x 32 the
    # layover IoU rises to 0.951, 0.959 (descending) and 0.895, 0.916 (ascending, whose layover here is
    # half as large for as much fold edge)
    assert a.layover_iou >= (0.9, 0.85)[date] and a.shadow_iou >= 0.9, a
    with rasterio.open(geo_path) as src:
        assert src.descriptions == ("local_incidence_deg", "slope_deg", "aspect_deg", "region")
    # the workflow's job writes the flags alone (no orthometric DEM, no geometry layers): the same flags
    flags_only = tmp_path / "flags_only.tif"
    distortion_maps(safe, None, ell, aoi, flags_only, None)
    with rasterio.open(flags_only) as src:
        np.testing.assert_array_equal(src.read(1), flags)


@pytest.mark.parametrize(("incidence", "descending"), CASES[1:3])
def test_strips_and_regions_give_the_whole_map(incidence: float, descending: bool) -> None:
    """Streaming (any strip height, a sub-region, descending and ascending: the profile cache moves
    both ways along the track) gives exactly the whole-array result."""
    geometry, grid, away, theta = scene(incidence, descending)
    h_of_x, _, _ = ridge(800.0, 60.0, 70.0)
    dem, x, y = profile_dem(grid, away, lambda x, y: h_of_x(x, y) * np.cos(y / 1500.0) ** 2)
    dem = dem.astype(np.float32)
    crs = f"EPSG:{grid.epsg}"
    whole = d.distortion_map(geometry, crs, grid.easting, grid.northing, dem, strip_rows=1000)
    assert (whole["flags"] & d.LAYOVER).any() and (whole["flags"] & d.SHADOW).any()
    thin = d.distortion_map(geometry, crs, grid.easting, grid.northing, dem, strip_rows=7)
    for name in whole:
        np.testing.assert_array_equal(thin[name], whole[name], err_msg=name)
    reads = []

    def heights(r0: int, r1: int) -> np.ndarray:
        reads.append(r1 - r0)
        return dem[r0:r1]

    region = (123, 611, 57, 700)
    strips = list(d.distortion_strips(geometry, crs, grid.easting, grid.northing, heights,
                                      (float(dem.min()), float(dem.max())), region, strip_rows=50))
    got = np.concatenate([layers["flags"] for _, layers in strips])
    assert [r for r, _ in strips] == list(range(123, 611, 50))
    np.testing.assert_array_equal(got, whole["flags"][123:611, 57:700])
    # the DEM rows the profiles need are read once each (plus each strip's own rows and margins)
    strip_rows = sum(min(50, 611 - r) + 2 for r in range(123, 611, 50))
    assert sum(reads) - strip_rows <= dem.shape[0] + 2 * 4, (sum(reads), strip_rows, dem.shape[0])


def test_compiled_tile_geometry_matches_the_numpy_path() -> None:
    """pipeline.sar.facets (one compiled pass) against the pure NumPy functions it replaced: PROJ for
    every pixel, numpy.gradient normals, the lattice's vectorised lookup and the exact timing."""
    from pipeline.core.geodesy import ellipsoid_normal
    from pipeline.sar import backscatter as bs
    from pipeline.sar.facets import SurfaceNodes, radar_tables
    from pipeline.sar.lattice import map_grid_ecef
    from pipeline.sar.surface import surface_normals

    geometry, grid, away, _ = scene(44.0, True)
    dem, _, _ = profile_dem(grid, away, lambda x, y: 600 * np.exp(-(x**2 + y**2) / 2e6) + 30 * np.sin(x / 90.0))
    lattice = RadarLattice(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing,
                           (float(dem.min()), float(dem.max())))
    surface = SurfaceNodes.of(f"EPSG:{grid.epsg}", grid.easting, grid.northing)
    for r, c, h, w in [(0, 0, 64, 80), (300, 411, 97, 50), (grid.height - 40, grid.width - 33, 40, 33)]:
        window = bs.margin_window(grid, r, c, h, w)
        r0, c0, r1, c1 = window
        got = bs.tile_geometry(radar_tables(lattice), surface, grid, dem[r0:r1, c0:c1], window, r, c, h, w)
        ecef, lat, lon = map_grid_ecef(f"EPSG:{grid.epsg}", grid.easting[c0:c1], grid.northing[r0:r1], dem[r0:r1, c0:c1])
        normal, area = surface_normals(ecef, grid.resolution, grid.resolution)
        inner = (slice(r - r0, r - r0 + h), slice(c - c0, c - c0 + w))
        ee, nn = np.meshgrid(grid.easting[c : c + w], grid.northing[r : r + h])
        g = lattice.geometry_at(ee, nn, dem[r : r + h, c : c + w])
        cos_local = np.einsum("...i,...i->...", normal[inner], g["los"])
        np.testing.assert_allclose(got.line, g["line"], atol=1e-6)
        np.testing.assert_allclose(got.pixel, g["pixel"], atol=1e-6)
        # latitude/longitude interpolated between PROJ nodes: sub-millimetre positions, normals within 1e-5 rad
        np.testing.assert_allclose(got.cos_local, cos_local, atol=1e-5)
        cos_ell = np.einsum("...i,...i->...", ellipsoid_normal(lat[inner], lon[inner]), g["los"])
        np.testing.assert_allclose(got.cos_ellipsoid, cos_ell, atol=1e-9)
        np.testing.assert_allclose(got.projected_area_m2, np.clip(cos_local, 0, None) * area[inner], rtol=1e-4,
                                   atol=1e-3)


def test_compiled_slope_aspect_matches_gradients_and_a_plane() -> None:
    """pipeline.sar.surface.slope_aspect (compiled) against numpy.gradient on rough heights (whole array and
    an inner window whose margin feeds the differences), and against the closed form on a plane."""
    from pipeline.sar.surface import slope_aspect

    z = np.random.default_rng(3).normal(0.0, 40.0, (50, 61)).cumsum(axis=0).astype(np.float32)
    dzdy, dzdx = np.gradient(z.astype(np.float64), 10.0, 12.0)
    want_slope = np.degrees(np.arctan(np.hypot(dzdx, -dzdy)))
    want_aspect = np.degrees(np.arctan2(-dzdx, dzdy)) % 360.0
    slope, aspect = slope_aspect(z, (10.0, 12.0))
    np.testing.assert_allclose(slope, want_slope, rtol=0, atol=1e-12)
    np.testing.assert_allclose(aspect, want_aspect, rtol=0, atol=1e-10)
    inner = (slice(1, 49), slice(3, 60))
    out = (np.empty((48, 57), np.float32), np.empty((48, 57), np.float32))
    slope_aspect(z, (10.0, 12.0), inner, out=out)
    np.testing.assert_array_equal(out[0], want_slope[inner].astype(np.float32))
    np.testing.assert_array_equal(out[1], want_aspect[inner].astype(np.float32))
    # a plane rising 0.3 m/m to the east and 0.1 m/m to the north: slope atan(hypot), facing west-south-west
    ee, nn = np.meshgrid(np.arange(20) * 5.0, -np.arange(15) * 5.0)
    slope, aspect = slope_aspect(0.3 * ee + 0.1 * nn, (5.0, 5.0))
    np.testing.assert_allclose(slope, np.degrees(np.arctan(np.hypot(0.3, 0.1))), atol=1e-12)
    np.testing.assert_allclose(aspect, 360.0 - np.degrees(np.arctan2(0.3, -0.1)) + 0.0, atol=1e-12)


def test_surface_nodes_rotation_equals_library_trigonometry() -> None:
    """The nodes' sines and cosines rotated by the interpolated offset (a 7th-order series) give the same
    ECEF positions and ellipsoid normals as the library's sin and cos of the interpolated angles, on a
    fine grid and on one as coarse as the nodes allow (30 km between nodes); a coarser grid is refused."""
    from pipeline.core.constants import WGS84_A_M, WGS84_E2
    from pipeline.core.grid import MapGrid
    from pipeline.sar.facets import NODE_SPACING, SurfaceNodes, node_weights

    base = aoi_grid_around(LAT, LON, 8000)
    for pixel_m in (10.0, 3750.0):
        n = 60
        grid = MapGrid(base.epsg, base.left, base.top, pixel_m, n, n)
        surface = SurfaceNodes.of(f"EPSG:{grid.epsg}", grid.easting, grid.northing)
        heights = np.random.default_rng(0).uniform(0.0, 4000.0, (n - 5, n - 7)).astype(np.float32)
        got = surface.ecef(3, 5, heights)
        ri, rw = node_weights(surface.rows, np.arange(3, n - 2))
        ci, cw = node_weights(surface.cols, np.arange(5, n - 2))

        def bilinear(v):
            rw_, cw_ = rw[:, None], cw[None, :]
            return ((1 - rw_) * (1 - cw_) * v[ri][:, ci] + (1 - rw_) * cw_ * v[ri][:, ci + 1]
                    + rw_ * (1 - cw_) * v[ri + 1][:, ci] + rw_ * cw_ * v[ri + 1][:, ci + 1])

        lat, lon = bilinear(surface.trig[..., 0]), bilinear(surface.trig[..., 1])
        nu = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
        h = heights.astype(np.float64)
        want = np.stack([(nu + h) * np.cos(lat) * np.cos(lon), (nu + h) * np.cos(lat) * np.sin(lon),
                         (nu * (1 - WGS84_E2) + h) * np.sin(lat), np.cos(lat) * np.cos(lon),
                         np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
        np.testing.assert_allclose(got[..., :3], want[..., :3], rtol=0, atol=1e-8)  # metres
        np.testing.assert_allclose(got[..., 3:], want[..., 3:], rtol=0, atol=1e-15)
    coarse = MapGrid(base.epsg, base.left, base.top, 20_000.0, 3 * NODE_SPACING, 3 * NODE_SPACING)
    with pytest.raises(ValueError, match="too coarse"):
        SurfaceNodes.of(f"EPSG:{coarse.epsg}", coarse.easting, coarse.northing)


def test_compiled_timing_equals_the_product_timing() -> None:
    from pipeline.sar.facets import radar_line, radar_pixel

    geometry, *_ = scene(32.0, False)
    timing = geometry.timing()
    rng = np.random.default_rng(3)
    t = np.concatenate([rng.uniform(-2.0, 30.0, 500), timing.record_time_s])  # records' own times: ties
    r = rng.uniform(8.0e5, 9.6e5, t.size)
    expected = geometry.timing_to_radar(t, r)
    args = timing.args()
    line = [radar_line(a, b, args[3], args[4], args[5]) for a, b in zip(t, r)]
    pixel = [radar_pixel(a, b, args[0], args[1], args[2], args[6]) for a, b in zip(t, r)]
    np.testing.assert_array_equal(line, expected.line)
    np.testing.assert_array_equal(pixel, expected.pixel)
