"""Dataset quality: registration QA against known misregistrations, masks without fringes, a
self-describing patch store, a card that warns."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from scipy import ndimage

from pipeline.core.grid import aoi_grid_around
from pipeline.dataset import registration as reg
from pipeline.dataset.card import split_warnings
from pipeline.optical.masking import fringe_statistic, refine_mask
from pipeline.sar.annotation import parse_annotation
from pipeline.stages.dem import prepare_dem
from pipeline.stages.optical import OpticalParams, prepare_optical
from pipeline.stages.terrain_correct import terrain_correct

from pipeline.simulate import scene
from pipeline.simulate.app import write_world
from pipeline.simulate.world import WorldSpec

from .conftest import BuiltWorld, small_simulation

TOLERANCE_PX = 0.2


@pytest.mark.parametrize(("dx", "dy"), [(0.0, 0.0), (0.35, -0.2), (-3.0, 2.0)])
def test_orientation_correlation_recovers_a_known_shift(dx: float, dy: float) -> None:
    """Synthetic relief, a hillshade moved by a known amount, land-cover-like steps and noise on top."""
    rng = np.random.default_rng(1)
    height = ndimage.gaussian_filter(rng.normal(size=(320, 320)), 6) * 6000
    predicted = reg.optical_prediction(height, 10.0, 40.0, 150.0)
    moved = ndimage.shift(predicted.astype(np.float64), (dy, dx), order=3, mode="nearest")
    steps = (ndimage.gaussian_filter(rng.normal(size=moved.shape), 20) > 0) * 0.4  # unpredicted albedo steps
    measured = (moved + 0.2) * (1 + steps) + rng.normal(scale=0.05, size=moved.shape)
    win = (slice(32, 288), slice(32, 288))
    s = reg.estimate_shift(measured[win], predicted[win])
    assert abs(s.dx_px - dx) < 0.1 and abs(s.dy_px - dy) < 0.1, s
    assert s.quality > 0.3
    # unrelated images: low quality, or no peak inside the search radius
    noise = reg.estimate_shift(rng.normal(size=(256, 256)), predicted[win])
    assert not noise.quality > 0.1


def test_compiled_registration_and_mask_kernels_equal_scipy() -> None:
    """The compiled passes against the SciPy/NumPy expressions they replaced, on random images and masks
    (odd sizes, fractional and half-pixel shifts, masks touching the edges)."""
    from pipeline.optical.masking import dilate_disk

    rng = np.random.default_rng(11)
    x = rng.normal(size=(67, 53)).astype(np.float32)
    for sigma in (1.0, 2.5):
        assert np.array_equal(reg._gaussian(x, reg._gaussian_weights(sigma)), ndimage.gaussian_filter(x, sigma))
    for k in range(40):
        valid = ndimage.binary_opening(rng.random((41, 37)) > 0.25) if k % 2 else np.ones((41, 37), bool)
        valid[rng.integers(0, 41, 3), rng.integers(0, 37, 3)] = False
        shift = rng.uniform(-3, 3, 2) if k % 3 else np.round(rng.uniform(-3, 3, 2) * 2) / 2
        expected = (ndimage.shift(valid.astype(np.float32), shift, order=1, mode="constant") > 0.5) & valid
        assert np.array_equal(reg._shifted_valid(valid, *shift), expected)
        bad = ~valid
        gy, gx = np.gradient(x[:41, :37])
        g = gx + 1j * gy
        magnitude = np.abs(g)
        unit = np.where(magnitude > 1e-12 * magnitude.max(), g / np.maximum(magnitude, np.finfo(np.float32).tiny), 0)
        unit[ndimage.binary_dilation(bad, iterations=2)] = 0
        expected = unit * np.outer(np.hanning(41), np.hanning(37)).astype(np.float32)
        got = reg._unit_gradient(np.ascontiguousarray(x[:41, :37]), dilate_disk(bad, 2), reg._hann(41), reg._hann(37))
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-7)
        for radius in (1, 3, 4.5, 8):
            assert np.array_equal(dilate_disk(bad, radius), ndimage.distance_transform_edt(~bad) <= radius)


def test_the_noise_scale_is_recovered_and_only_resolvable_shifts_are_flagged() -> None:
    """Window estimates around a scene-wide shift with errors of per-axis sigma c / quality (c = 0.04):
    the noise scale comes back within 10 % whatever the scene's shift; a 1.2 px shift measured by a
    quality-0.12 window (sigma 0.33 px) is not flagged at 2 sigmas, the same shift at quality 0.6
    (sigma 0.07 px) and a 3 px shift at quality 0.12 are; 0 sigmas is the plain comparison."""
    rng = np.random.default_rng(3)
    c = 0.04
    for scene_dx, scene_dy in ((0.0, 0.0), (-3.0, 2.0)):
        quality = rng.uniform(0.1, 0.6, 400)
        errors = rng.normal(size=(400, 2)) * (c / quality)[:, None]
        windows = [reg.Shift(scene_dx + ex, scene_dy + ey, q) for (ex, ey), q in zip(errors, quality)]
        scene = reg.combine(windows, 0.1)
        assert reg.noise_scale(windows, scene, 0.1) == pytest.approx(c, rel=0.1)
    assert not reg.confidently_beyond(reg.Shift(1.2, 0.0, 0.12), 1.0, c, 2.0)
    assert reg.confidently_beyond(reg.Shift(1.2, 0.0, 0.6), 1.0, c, 2.0)
    assert reg.confidently_beyond(reg.Shift(3.0, 0.0, 0.12), 1.0, c, 2.0)
    assert reg.confidently_beyond(reg.Shift(1.2, 0.0, 0.12), 1.0, c, 0.0)
    assert reg.confidently_beyond(reg.Shift(1.2, 0.0, 0.12), 1.0, float("nan"), 2.0)  # no noise scale: plain


def shifted_item(item_json: Path, out: Path, dx_px: float, dy_px: float) -> Path:
    """A copy of a local Sentinel-2 item whose band files claim a position off by (dx east, dy south) pixels."""
    item = json.loads(item_json.read_text())
    out.mkdir(parents=True)
    for key in ("B02", "B03", "B04", "SCL"):
        src = Path(item["assets"][key]["href"])
        dst = out / src.name
        shutil.copy(src, dst)
        with rasterio.open(dst, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
            t = ds.transform
            ds.transform = rasterio.Affine(t.a, t.b, t.c + dx_px * 10.0, t.d, t.e, t.f - dy_px * 10.0)
        item["assets"][key]["href"] = str(dst)
    path = out / "item.json"
    path.write_text(json.dumps(item))
    return path


@pytest.fixture(scope="module")
def optical_world(tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    """A 10 km AOI (nine 512 px registration windows), one summer date with a few clouds."""
    sim = small_simulation()
    sim["aoi"]["size_m"] = 10240
    sim["dates"] = [dict(sim["dates"][1], cloud_fraction=0.15)]
    world = scene.build_world(WorldSpec.from_config(sim))
    root = tmp_path_factory.mktemp("optical") / "simulated"
    write_world(world, root)
    return BuiltWorld(world, root)


def test_a_misregistered_sentinel2_product_is_measured(optical_world: BuiltWorld, tmp_path: Path) -> None:
    """Sentinel-2 georeferencing moved by a sub-pixel and a multi-pixel amount: the QA finds each within
    0.2 px, and the product as simulated within 0.2 px of zero."""
    spec = optical_world.world.spec
    grid = aoi_grid_around(spec.center_lat, spec.center_lon, spec.aoi_size_m)
    egm = tmp_path / "egm.tif"
    prepare_dem(optical_world.root / "dem", grid, egm, tmp_path / "wgs.tif")
    with rasterio.open(egm) as src:
        height = src.read(1)
    catalog_item = next((optical_world.root / "sentinel-2-l2a").glob("*/*.json"))
    item = json.loads(catalog_item.read_text())
    for asset in item["assets"].values():  # the catalog's relative hrefs, as a local item has them: absolute
        asset["href"] = str((catalog_item.parent / asset["href"]).resolve())
    item_json = tmp_path / "item.json"
    item_json.write_text(json.dumps(item))
    measured = {}
    for dx, dy in ((0.0, 0.0), (0.4, 0.0), (-3.0, 2.0)):
        path = shifted_item(item_json, tmp_path / f"s2_{dx}_{dy}", dx, dy)
        info = prepare_optical(path, grid, tmp_path / f"{dx}_{dy}.tif", tmp_path / f"{dx}_{dy}.json",
                               OpticalParams.from_dict({}))
        with rasterio.open(tmp_path / f"{dx}_{dy}.tif") as src:
            opt = src.read()
        predicted = reg.optical_prediction(height, grid.resolution, info["sun_zenith_deg"], info["sun_azimuth_deg"])
        s = reg.scene_shift(opt[:3].astype(np.float32).mean(axis=0), predicted, opt[3] > 0, 512, 0.1)
        measured[(dx, dy)] = s
        assert abs(s.dx_px - dx) < TOLERANCE_PX and abs(s.dy_px - dy) < TOLERANCE_PX, ((dx, dy), s)
    print({k: str(v) for k, v in measured.items()})


def shifted_safe(safe: Path, out: Path, lines: float) -> Path:
    """A copy of a SAFE whose annotations date the first line ``lines`` azimuth intervals later."""
    shutil.copytree(safe, out)
    for xml in (out / "annotation").glob("*.xml"):
        text = xml.read_text()
        interval = float(re.search(r"<azimuthTimeInterval>([^<]+)<", text).group(1))
        first = re.search(r"<productFirstLineUtcTime>([^<]+)<", text).group(1)
        moved = np.datetime64(first) + np.timedelta64(int(round(lines * interval * 1e9)), "ns")
        xml.write_text(text.replace(f"<productFirstLineUtcTime>{first}<",
                                    f"<productFirstLineUtcTime>{np.datetime_as_string(moved, unit='us')}<"))
    return out


@pytest.mark.slow
def test_a_sentinel1_azimuth_timing_error_is_measured(alpine_world: BuiltWorld, tmp_path: Path) -> None:
    """The annotation's azimuth start time moved by a fraction of a line: the image moves along the track by
    that fraction of the azimuth pixel spacing (closed form), and the QA measures it within 0.2 px."""
    safe = alpine_world.s1_safes()[0]
    grid = alpine_world.world.grid
    egm, wgs = tmp_path / "egm.tif", tmp_path / "wgs.tif"
    prepare_dem(alpine_world.root / "dem", grid, egm, wgs)
    with rasterio.open(egm) as src:
        height = src.read(1)
    annotation_xml = next((safe / "annotation").glob("*vv*.xml"))
    with open(annotation_xml, "rb") as fh:
        ann = parse_annotation(fh, str(annotation_xml))
    heading = np.radians(ann.platform_heading_deg)
    for lines in (0.0, 0.5):
        copy = shifted_safe(safe, tmp_path / f"safe_{lines}" / safe.name, lines)
        out, geo = tmp_path / f"bs_{lines}.tif", tmp_path / f"geo_{lines}.tif"
        terrain_correct(copy, wgs, out, geo)
        with rasterio.open(out) as src:
            vv, tags = src.read(1), src.tags()
        predicted = reg.sar_prediction_db(height, grid.resolution, float(tags["incidence_angle_deg"]),
                                          float(tags["platform_heading_deg"]))
        s = reg.scene_shift(vv, predicted, np.isfinite(vv), 512, 0.1)
        # a later first line: each map point samples the line imaged lines x interval earlier, so the
        # content appears moved forward along the track by lines x the azimuth spacing
        along_m = lines * ann.image.azimuth_pixel_spacing_m
        expected = (along_m * np.sin(heading) / grid.resolution, -along_m * np.cos(heading) / grid.resolution)
        print(f"first line + {lines} line: expected dx {expected[0]:+.2f}, dy {expected[1]:+.2f}; measured {s}")
        assert abs(s.dx_px - expected[0]) < TOLERANCE_PX and abs(s.dy_px - expected[1]) < TOLERANCE_PX, \
            (lines, expected, s)


def test_mask_refinement_removes_fringes_and_islands() -> None:
    masked = np.zeros((100, 100), bool)
    masked[40:60, 40:60] = True
    grown = refine_mask(masked, 3, 0)  # rows and columns 40..59 masked, grown to 37..62
    assert grown[37, 50] and not grown[36, 50] and grown[50, 62] and not grown[50, 63]
    island = np.ones((100, 100), bool)
    island[10:15, 10:15] = False  # 25 valid pixels alone in the mask
    island[50:90, 50:90] = False
    kept = refine_mask(island, 0, 100)
    assert kept[10:15, 10:15].all() and not kept[50:90, 50:90].any()
    # the fringe statistic sees a bright rim
    image = np.full((100, 100), 50.0)
    image[(ndimage.distance_transform_edt(~masked) <= 5) & ~masked] = 90.0
    near, far = fringe_statistic(image, ~masked)
    assert near > 70 and far == 50.0
    near, far = fringe_statistic(image, ~refine_mask(masked, 6, 0))
    assert near == 50.0


def test_valid_and_masked_optical_pixels_never_share_a_value(built: Path) -> None:
    ds = xr.open_zarr(built / "results" / "dataset" / "patches.zarr")
    optical, valid = ds["optical"].values, ds["valid"].values[:, 0] > 0
    assert (~valid).any() and valid.any()
    assert (optical.min(axis=1)[valid] >= 1).all() and (optical.max(axis=1)[~valid] == 0).all()


def test_the_store_is_self_describing(built: Path) -> None:
    import rioxarray  # noqa: F401  (registers .rio)

    from pipeline.dataset.store import open_patch

    store = built / "results" / "dataset" / "patches.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(store)  # consolidated, no warning
    index = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    for k in (0, len(index) - 1):
        patch = open_patch(store, k)
        left, bottom, right, top = patch["sar"].rio.bounds()
        row = index.iloc[k]
        assert (left, bottom, right, top) == pytest.approx((row.left, row.bottom, row.right, row.top), abs=1e-6)
        assert patch["sar"].rio.crs.to_epsg() == int(row.crs.split(":")[1])
        # the per-patch geotransform says the same
        gt = ds["geotransform"].values[k]
        assert gt[0] == row.left and gt[3] == row.top and gt[1] == -gt[5] > 0
    prov = ds.attrs["provenance"]
    assert prov["configuration"]["dataset"]["patch_size"] == 256 and prov["software"]["gdal"]
    triplets = json.loads((built / "results" / "dataset" / "triplets.json").read_text())
    assert set(prov["products"]) == {t["id"] for t in triplets} >= set(index["triplet"])
    assert prov["software"]["sardem_git_commit"] != ""
    for column in ("sar_dx_px", "sar_dy_px", "sar_registration_quality", "optical_dx_px", "misregistered"):
        assert column in index.columns
    card = (built / "results" / "dataset" / "README.md").read_text()
    assert "## Registration QA" in card and "## Provenance" in card


def test_the_card_warns_about_thin_splits() -> None:
    index = pd.DataFrame({"split": ["train"] * 6 + ["val"] * 3 + ["test"],
                          "shadow_fraction": [0.1] * 6 + [0.0] * 4, "foreshortening_fraction": [0.2] * 10})
    found = split_warnings(index, (0.8, 0.1, 0.1))
    assert any("val split has no radar shadow" in w for w in found)
    assert any("train split holds 60%" in w for w in found) and any("val split holds 30%" in w for w in found)
    assert not any("test split holds" in w for w in found)
    assert split_warnings(index.assign(split=["train"] * 8 + ["val", "test"], shadow_fraction=0.1),
                          (0.8, 0.1, 0.1)) == []
