"""The simulated world: real formats, geometry and radiometry against the simulator's truth."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from scipy import ndimage
from lxml import etree

from pipeline.optical.metadata import parse_product_metadata, parse_tile_metadata
from pipeline.optical.reflectance import dn_to_reflectance
from pipeline.sar import open_product
from pipeline.sar.annotation import READER_PATHS, parse_annotation, parse_calibration, parse_noise
from pipeline.sar.calibration import calibrate, interpolate_lut, noise_power
from pipeline.sar.orbit import OrbitPolynomial
from pipeline.simulate.landcover import Cover
from pipeline.simulate.s2_forward import SCL

from .conftest import DATA, REAL_S1_DESCENDING, BuiltWorld, tree_digest
from .test_20_geocoding_real import check_grid_identities

ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")


def value_kind(el: etree._Element) -> str:
    """How a reader must parse an element: container, time, int, float, bool, list or text."""
    text = (el.text or "").strip()
    if len(el):
        return "container"
    if ISO_TIME.match(text):
        return "time"
    if " " in text:
        return "list"
    if text in ("true", "false"):
        return "bool"
    if re.fullmatch(r"-?\d+", text):
        return "int"
    try:
        float(text)
        return "float"
    except ValueError:
        return "text"


def paths(root: etree._Element, depth: int) -> set[str]:
    out = set()

    def walk(el: etree._Element, prefix: str, d: int) -> None:
        for child in el:
            p = f"{prefix}/{child.tag}" if prefix else child.tag
            out.add(p)
            if d < depth:
                walk(child, p, d + 1)

    walk(root, "", 1)
    return out


def files(safe: Path, pattern: str) -> Path:
    return next(safe.glob(pattern))


# ---------------------------------------------------------------- format


def test_annotation_has_every_reader_path_with_the_real_kind(alpine_world: BuiltWorld) -> None:
    real = etree.parse(str(REAL_S1_DESCENDING)).getroot()
    sim = etree.parse(str(files(alpine_world.s1_safes()[0], "annotation/s1a-iw-grd-vv-*.xml"))).getroot()
    for path in READER_PATHS:
        r, s = real.find(path), sim.find(path)
        assert r is not None, f"real annotation lacks {path}"
        assert s is not None, f"simulated annotation lacks {path}"
        assert value_kind(s) == value_kind(r), f"{path}: simulated {value_kind(s)} vs real {value_kind(r)}"
        if r.get("count") is not None:
            n = len(s) if len(s) else len((s.text or "").split())
            assert s.get("count") is not None and int(s.get("count")) == n, path
    # the whole skeleton down to two levels
    missing = paths(real, 2) - paths(sim, 2)
    assert not missing, f"simulated annotation lacks {sorted(missing)}"
    # list elements carry counts that match their values
    for el in sim.iter():
        if el.get("count") is not None and len(el) == 0 and (el.text or "").strip():
            assert int(el.get("count")) == len(el.text.split()), el.tag


def test_calibration_and_noise_files_have_the_real_structure(alpine_world: BuiltWorld) -> None:
    safe = alpine_world.s1_safes()[0]
    for kind, real_file in (("calibration", next((DATA / "s1").glob("calibration-s1a-*.xml"))),
                            ("noise", next((DATA / "s1").glob("noise-s1a-*.xml")))):
        real = etree.parse(str(real_file)).getroot()
        sim = etree.parse(str(files(safe, f"annotation/calibration/{kind}-s1a-iw-grd-vv-*.xml"))).getroot()
        missing = paths(real, 5) - paths(sim, 5)
        assert not missing, f"{kind}: missing {sorted(missing)}"
        for p in paths(real, 5):
            assert value_kind(sim.find(p)) == value_kind(real.find(p)), p
    cal = parse_calibration(files(safe, "annotation/calibration/calibration-*-vv-*.xml"))
    noise = parse_noise(files(safe, "annotation/calibration/noise-*-vv-*.xml"))
    ann = parse_annotation(files(safe, "annotation/s1a-iw-grd-vv-*.xml"))
    # quirk of real files kept: the last calibration vector lies beyond the last line
    assert cal.sigma_nought.line[-1] >= ann.image.number_of_lines - 1
    assert noise.azimuth_blocks[0].last_pixel == ann.image.number_of_samples - 1


def test_manifest_lists_every_file_with_its_md5(alpine_world: BuiltWorld) -> None:
    real = etree.parse(str(DATA / "s1" / "S1B_manifest.safe")).getroot()
    for safe in alpine_world.s1_safes():
        root = etree.parse(str(safe / "manifest.safe")).getroot()
        objects = root.xpath("//*[local-name()='dataObject']")
        listed = set()
        for obj in objects:
            href = obj.xpath(".//*[local-name()='fileLocation']/@href")[0]
            md5 = obj.xpath(".//*[local-name()='checksum']/text()")[0]
            size = int(obj.xpath(".//*[local-name()='byteStream']/@size")[0])
            f = safe / href
            assert hashlib.md5(f.read_bytes()).hexdigest() == md5, href
            assert f.stat().st_size == size
            listed.add(f.relative_to(safe).as_posix())
        on_disk = {p.relative_to(safe).as_posix() for p in safe.rglob("*") if p.is_file()} - {"manifest.safe"}
        assert listed == on_disk
        reps = [o.get("repID") for o in objects]
        assert reps.index("s1Level1MeasurementSchema") > max(
            i for i, r in enumerate(reps) if r != "s1Level1MeasurementSchema"
        ), "annotation entries come before measurement entries"
        for name in ("familyName", "number", "mode", "swath", "orbitNumber", "relativeOrbitNumber", "pass",
                     "ascendingNodeTime", "missionDataTakeID", "transmitterReceiverPolarisation", "productType",
                     "startTime", "stopTime", "coordinates"):
            query = f"//*[local-name()='{name}']"
            assert real.xpath(query) and root.xpath(query), name
        ro = root.xpath("//*[local-name()='relativeOrbitNumber']/text()")
        pass_direction = root.xpath("//*[local-name()='pass']/text()")[0].lower()
        assert ro == [str(alpine_world.world.spec.track(pass_direction).relative_orbit)] * 2  # start and stop
        assert ro == [{"descending": "66", "ascending": "88"}[pass_direction]] * 2


def test_file_names_follow_esa_patterns(alpine_world: BuiltWorld) -> None:
    for safe in alpine_world.s1_safes():
        assert re.fullmatch(r"S1A_IW_GRDH_1SDV_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_[0-9A-F]{4}\.SAFE", safe.name)
        for pol, num in (("vv", "001"), ("vh", "002")):
            m = files(safe, f"measurement/s1a-iw-grd-{pol}-*.tiff")
            assert re.fullmatch(rf"s1a-iw-grd-{pol}-\d{{8}}t\d{{6}}-\d{{8}}t\d{{6}}-\d{{6}}-[0-9a-f]{{6}}-{num}\.tiff", m.name)
    for safe in alpine_world.s2_safes():
        assert re.fullmatch(r"S2[AB]_MSIL2A_\d{8}T\d{6}_N0500_R\d{3}_T32TLR_\d{8}T\d{6}\.SAFE", safe.name)


def test_measurement_is_uint16_with_gcps(alpine_world: BuiltWorld) -> None:
    safe = alpine_world.s1_safes()[0]
    ann = parse_annotation(files(safe, "annotation/*-vv-*.xml"))
    with rasterio.open(files(safe, "measurement/*-vv-*.tiff")) as src:
        assert src.dtypes == ("uint16",)
        assert (src.height, src.width) == (ann.image.number_of_lines, ann.image.number_of_samples)
        gcps, crs = src.gcps
        assert crs.to_epsg() == 4326 and len(gcps) == ann.geolocation_grid.line.size
        assert src.transform.is_identity  # no map geotransform: geocode from the annotation


def test_hgt_tile_opens_with_the_right_georeference(alpine_world: BuiltWorld) -> None:
    tile = alpine_world.world.spec.tile
    z = alpine_world.root / "dem" / f"{tile}.SRTMGL1.hgt.zip"
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == [f"{tile}.hgt"]
        assert zf.getinfo(f"{tile}.hgt").file_size == 3601 * 3601 * 2
    with rasterio.open(f"/vsizip/{z}/{tile}.hgt") as src:
        assert src.driver == "SRTMHGT"
        assert src.crs.to_epsg() == 4326 and src.shape == (3601, 3601)
        south, west = alpine_world.world.spec.tile_south_west
        # pixel centres on whole arc-seconds: the first row's centre is the north edge
        assert src.transform.c == pytest.approx(west - 0.5 / 3600, abs=1e-12)
        assert src.transform.f == pytest.approx(south + 1 + 0.5 / 3600, abs=1e-12)
        assert src.transform.a == pytest.approx(1 / 3600) and src.transform.e == pytest.approx(-1 / 3600)
        heights = src.read(1)
        assert src.nodata == -32768
    world = alpine_world.world
    np.testing.assert_array_equal(heights, world.hgt_heights)
    voids = heights == -32768
    assert 0 < voids.sum() < 0.001 * voids.size
    valid = heights[~voids]
    assert 200 <= valid.min() and valid.max() <= 4000
    # big-endian on disk
    raw = np.frombuffer(zipfile.ZipFile(z).read(f"{tile}.hgt"), dtype=">i2").reshape(3601, 3601)
    np.testing.assert_array_equal(raw, heights)


def test_lakes_are_flat_and_lie_below_their_shores(alpine_world: BuiltWorld) -> None:
    """Each lake is one water surface (as SRTM records it), and its banks rise from the water's edge:
    no ground next to a lake is lower than the water (perched water, a raised disc) and no rim or
    step surrounds it (the median bank is within 3 m of the surface at the tile's 30 m spacing)."""
    h, water = alpine_world.world.tile_height_m, alpine_world.world.tile_water
    labels, n = ndimage.label(water)
    assert n >= 2
    for k in range(1, n + 1):
        lake = labels == k
        level = h[lake]
        assert level.min() == level.max(), k
        shore = ndimage.binary_dilation(lake, structure=np.ones((3, 3), bool)) & ~lake
        assert (h[shore] >= level.max()).all(), k
        assert np.median(h[shore] - level.max()) <= 3.0, (k, np.median(h[shore] - level.max()))


def test_terrain_is_alpine(alpine_world: BuiltWorld) -> None:
    h = alpine_world.world.tile_height_m
    from pipeline.simulate.terrain import slope_aspect, tile_pixel_m

    slope, aspect = slope_aspect(h, tile_pixel_m(alpine_world.world.spec.tile_south_west[0]))
    assert 300 <= h.min() <= 800  # valley floors
    assert 3500 <= h.max() <= 4000  # summits
    steep = slope > 60
    assert steep.mean() > 1e-4
    counts, _ = np.histogram(aspect[steep], bins=8, range=(0, 360))
    assert counts.min() > 0.2 * counts.mean(), "slopes over 60 deg face every direction"
    assert alpine_world.world.tile_water.sum() > 0, "lakes"
    cover = alpine_world.world.cover
    for cls in Cover:
        assert (cover == cls).any(), f"land cover class {cls.name} missing"


# ---------------------------------------------------------------- geometry


def test_corner_reflectors_peak_at_their_truth_position(alpine_world: BuiltWorld) -> None:
    truth = alpine_world.truth
    assert len(truth["reflectors"]) == alpine_world.world.spec.corner_reflectors
    for s1, safe in zip(truth["sentinel1"], alpine_world.s1_safes()):
        assert safe.name.startswith(s1["id"])
        product = open_product(safe)
        with rasterio.open(files(safe, "measurement/*-vv-*.tiff")) as src:
            dn = src.read(1).astype(np.float64)
        for cr_truth, cr in zip(s1["reflectors"], truth["reflectors"]):
            line, pixel = cr_truth["line"], cr_truth["pixel"]
            l0, p0 = int(round(line)), int(round(pixel))
            window = dn[l0 - 4 : l0 + 5, p0 - 4 : p0 + 5]
            dl, dp = np.unravel_index(np.argmax(window), window.shape)
            assert abs(l0 - 4 + dl - line) <= 1.0 and abs(p0 - 4 + dp - pixel) <= 1.0, cr["name"]
            # and the reader's geocoding puts the reflector's map position there
            rl, rp = product.geographic_to_radar(cr["lat_deg"], cr["lon_deg"], cr["height_m"])
            assert abs(rl - line) < 0.01 and abs(rp - pixel) < 0.01


def test_simulated_grid_follows_esa_conventions(alpine_world: BuiltWorld) -> None:
    for safe in alpine_world.s1_safes():
        ann = parse_annotation(files(safe, "annotation/*-vv-*.xml"))
        check_grid_identities(ann.geolocation_grid, OrbitPolynomial(ann.orbit))
        g = ann.geolocation_grid
        product = open_product(safe)
        line, pixel = product.geographic_to_radar(g.latitude_deg, g.longitude_deg, g.height_m)
        assert np.abs(line - g.line).max() < 1e-3 and np.abs(pixel - g.pixel).max() < 1e-3
        assert 30 <= g.incidence_angle_deg.min() and g.incidence_angle_deg.max() <= 46
        # as real IW products over 45 N: descending heading about -168 deg (south-south-west, first line
        # north), ascending about -12 deg (north-north-west, first line south)
        first_north = g.latitude_deg[g.line == 0].mean() > g.latitude_deg[g.line == g.line.max()].mean()
        if "T05" in safe.name:
            assert ann.pass_direction == "Descending" and -170 < ann.platform_heading_deg < -160 and first_north
        else:
            assert ann.pass_direction == "Ascending" and -20 < ann.platform_heading_deg < -10 and not first_north


def test_ascending_and_descending_see_opposite_slopes(alpine_world: BuiltWorld) -> None:
    """The forward model's truth: the descending pass looks west (from the east), so layover falls on
    east-facing slopes and shadow on west-facing ones; the ascending pass looks east: the other way round.
    The same surface and the two tracks' incidences (38.5 and 41 deg)."""
    truth = alpine_world.truth
    assert [s1["pass"] for s1 in truth["sentinel1"]] == ["descending", "ascending"]
    east = np.sin(np.radians(alpine_world.world.aspect_deg))  # +1 on east-facing slopes
    for s1, facing_radar in zip(truth["sentinel1"], (1.0, -1.0)):
        with rasterio.open(alpine_world.root / "truth" / f"{s1['id']}_distortion.tif") as src:
            bits = src.read(1)
        layover, shadow = (bits & 6) > 0, (bits & 24) > 0
        assert layover.sum() > 1000 and shadow.sum() > 1000
        assert facing_radar * east[layover].mean() > 0.5, (s1["pass"], east[layover].mean())
        assert facing_radar * east[shadow].mean() < -0.5, (s1["pass"], east[shadow].mean())
    # and the product the pipeline reads says so
    product = open_product(alpine_world.s1_safes()[1])
    assert product.geometry.annotation.pass_direction == "Ascending"


def test_flat_world_incidence_matches_the_annotation(flat_world: BuiltWorld) -> None:
    """Facets of the flat world see the radar at the ellipsoid incidence that the annotation implies.

    The calibration LUTs encode theta_e (sigma = beta / sqrt(sin theta_e)); the geolocation grid holds the
    geocentric incidence, which differs from the geodetic one by the normals' angle projected on the
    line of sight (a few hundredths of a degree at 45 N).
    """
    world = flat_world.world
    safe = flat_world.s1_safes()[0]
    cal = parse_calibration(files(safe, "annotation/calibration/calibration-*-vv-*.xml"))
    ann = parse_annotation(files(safe, "annotation/*-vv-*.xml"))
    f = world.facets["descending"]
    rows = np.arange(50, f.line.shape[0] - 50, 37)
    cols = np.arange(50, f.line.shape[1] - 50, 41)
    line, pixel = f.line[np.ix_(rows, cols)], f.pixel[np.ix_(rows, cols)]
    local = np.degrees(np.arccos(f.cos_local_incidence[np.ix_(rows, cols)]))
    inside = (line > 2) & (line < ann.image.number_of_lines - 3) & (pixel > 2) & (pixel < ann.image.number_of_samples - 3)
    assert inside.sum() > 100
    line, pixel, local = line[inside], pixel[inside], local[inside]
    sigma = np.array([interpolate_lut(cal.sigma_nought, [li], [pi])[0, 0] for li, pi in zip(line.ravel(), pixel.ravel())])
    beta = np.array([interpolate_lut(cal.beta_nought, [li], [pi])[0, 0] for li, pi in zip(line.ravel(), pixel.ravel())])
    lut_theta = np.degrees(np.arcsin((beta / sigma) ** 2))
    assert np.abs(local.ravel() - lut_theta).max() < 0.01
    # against the grid (bilinear in line, pixel): within the geodetic/geocentric difference
    from scipy.interpolate import LinearNDInterpolator

    g = ann.geolocation_grid
    grid_inc = LinearNDInterpolator(np.c_[g.line, g.pixel], g.incidence_angle_deg)(line.ravel(), pixel.ravel())
    diff = local.ravel() - grid_inc
    assert np.abs(diff - diff.mean()).max() < 0.01  # the same variation across the swath
    assert abs(diff.mean()) < 0.1


# ---------------------------------------------------------------- radiometry


def calibrated(safe: Path, pol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with rasterio.open(files(safe, f"measurement/*-{pol}-*.tiff")) as src:
        dn = src.read(1)
    cal = parse_calibration(files(safe, f"annotation/calibration/calibration-*-{pol}-*.xml"))
    noise = parse_noise(files(safe, f"annotation/calibration/noise-*-{pol}-*.xml"))
    lines, pixels = np.arange(dn.shape[0]), np.arange(dn.shape[1])
    a = interpolate_lut(cal.sigma_nought, lines, pixels)
    n = noise_power(noise.range_vectors, noise.azimuth_blocks, lines, pixels)
    s0, _ = calibrate(dn, a, n)
    return s0, dn, a, n


def truth_sigma0(world: BuiltWorld, safe: Path, pol: str) -> np.ndarray:
    with rasterio.open(world.root / "truth" / f"{safe.name.removesuffix('.SAFE')}_sigma0_{pol}.tif") as src:
        return src.read(1)


def test_flat_uniform_radiometry_and_speckle(flat_world: BuiltWorld) -> None:
    safe = flat_world.s1_safes()[0]
    world = flat_world.world
    for pol in ("vv", "vh"):
        s0, dn, a, n = calibrated(safe, pol)
        truth = truth_sigma0(flat_world, safe, pol)
        # a uniform patch: radar pixels whose facets are all one cover (forest) on flat ground
        forest = world.cover == Cover.FOREST

        core = ndimage.binary_erosion(forest, iterations=4)
        f = world.facets["descending"]
        li = np.round(f.line[core]).astype(int)
        pi = np.round(f.pixel[core]).astype(int)
        ok = (li >= 0) & (li < dn.shape[0]) & (pi >= 0) & (pi < dn.shape[1])
        idx = np.unique(li[ok] * dn.shape[1] + pi[ok])
        s0_patch, truth_patch = s0.ravel()[idx], truth.ravel()[idx]
        err_db = 10 * np.log10(s0_patch.mean() / truth_patch.mean())
        assert abs(err_db) < 0.2, (pol, err_db)
        # speckle: intensity over its expectation is Gamma(ENL): mean^2 / var = 4.4 +- 0.5
        ratio = dn.ravel()[idx].astype(np.float64) ** 2 / (a.ravel()[idx] ** 2 * truth_patch + n.ravel()[idx])
        enl = ratio.mean() ** 2 / ratio.var()
        assert abs(enl - world.spec.enl) < 0.5, (pol, enl)
        assert abs(ratio.mean() - 1) < 0.02


def test_built_up_is_bright_points_on_dark_ground(alpine_world: BuiltWorld) -> None:
    """Settlements are dark ground strewn with double-bounce scatterers (15 % of their 10 m cells), not a
    uniform bright surface: in the noise-free truth image their radar pixels are heavy-tailed (95th
    percentile far above the median) where flat meadow is not, and their mean is the mixture's."""
    from pipeline.simulate.landcover import BACKSCATTER, BUILT_UP_SCATTERER_FRACTION

    world = alpine_world.world
    built = world.cover == Cover.BUILT_UP
    assert (world.scatterers & ~built).sum() == 0
    assert abs(world.scatterers[built].mean() - BUILT_UP_SCATTERER_FRACTION) < 0.02
    safe = alpine_world.s1_safes()[0]
    truth = truth_sigma0(alpine_world, safe, "vv")
    f = world.facets["descending"]
    flat = ndimage.maximum_filter(world.slope_deg, 5) < 6.0

    def radar_pixels(mask: np.ndarray) -> np.ndarray:
        core = ndimage.binary_erosion(mask, iterations=3) & f.visible & ~f.layover
        li, pi = np.round(f.line[core]).astype(int), np.round(f.pixel[core]).astype(int)
        ok = (li >= 0) & (li < truth.shape[0]) & (pi >= 0) & (pi < truth.shape[1])
        return truth.ravel()[np.unique(li[ok] * truth.shape[1] + pi[ok])].astype(np.float64)

    town, meadow = radar_pixels(built & flat), radar_pixels((world.cover == Cover.MEADOW) & flat)
    assert town.size > 500 and meadow.size > 500
    tail_db = {name: 10 * np.log10(np.percentile(v, 95) / np.median(v)) for name, v in (("town", town), ("meadow", meadow))}
    assert tail_db["town"] > 6.0 and tail_db["meadow"] < 3.0, tail_db
    mixture = ((1 - BUILT_UP_SCATTERER_FRACTION) * 10 ** (BACKSCATTER["built_up"].vv_db / 10)
               + BUILT_UP_SCATTERER_FRACTION * 10 ** (BACKSCATTER["built_up_scatterer"].vv_db / 10))
    assert abs(10 * np.log10(town.mean() / mixture)) < 1.0, (10 * np.log10(town.mean()), 10 * np.log10(mixture))


def test_alpine_radiometry(alpine_world: BuiltWorld) -> None:
    world = alpine_world.world
    safe = alpine_world.s1_safes()[0]  # summer: snow only on glaciers and summits
    s0, dn, a, n = calibrated(safe, "vv")
    f = world.facets["descending"]
    li = np.clip(np.round(f.line).astype(int), 0, dn.shape[0] - 1)
    pi = np.clip(np.round(f.pixel).astype(int), 0, dn.shape[1] - 1)
    truth = truth_sigma0(alpine_world, safe, "vv")
    # shadow: radar pixels that receive nothing sit at the noise floor (DN^2 ~ noise)
    empty = truth == 0
    inner = np.zeros_like(empty)
    inner[20:-20, 20:-20] = True
    empty &= inner
    assert empty.sum() > 100
    floor_ratio = (dn[empty].astype(np.float64) ** 2).mean() / n[empty].mean()
    assert abs(floor_ratio - 1) < 0.1
    # radar-facing slopes are brighter than away-facing ones of the same cover (forest, 20-35 deg)
    visible = f.visible & ~f.layover
    mid = (world.slope_deg > 20) & (world.slope_deg < 35) & (world.cover == Cover.FOREST) & visible
    look_azimuth = 270.0 + 14.0  # descending, right-looking: the radar is to the east-south-east
    facing = mid & (np.abs(((world.aspect_deg - (look_azimuth - 180)) + 180) % 360 - 180) < 45)
    away = mid & (np.abs(((world.aspect_deg - look_azimuth) + 180) % 360 - 180) < 45)
    assert facing.sum() > 500 and away.sum() > 500
    bright = 10 * np.log10(s0[li[facing], pi[facing]].mean())
    dark = 10 * np.log10(s0[li[away], pi[away]].mean())
    assert bright - dark > 3.0, (bright, dark)
    # layover and shadow exist in realistic amounts
    assert 0.002 < f.shadow.mean() < 0.1
    assert 0.02 < f.layover.mean() < 0.3


# ---------------------------------------------------------------- optical


def test_optical_metadata_matches_the_scl_and_reflectance(alpine_world: BuiltWorld) -> None:
    for safe in alpine_world.s2_safes():
        meta = parse_product_metadata(safe / "MTD_MSIL2A.xml")
        tile = parse_tile_metadata(next(safe.glob("GRANULE/*/MTD_TL.xml")))
        assert meta.processing_baseline == "05.00" and meta.quantification_value == 10000
        assert meta.offset("B04") == -1000
        assert tile.epsg == alpine_world.world.grid.epsg
        with rasterio.open(files(safe, "GRANULE/*/IMG_DATA/R20m/*_SCL_20m.tif")) as src:
            scl = src.read(1)
            assert src.res == (20.0, 20.0)
        cloudy = np.isin(scl, (SCL.CLOUD_MEDIUM, SCL.CLOUD_HIGH, SCL.THIN_CIRRUS))
        assert meta.cloud_cover_percent == pytest.approx(100 * cloudy.mean(), abs=1e-4)
        assert meta.snow_ice_percent == pytest.approx(100 * (scl == SCL.SNOW).mean(), abs=1e-4)
        sid = safe.name.removesuffix(".SAFE")
        with rasterio.open(alpine_world.root / "truth" / f"{sid}_reflectance.tif") as src:
            rho = src.read()
        for k, band in enumerate(("B02", "B03", "B04")):
            with rasterio.open(files(safe, f"GRANULE/*/IMG_DATA/R10m/*_{band}_10m.tif")) as src:
                assert src.res == (10.0, 10.0) and src.crs.to_epsg() == tile.epsg
                decoded = dn_to_reflectance(src.read(1), meta.offset(band), meta.quantification_value)
            np.testing.assert_allclose(decoded, rho[k], atol=0.5 / 10000 + 1e-7)


def test_real_s2_metadata_both_baselines() -> None:
    old = parse_product_metadata(next((DATA / "s2").glob("*N0212*/MTD_MSIL2A.xml")))
    new = parse_product_metadata(next((DATA / "s2").glob("*N0509*/MTD_MSIL2A.xml")))
    assert old.processing_baseline == "02.12" and old.offset("B04") == 0.0
    assert new.processing_baseline == "05.09" and new.offset("B04") == -1000.0
    assert old.cloud_cover_percent == pytest.approx(51.580326)
    dn = np.array([0, 1000, 3500], dtype=np.uint16)
    np.testing.assert_allclose(dn_to_reflectance(dn, new.offset("B02")), [np.nan, 0.0, 0.25])
    np.testing.assert_allclose(dn_to_reflectance(dn, old.offset("B02")), [np.nan, 0.1, 0.35])
    tl = parse_tile_metadata(next((DATA / "s2").glob("*N0509*/MTD_TL.xml")))
    assert tl.epsg == 32701 and tl.sun_zenith_deg == pytest.approx(38.4174390061789)


# ---------------------------------------------------------------- catalog


def test_stac_catalog_has_planetary_computer_shapes(alpine_world: BuiltWorld) -> None:
    catalog = pystac.Catalog.from_file(str(alpine_world.root / "catalog.json"))
    collections = {c.id: c for c in catalog.get_children()}
    assert set(collections) == {"sentinel-1-grd", "sentinel-2-l2a"}
    s1 = list(collections["sentinel-1-grd"].get_items())
    s2 = list(collections["sentinel-2-l2a"].get_items())
    assert len(s1) == len(s2) == 2
    tracks = set()
    for item in s1:
        p = item.properties
        assert p["sar:instrument_mode"] == "IW" and set(p["sar:polarizations"]) == {"VV", "VH"}
        tracks.add((p["sat:orbit_state"], p["sat:relative_orbit"]))
        assert p["sat:orbit_state"] == ("descending" if "T05" in item.id else "ascending")
        for key in ("vv", "vh", "safe-manifest", "schema-product-vv", "schema-calibration-vv", "schema-noise-vv",
                    "schema-product-vh", "schema-calibration-vh", "schema-noise-vh"):
            href = Path(item.assets[key].get_absolute_href())
            assert href.exists(), key
        assert parse_annotation(item.assets["schema-product-vv"].get_absolute_href()).header.polarisation == "VV"
    assert tracks == {("descending", 66), ("ascending", 88)}
    for item in s2:
        assert {"B02", "B03", "B04", "SCL", "product-metadata"} <= set(item.assets)
        meta = parse_product_metadata(item.assets["product-metadata"].get_absolute_href())
        assert item.properties["eo:cloud_cover"] == pytest.approx(meta.cloud_cover_percent, abs=1e-5)
        assert item.properties["s2:processing_baseline"] == "05.00"
    # hrefs are relative: the catalog can be moved
    raw = json.loads(next((alpine_world.root / "sentinel-1-grd").glob("*/*.json")).read_text())
    assert all(not a["href"].startswith("/") for a in raw["assets"].values())


def test_dates_written_side_by_side_give_the_same_bytes(alpine_world: BuiltWorld, tmp_path: Path) -> None:
    """The session world was written one date at a time; two at a time must write identical files."""
    from pipeline.simulate.app import write_world

    again = tmp_path / "simulated"
    write_world(alpine_world.world, again, threads=2)
    first, second = tree_digest(alpine_world.root), tree_digest(again)
    assert len(first) > 40 and any(k.endswith(".tiff") for k in first)
    assert [k for k in first if first[k] != second.get(k)] == [] and first.keys() == second.keys()


def test_the_srtm_tile_has_no_steps_and_the_statistic_finds_injected_ones(alpine_world: BuiltWorld) -> None:
    """The slope-outlier statistic (pipeline.dem.quality) on the world's 1" tile as written (whole
    metres): no group of outliers longer than a few pixels. The same tile with a 5 m step added, along a
    straight line or a circle: a group over 100 px long (the statistic can fail)."""
    from pipeline.dem.quality import step_outliers
    from pipeline.simulate.terrain import tile_pixel_m

    spec = alpine_world.world.spec
    south, west = alpine_world.world.spec.tile_south_west
    half_deg = (spec.aoi_size_m / 2 + spec.margin_m) / 111_000
    r0, r1 = (int((south + 1 - spec.center_lat - s * half_deg) * 3600) for s in (1, -1))
    c0, c1 = (int((spec.center_lon - west + s * half_deg / np.cos(np.radians(spec.center_lat))) * 3600)
              for s in (-1, 1))
    h = np.round(alpine_world.world.tile_height_m[r0:r1, c0:c1]).astype(np.float64)
    spacing = tile_pixel_m(south)
    world = step_outliers(h, spacing)
    assert world.longest_px <= 5, world
    rows, cols = np.mgrid[:h.shape[0], :h.shape[1]]
    straight = h + 5.0 * (cols > h.shape[1] // 2)
    circle = h + 5.0 * ((rows - h.shape[0] / 2) ** 2 + (cols - h.shape[1] / 2) ** 2 < (h.shape[0] / 4) ** 2)
    for stepped in (straight, circle):
        assert step_outliers(stepped, spacing).longest_px > 100
