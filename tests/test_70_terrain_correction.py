"""The Sentinel-1 chain: DEM preparation, terrain correction, radiometry, bad input."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from pipeline.io.rasters import band_range
from pipeline.stages.dem import prepare_dem
from pipeline.core.geodesy import geodetic_to_ecef
from pipeline.core.grid import MapGrid, aoi_grid_around
from pipeline.sar import open_product
from pipeline.sar.facets import radar_extents
from pipeline.sar.lattice import RadarLattice
from pipeline.sar.radiometry import splat, to_db
from pipeline.sar.safe import SafeError
from pipeline.stages.terrain_correct import TerrainCorrectionError, TerrainCorrectionParams, terrain_correct
from pipeline.simulate import landcover, scene
from pipeline.simulate.landcover import Cover

from .conftest import BuiltWorld


def aoi_of(built: BuiltWorld) -> MapGrid:
    spec = built.world.spec
    return aoi_grid_around(spec.center_lat, spec.center_lon, spec.aoi_size_m)


def dem_for(built: BuiltWorld, tmp: Path) -> Path:
    out = tmp / "dem_wgs84.tif"
    if not out.exists():
        prepare_dem(built.root / "dem", aoi_of(built), tmp / "dem_egm96.tif", out)
    return out


def run_tc(built: BuiltWorld, tmp: Path, index: int = 0, **params) -> tuple[Path, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    name = "_".join(f"{k}-{v}" for k, v in params.items()) or "default"
    out, geo = tmp / f"bs_{index}_{name}.tif", tmp / f"geo_{index}_{name}.tif"
    if not out.exists():
        terrain_correct(built.s1_safes()[index], dem_for(built, tmp), out, geo, TerrainCorrectionParams.from_dict(params))
    return out, geo


@pytest.fixture(scope="module")
def tc_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tc")


def world_window(built: BuiltWorld, aoi: MapGrid) -> tuple[slice, slice]:
    g = built.world.grid
    r0 = int(round((g.top - aoi.top) / g.resolution))
    c0 = int(round((aoi.left - g.left) / g.resolution))
    return slice(r0, r0 + aoi.height), slice(c0, c0 + aoi.width)


def test_dem_on_the_aoi_grid_matches_the_world(alpine_world: BuiltWorld, tc_dir: Path) -> None:
    dem = dem_for(alpine_world, tc_dir)
    aoi = aoi_of(alpine_world)
    with rasterio.open(dem) as src:
        ell = src.read(1)
        assert src.crs.to_epsg() == aoi.epsg and src.transform.c == aoi.left and src.transform.f == aoi.top
        assert src.res == (10.0, 10.0)
    truth = alpine_world.world.ellipsoidal_height_m[world_window(alpine_world, aoi)]
    # the world samples the same tile the same way (voids filled in the DEM, exact in the truth)
    diff = np.abs(ell - truth)
    assert np.median(diff) < 0.01 and np.percentile(diff, 99.9) < 50
    with rasterio.open(tc_dir / "dem_egm96.tif") as src:
        assert 45 < float(np.mean(ell - src.read(1))) < 56  # EGM96 undulation in the Alps
    # the DEMs record their exact height range (what terrain correction and distortion read first)
    for path in (dem, tc_dir / "dem_egm96.tif"):
        with rasterio.open(path) as src:
            heights = src.read(1)
            assert band_range(src) == (float(np.nanmin(heights)), float(np.nanmax(heights)))
            assert "STATISTICS_MAXIMUM" in src.tags(1)


def test_lattice_matches_the_exact_solution(alpine_world: BuiltWorld) -> None:
    product = open_product(alpine_world.s1_safes()[0])
    aoi = aoi_of(alpine_world)
    rng = np.random.default_rng(3)
    e = rng.uniform(aoi.bounds[0], aoi.bounds[2], 2000)
    n = rng.uniform(aoi.bounds[1], aoi.bounds[3], 2000)
    h = rng.uniform(500, 3500, 2000)
    lattice = RadarLattice(product.geometry, f"EPSG:{aoi.epsg}", e, n, (400.0, 3600.0))
    fast = lattice.radar_coordinates(e, n, h)
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(f"EPSG:{aoi.epsg}", "EPSG:4326", always_xy=True).transform(e, n)
    exact = product.geometry.ecef_to_radar(geodetic_to_ecef(lat, lon, h))
    assert np.abs(fast.line - exact.line).max() < 0.01
    assert np.abs(fast.pixel - exact.pixel).max() < 0.01


def test_radar_extents_hold_every_pixel_of_their_windows(alpine_world: BuiltWorld) -> None:
    """The radar window each map window can reach (from its edges at the extreme heights, what terrain
    flattening waits on) holds the line and pixel of every pixel of it at any height in the range, and
    is tight: its edges are reached within a hundredth of a pixel."""
    product = open_product(alpine_world.s1_safes()[0])
    grid = aoi_of(alpine_world)
    heights = (400.0, 3600.0)
    lattice = RadarLattice(product.geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, heights)
    windows = [(0, 0, 64, 100), (37, 150, 90, 41), (grid.height - 50, grid.width - 70, 50, 70)]
    got = radar_extents(lattice, [(grid.easting[c : c + w], grid.northing[r : r + h]) for r, c, h, w in windows],
                        heights)
    rng = np.random.default_rng(5)
    for (r, c, h, w), (l_min, l_max, p_min, p_max) in zip(windows, got):
        ee, nn = np.meshgrid(grid.easting[c : c + w], grid.northing[r : r + h])
        for hh in (np.full(ee.shape, heights[0]), np.full(ee.shape, heights[1]), rng.uniform(*heights, ee.shape)):
            rc = lattice.radar_coordinates(ee, nn, hh)
            assert l_min <= rc.line.min() and rc.line.max() <= l_max
            assert p_min <= rc.pixel.min() and rc.pixel.max() <= p_max
        extremes = [lattice.radar_coordinates(ee, nn, np.full(ee.shape, x)) for x in heights]
        assert np.isclose(min(x.line.min() for x in extremes), l_min, atol=0.01, rtol=0)
        assert np.isclose(max(x.pixel.max() for x in extremes), p_max, atol=0.01, rtol=0)


def peak(power: np.ndarray, row: float, col: float) -> tuple[float, float]:
    """Sub-pixel peak (parabola through the maximum and its neighbours) near (row, col)."""
    r0, c0 = int(round(row)), int(round(col))
    win = power[r0 - 3 : r0 + 4, c0 - 3 : c0 + 4]
    dr, dc = np.unravel_index(np.nanargmax(win), win.shape)
    pr, pc = r0 - 3 + dr, c0 - 3 + dc
    vertex = lambda a, b, c: 0.5 * (a - c) / (a - 2 * b + c)  # noqa: E731
    return pr + vertex(*power[pr - 1 : pr + 2, pc]), pc + vertex(*power[pr, pc - 1 : pc + 2])


def test_corner_reflectors_land_on_their_map_position(alpine_world: BuiltWorld, tc_dir: Path) -> None:
    errors = []
    for index in range(len(alpine_world.s1_safes())):
        out, _ = run_tc(alpine_world, tc_dir, index)
        with rasterio.open(out) as src:
            vv = 10 ** (src.read(1).astype(np.float64) / 10)
            t = src.transform
        for cr in alpine_world.truth["reflectors"]:
            row = (t.f - cr["northing_m"]) / -t.e - 0.5
            col = (cr["easting_m"] - t.c) / t.a - 0.5
            pr, pc = peak(vv, row, col)
            errors.append((pr - row, pc - col))
    e = np.array(errors)
    rms = float(np.sqrt(np.mean(np.sum(e**2, axis=1))))
    assert rms < 0.25, rms
    assert np.abs(e).max() < 0.5


def test_flat_uniform_cover_sigma0_matches_truth(flat_world: BuiltWorld, tc_dir: Path) -> None:
    out, geo = run_tc(flat_world, tc_dir / "flat")
    aoi = aoi_of(flat_world)
    world = flat_world.world
    win = world_window(flat_world, aoi)
    date = world.spec.dates[0]
    snow = landcover.seasonal_snow(world.height_m, world.slope_deg, world.aspect_deg, world.snow_noise, date.snow_line_m)
    with rasterio.open(out) as src:
        measured = {pol: 10 ** (src.read(b).astype(np.float64) / 10) for b, pol in ((1, "VV"), (2, "VH"))}
        t = src.transform
    near_reflectors = np.zeros((aoi.height, aoi.width), bool)
    for cr in flat_world.truth["reflectors"]:
        r, c = int((t.f - cr["northing_m"]) / -t.e), int((cr["easting_m"] - t.c) / t.a)
        near_reflectors[max(r - 15, 0) : r + 16, max(c - 15, 0) : c + 16] = True
    for cover in (Cover.FOREST, Cover.MEADOW):
        # away from the cover's edges (the impulse response and the interpolation mix neighbours)
        # and from the corner reflectors (bright point targets on open ground)
        core = ndimage.binary_erosion(world.cover == cover, iterations=3)[win] & ~near_reflectors
        assert core.sum() > 2000
        for pol, img in measured.items():
            truth = landcover.sigma0(world.cover, snow, date.wet_snow, world.facets["descending"].cos_local_incidence, pol,
                                     world.texture_db)[win]
            err = 10 * np.log10(np.nanmean(img[core]) / truth[core].mean())
            assert abs(err) < 0.2, (cover.name, pol, err)


def test_gamma0_t_flattens_fore_and_back_slopes(alpine_world: BuiltWorld, tc_dir: Path) -> None:
    sigma, geo = run_tc(alpine_world, tc_dir)
    flat_t, _ = run_tc(alpine_world, tc_dir, quantity="gamma0_t")
    world = alpine_world.world
    win = world_window(alpine_world, aoi_of(alpine_world))
    slope, aspect, cover = world.slope_deg[win], world.aspect_deg[win], world.cover[win]
    f = world.facets["descending"]
    clean = (~f.layover & ~f.shadow)[win]
    mid = clean & (slope > 15) & (slope < 30) & (cover == Cover.FOREST)
    east_ish = np.abs(((aspect - 104.0) + 180) % 360 - 180) < 45  # faces the radar (east-south-east)
    west_ish = np.abs(((aspect - 284.0) + 180) % 360 - 180) < 45
    fore, back = mid & east_ish, mid & west_ish
    assert fore.sum() > 300 and back.sum() > 300
    diffs = {}
    for name, path in (("sigma0", sigma), ("gamma0_t", flat_t)):
        with rasterio.open(path) as src:
            vv = 10 ** (src.read(1).astype(np.float64) / 10)
        diffs[name] = 10 * np.log10(np.nanmean(vv[fore]) / np.nanmean(vv[back]))
    assert diffs["sigma0"] > 2.0
    assert abs(diffs["gamma0_t"]) < 0.5 * diffs["sigma0"], diffs


def test_outputs_are_tagged_cogs_with_geometry(alpine_world: BuiltWorld, tc_dir: Path) -> None:
    out, geo = run_tc(alpine_world, tc_dir)
    with rasterio.open(out) as src:
        assert src.count == 2 and src.descriptions == ("VV", "VH") and src.dtypes[0] == "float32"
        assert src.tags()["units"] == "dB" and src.tags()["quantity"] == "sigma0"
        data = src.read(1)
        assert np.nanmin(data) >= -35.0 and np.isfinite(data).mean() > 0.99
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure.get("LAYOUT") == "COG" and structure.get("COMPRESSION") == "ZSTD"
        assert structure.get("PREDICTOR", "1") == "1"  # speckle: no predictor (pipeline.io.rasters.cog_options)
    with rasterio.open(geo) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"  # smooth layers keep the float predictor
        names = src.descriptions
        assert names == ("local_incidence_deg", "ellipsoid_incidence_deg", "radar_line", "radar_pixel")
        ell = src.read(2)
        assert 30 < np.nanmin(ell) and np.nanmax(ell) < 46


def test_each_output_alone_and_any_tile_size_give_the_same_bytes(alpine_world: BuiltWorld, tc_dir: Path,
                                                                 tmp_path: Path, caplog) -> None:
    """The backscatter without the geometry layers, the geometry alone (rule ``sar_geometry``), and tile
    sizes that cut the grid unevenly (the DEM's rows are read as whole-width strips, kept while the next
    tile row needs them) give the same pixels as the default run; progress is logged about every tenth tile."""
    ref, ref_geo = run_tc(alpine_world, tc_dir)
    safe, dem = alpine_world.s1_safes()[0], dem_for(alpine_world, tc_dir)
    out, geo = tmp_path / "bs.tif", tmp_path / "geo.tif"
    with caplog.at_level("INFO", logger="pipeline.stages.terrain_correct"):
        terrain_correct(safe, dem, out, None, tile_size=64)
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tile ")]
    n_tiles = int(progress[-1].split("/")[1])
    assert n_tiles > 40 and progress[-1] == f"tile {n_tiles}/{n_tiles}" and len(progress) <= 11, progress
    terrain_correct(safe, dem, None, geo, tile_size=333)
    assert not (tmp_path / "geo.tif.raw.tif").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bs.tif",
                                                                                                          "geo.tif"]
    for a_path, b_path in ((ref, out), (ref_geo, geo)):
        with rasterio.open(a_path) as a, rasterio.open(b_path) as b:
            np.testing.assert_array_equal(a.read(), b.read())
            assert a.tags() == b.tags()
    # without the geometry layers the tiles skip their facets (bs.tile_radar): gamma0_T too, whose accumulator
    # still needs them
    ref_t, _ = run_tc(alpine_world, tc_dir, quantity="gamma0_t")
    out_t = tmp_path / "bs_t.tif"
    terrain_correct(safe, dem, out_t, None, TerrainCorrectionParams.from_dict({"quantity": "gamma0_t"}))
    with rasterio.open(ref_t) as a, rasterio.open(out_t) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    with pytest.raises(ValueError, match="needs an output"):
        terrain_correct(safe, dem, None, None)


@pytest.mark.parametrize("index", [0, 1], ids=["descending", "ascending"])
def test_gamma0_t_streams_tiles_to_the_bytes_of_one_tile(alpine_world: BuiltWorld, tc_dir: Path, tmp_path: Path,
                                                        caplog, index: int) -> None:
    """Terrain flattening in one geometry pass: with 64 px tiles each tile waits for the facets of the
    tiles still to come that can reach its radar lines, and only for those (a band of the AOI, not all of
    it); the result is that of one tile holding the whole AOI, whose area is complete at once."""
    safe, dem = alpine_world.s1_safes()[index], dem_for(alpine_world, tc_dir)
    params = TerrainCorrectionParams.from_dict({"quantity": "gamma0_t"})
    whole, tiled = tmp_path / "whole.tif", tmp_path / "tiled.tif"
    terrain_correct(safe, dem, whole, None, params, tile_size=4096)
    with caplog.at_level("INFO", logger="pipeline.stages.terrain_correct"):
        terrain_correct(safe, dem, tiled, None, params, tile_size=64)
    waited = [r.getMessage().split() for r in caplog.records if "waited for their area" in r.getMessage()]
    most, tiles = int(waited[-1][4]), int(waited[-1][6])
    assert tiles > 40 and 2 <= most < tiles / 2, waited
    with rasterio.open(whole) as a, rasterio.open(tiled) as b:
        a_db, b_db = a.read(), b.read()
    assert np.isfinite(a_db).mean() > 0.9
    np.testing.assert_array_equal(a_db, b_db)


def test_safe_zip_gives_the_same_result(alpine_world: BuiltWorld, tc_dir: Path, tmp_path: Path) -> None:
    safe = alpine_world.s1_safes()[0]
    z = tmp_path / (safe.name.removesuffix(".SAFE") + ".zip")
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for p in safe.rglob("*"):
            if p.is_file():
                zf.write(p, f"{safe.name}/{p.relative_to(safe).as_posix()}")
    ref, _ = run_tc(alpine_world, tc_dir)
    out, geo = tmp_path / "bs.tif", tmp_path / "geo.tif"
    terrain_correct(z, dem_for(alpine_world, tc_dir), out, geo)
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    assert open_product(z).polarisations == ["VH", "VV"] or set(open_product(z).polarisations) == {"VV", "VH"}


def broken_copy(safe: Path, tmp: Path) -> Path:
    dst = tmp / safe.name
    shutil.copytree(safe, dst)
    return dst


def test_bad_input_is_named_and_leaves_nothing(alpine_world: BuiltWorld, tc_dir: Path, tmp_path: Path) -> None:
    dem = dem_for(alpine_world, tc_dir)
    safe = alpine_world.s1_safes()[0]
    out, geo = tmp_path / "bs.tif", tmp_path / "geo.tif"

    # missing calibration file
    broken = broken_copy(safe, tmp_path / "nocal")
    next(broken.glob("annotation/calibration/calibration-*-vh-*.xml")).unlink()
    with pytest.raises(SafeError, match=r"VH calibration file .*calibration-s1a-iw-grd-vh-.* is missing"):
        terrain_correct(broken, dem, out, geo)
    # missing noise file
    broken = broken_copy(safe, tmp_path / "nonoise")
    next(broken.glob("annotation/calibration/noise-*-vv-*.xml")).unlink()
    with pytest.raises(SafeError, match="VV noise file"):
        terrain_correct(broken, dem, out, geo)
    # unknown polarisation
    with pytest.raises(SafeError, match="polarisation HH not in the product"):
        terrain_correct(safe, dem, out, geo, TerrainCorrectionParams.from_dict({"polarisations": ["HH"]}))
    # truncated measurement
    broken = broken_copy(safe, tmp_path / "truncated")
    tiff = next(broken.glob("measurement/*-vv-*.tiff"))
    tiff.write_bytes(tiff.read_bytes()[: tiff.stat().st_size // 3])
    with pytest.raises(SafeError, match=tiff.name):
        terrain_correct(broken, dem, out, geo)
    # AOI outside the swath: a DEM grid 60 km away
    far = tmp_path / "far.tif"
    aoi = aoi_of(alpine_world)
    with rasterio.open(dem) as src:
        profile = src.profile
        data = src.read(1)
    profile["transform"] = rasterio.transform.from_origin(aoi.left + 60_000, aoi.top, 10, 10)
    with rasterio.open(far, "w", **profile) as dst:
        dst.write(data, 1)
    with pytest.raises(TerrainCorrectionError, match="outside the swath"):
        terrain_correct(safe, far, out, geo, TerrainCorrectionParams.from_dict({"skip_scenes_outside_aoi": False}))
    assert not out.exists() and not geo.exists()
    # or, as the workflow does, reported and skipped: no-data outputs tagged with the reason
    terrain_correct(safe, far, tmp_path / "skip.tif", tmp_path / "skip_geo.tif",
                    TerrainCorrectionParams.from_dict({"skip_scenes_outside_aoi": True}))
    with rasterio.open(tmp_path / "skip.tif") as src:
        assert "outside the swath" in src.tags()["skipped"] and np.isnan(src.read()).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bs.tif")]


def test_cli_reports_bad_input_without_traceback(alpine_world: BuiltWorld, tc_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "terrain-correct", "--safe", str(tmp_path / "missing.SAFE"),
         "--dem", str(dem_for(alpine_world, tc_dir)), "--out", str(tmp_path / "o.tif"), "--geometry",
         str(tmp_path / "g.tif"), "--params", json.dumps({"quantity": "sigma0"})],
        capture_output=True, text=True,
    )
    assert res.returncode == 2 and "missing.SAFE: no such file or directory" in res.stderr
    assert "Traceback" not in res.stderr


def write_eof(path: Path, built: BuiltWorld, index: int, span_s: float = 900.0, shift_s: float = 0.0) -> None:
    """An AUX_POEORB-style orbit file of the simulated orbit around date ``index`` (the real XML layout)."""
    date = built.world.spec.dates[index].s1_time
    # each date's orbit (off the reference within the orbital tube) has its t = 0 at the scene-centre time
    times = np.arange(-span_s, span_s + 1, 10.0)
    pos, vel = scene.date_orbit(built.world, index).state(times)
    osvs = []
    for t, p, v in zip(times, pos, vel):
        utc = np.datetime_as_string(date + np.timedelta64(int((t + shift_s) * 1e6), "us"), unit="us")
        osvs.append(
            f"<OSV><TAI>TAI={utc}</TAI><UTC>UTC={utc}</UTC><UT1>UT1={utc}</UT1><Absolute_Orbit>+31205</Absolute_Orbit>"
            f'<X unit="m">{p[0]:.6f}</X><Y unit="m">{p[1]:.6f}</Y><Z unit="m">{p[2]:.6f}</Z>'
            f'<VX unit="m/s">{v[0]:.6f}</VX><VY unit="m/s">{v[1]:.6f}</VY><VZ unit="m/s">{v[2]:.6f}</VZ>'
            "<Quality>NOMINAL</Quality></OSV>"
        )
    path.write_text(
        '<?xml version="1.0" ?><Earth_Explorer_File><Earth_Explorer_Header><Fixed_Header>'
        "<File_Type>AUX_POEORB</File_Type></Fixed_Header></Earth_Explorer_Header>"
        f'<Data_Block type="xml"><List_of_OSVs count="{len(osvs)}">{"".join(osvs)}</List_of_OSVs></Data_Block>'
        "</Earth_Explorer_File>"
    )


def test_precise_orbit_file_gives_the_same_geometry(alpine_world: BuiltWorld, tc_dir: Path, tmp_path: Path) -> None:
    eof = tmp_path / "S1A_OPER_AUX_POEORB_OPOD_TEST.EOF"
    write_eof(eof, alpine_world, 0)
    _, ref_geo = run_tc(alpine_world, tc_dir)
    out, geo = tmp_path / "bs.tif", tmp_path / "geo.tif"
    terrain_correct(alpine_world.s1_safes()[0], dem_for(alpine_world, tc_dir), out, geo,
                    orbit_file=eof)
    with rasterio.open(ref_geo) as a, rasterio.open(geo) as b:
        for band in (3, 4):  # radar line and pixel
            assert np.nanmax(np.abs(a.read(band) - b.read(band))) < 0.01
    # an orbit file that misses the acquisition is refused clearly
    write_eof(eof, alpine_world, 0, shift_s=-86400.0)  # the day before
    with pytest.raises(TerrainCorrectionError, match="do not cover the product"):
        terrain_correct(alpine_world.s1_safes()[0], dem_for(alpine_world, tc_dir), out, geo,
                        orbit_file=eof)


def test_stac_item_layout_gives_the_same_result(alpine_world: BuiltWorld, tc_dir: Path, tmp_path: Path) -> None:
    """The per-file layout of STAC catalogs (measurement + XML assets) reads like the SAFE."""
    safe = alpine_world.s1_safes()[0]
    item = next((alpine_world.root / "sentinel-1-grd").glob(f"{safe.name.removesuffix('.SAFE')}/*.json"))
    ref, _ = run_tc(alpine_world, tc_dir)
    out, geo = tmp_path / "bs.tif", tmp_path / "geo.tif"
    terrain_correct(item, dem_for(alpine_world, tc_dir), out, geo)
    with rasterio.open(ref) as a, rasterio.open(out) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_to_db_clips_at_the_floor_and_keeps_nan() -> None:
    rng = np.random.default_rng(3)
    power = (10.0 ** rng.uniform(-6, 2, (64, 64))).astype(np.float32)
    power.flat[:6] = [np.nan, 0.0, -1.0, 1e-9, np.inf, 1.0]
    before = power.copy()
    db = to_db(power, -35.0)
    assert db.dtype == np.float32 and np.array_equal(power, before, equal_nan=True)  # input untouched
    np.testing.assert_array_equal(db.flat[:6], np.float32([np.nan, -35.0, np.nan, -35.0, np.inf, 0.0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = np.where(np.isnan(power), np.nan, np.maximum(10 * np.log10(power.astype(np.float64)), -35.0))
    np.testing.assert_array_equal(db, plain.astype(np.float32))
    assert to_db(np.float64([2.0]), -35.0)[0] == np.float32(10 * np.log10(2.0))


def test_gamma0_t_equals_the_numpy_expression_bit_for_bit() -> None:
    """The compiled gamma0_T keeps NumPy's arithmetic (beta0 x pixel area in float32, the rest in float64)."""
    from pipeline.sar import backscatter as bs

    rng = np.random.default_rng(7)
    shape = (37, 53)
    beta0 = (10.0 ** rng.uniform(-4, 0, shape)).astype(np.float32)
    area = rng.uniform(0.0, 400.0, shape).astype(np.float32)  # zero to about 2x the flat-terrain area
    cos_e = rng.uniform(-0.1, 1.05, shape)
    beta0.flat[:3], area.flat[3:6], cos_e.flat[6:9] = np.nan, [np.nan, 0.0, 1e-3], [np.nan, 0.02, 1.0]
    pixel_area = 10.0 * 22.3
    flat = bs.FLAT_AREA_THRESHOLD * pixel_area * np.clip(cos_e, 0.05, 1.0)
    sin_e = np.sqrt(np.clip(1.0 - cos_e**2, 0.0, 1.0))
    want = beta0 * pixel_area * sin_e / np.where(area > flat, area, np.nan)
    got = bs.gamma0_t_from_beta0(beta0, area, pixel_area, cos_e)
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got).sum() > 9 and np.isfinite(got).mean() > 0.8  # shadow bins and NaN inputs, mostly valid
    with pytest.raises(ValueError, match="shapes differ"):
        bs.gamma0_t_from_beta0(beta0, area[:-1], pixel_area, cos_e)


def test_splat_adds_in_the_order_of_the_positions_whatever_the_threads() -> None:
    """Bilinear accumulation (terrain flattening's facet areas, the simulator's scatterers): bit for bit a
    plain loop over the positions in their order (NaN and outside positions dropped, the origin shifting
    them), on one thread and on several (bands of lines in parallel)."""
    import numba

    rng = np.random.default_rng(11)
    n, shape, origin = 3000, (40, 30), (100.0, -7.0)
    line = origin[0] + rng.uniform(-3, shape[0] + 2, n)
    pixel = origin[1] + rng.uniform(-3, shape[1] + 2, n)
    line[::97], pixel[::89] = np.nan, np.inf
    values = rng.uniform(0, 5, n)
    expected = np.zeros(shape)
    for li, pi, v in zip(line - origin[0], pixel - origin[1], values):
        if not (-1 < li < shape[0] and -1 < pi < shape[1]):
            continue
        l0, p0 = int(np.floor(li)), int(np.floor(pi))
        for r, wl in ((l0, 1 - (li - l0)), (l0 + 1, li - l0)):
            for c, wp in ((p0, 1 - (pi - p0)), (p0 + 1, pi - p0)):
                if 0 <= r < shape[0] and 0 <= c < shape[1]:
                    expected[r, c] += v * wl * wp
    threads = numba.get_num_threads()
    try:
        for t in sorted({1, threads, 2} & set(range(1, numba.config.NUMBA_NUM_THREADS + 1))):
            numba.set_num_threads(t)
            np.testing.assert_array_equal(splat(line, pixel, values, shape, origin=origin), expected)
    finally:
        numba.set_num_threads(threads)
    base = np.ones(shape)
    splat(line, pixel, values, shape, out=base, origin=origin)
    np.testing.assert_allclose(base, expected + 1, rtol=1e-15, atol=1e-12)


def test_lattice_row_table_equals_the_trilinear_lookup() -> None:
    """The lattice interpolated to a row's northing once (lattice_row), then bilinear in easting and height per
    point, gives trilinear5's and trilinear2's values to rounding: inside the lattice, beyond its edges (the
    nearest cell extrapolates), on rows north and south of it; a NaN height gives NaN, its cell clamped."""
    import numba

    from pipeline.sar.lattice import finite_range, lattice_row, row_lookup2, row_lookup5, trilinear2, trilinear5

    @numba.njit
    def lookups(flat, ni, nj, nk, fi, fj, fk, want, got):
        lo, hi = finite_range(fk)
        table, j0, k0 = lattice_row(flat, ni, nj, nk, fi, fj.min(), fj.max(), lo, hi)
        for p in range(fj.size):
            a, b = trilinear5(flat, ni, nj, nk, fi, fj[p], fk[p]), row_lookup5(table, nj, nk, j0, k0, fj[p], fk[p])
            c, d = trilinear2(flat, ni, nj, nk, fi, fj[p], fk[p]), row_lookup2(table, nj, nk, j0, k0, fj[p], fk[p])
            for q in range(5):
                want[p, q], got[p, q] = a[q], b[q]
            for q in range(2):
                want[p, 5 + q], got[p, 5 + q] = c[q], d[q]

    rng = np.random.default_rng(5)
    ni, nj, nk = 9, 14, 7
    scale = np.array([3.0, 9e5, 0.6, 0.6, 0.6])  # time (s), range (m), line of sight: the radar fields' sizes
    flat = scale * (1.0 + 0.01 * rng.standard_normal((ni * nj * nk, 5)))
    for fi in (-0.6, 0.0, 3.37, ni - 1.0, ni - 0.4):
        fj = np.sort(rng.uniform(-1.3, nj + 0.2, 300))
        fk = rng.uniform(-0.8, nk - 0.6, 300)
        fk[7] = np.nan
        want, got = np.empty((300, 7)), np.empty((300, 7))
        lookups(flat, ni, nj, nk, fi, fj, fk, want, got)
        assert np.isnan(got[7]).all() and np.isnan(want[7]).all()
        keep = np.arange(300) != 7
        np.testing.assert_allclose(got[keep], want[keep], rtol=1e-14, atol=0)  # a cell's step: ~1 % of a value
