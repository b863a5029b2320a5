"""The dataset target end to end (real Snakemake runs on a small world): store, alignment, splits, reruns, bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import yaml

from pipeline.dataset.tiling import assign_splits, patch_windows

from .conftest import run, small_config


def test_store_and_index(built: Path) -> None:
    ds = xr.open_zarr(built / "results" / "dataset" / "patches.zarr", consolidated=False)
    index = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    n = len(index)
    assert n > 0 and ds.sizes["patch"] == n
    assert ds["sar"].shape == (n, 2, 256, 256) and ds["sar"].dtype == np.float32
    assert ds["optical"].shape == (n, 3, 256, 256) and ds["optical"].dtype == np.uint8
    assert ds["dem"].shape == (n, 1, 256, 256) and ds["valid"].dtype == np.uint8
    dem = ds["dem"].values
    assert 0 < dem.min() and dem.max() <= 1.0  # normalised by the maximum elevation
    for col in ("patch", "triplet", "s1", "s2", "s1_time", "s2_time", "left", "top", "right", "bottom", "crs",
                "split", "shadow_fraction", "foreshortening_fraction", "masked_fraction"):
        assert col in index.columns, col
    assert set(index["split"]) <= {"train", "val", "test"}
    assert (index["masked_fraction"] <= 0.6).all()
    card = (built / "results" / "dataset" / "README.md").read_text()
    assert "| train |" in card and "Skipped optical scenes" in card
    assert len(list((built / "results" / "dataset" / "quicklooks").glob("*.png"))) == len(
        json.loads((built / "results" / "dataset" / "triplets.json").read_text()))


def test_cloudy_scene_is_skipped_with_a_logged_reason(built: Path) -> None:
    infos = [json.loads(p.read_text()) for p in (built / "results" / "optical").glob("*.json")]
    skipped = [i for i in infos if i["skipped"]]
    assert len(skipped) == 1 and "masked" in skipped[0]["reason"]
    logs = "".join(p.read_text() for p in (built / "logs" / "optical").glob("*.log"))
    assert "skipping" in logs
    index = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    assert skipped[0]["id"] not in set(index["s2"])


def test_patches_share_the_georeference_of_every_layer(built: Path) -> None:
    """Each patch equals the same window of the SAR, DEM, optical and distortion rasters."""
    ds = xr.open_zarr(built / "results" / "dataset" / "patches.zarr", consolidated=False)
    index = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    results = built / "results"
    rng = np.random.default_rng(0)
    for k in rng.choice(len(index), size=min(4, len(index)), replace=False):
        row = index.iloc[k]
        with rasterio.open(results / "sar" / f"{row.s1}_backscatter.tif") as src:
            t = src.transform
            r, c = int(round((t.f - row.top) / -t.e)), int(round((row.left - t.c) / t.a))
            assert (r, c) == (row.row, row.col)
            win = rasterio.windows.Window(c, r, 256, 256)
            np.testing.assert_array_equal(ds["sar"][k].values, src.read(window=win))
        with rasterio.open(results / "dem" / "dem_normalised.tif") as src:
            np.testing.assert_array_equal(ds["dem"][k, 0].values, src.read(1, window=win))
        with rasterio.open(results / "optical" / f"{row.s2}.tif") as src:
            np.testing.assert_array_equal(ds["optical"][k].values, src.read((1, 2, 3), window=win))
        with rasterio.open(results / "distortion" / f"{row.s1}_flags.tif") as src:
            np.testing.assert_array_equal(ds["flags"][k, 0].values, src.read(1, window=win))


def test_corner_reflector_lands_on_its_patch_pixel(built: Path) -> None:
    truth = json.loads((built / "resources" / "simulated" / "truth" / "world.json").read_text())
    ds = xr.open_zarr(built / "results" / "dataset" / "patches.zarr", consolidated=False)
    index = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    found = 0
    for cr in truth["reflectors"]:
        inside = index[(index.left <= cr["easting_m"]) & (index.right > cr["easting_m"])
                       & (index.bottom < cr["northing_m"]) & (index.top >= cr["northing_m"])]
        for k, row in inside.iterrows():
            y = int((row.top - cr["northing_m"]) // 10)
            x = int((cr["easting_m"] - row.left) // 10)
            if not (3 <= y < 253 and 3 <= x < 253):
                continue
            vv = ds["sar"][k, 0].values
            window = vv[y - 3 : y + 4, x - 3 : x + 4]
            dy, dx = np.unravel_index(np.argmax(window), window.shape)
            assert abs(dy - 3) <= 1 and abs(dx - 3) <= 1, (cr["name"], dy - 3, dx - 3)
            found += 1
    assert found > 0


def test_agreement_with_the_independent_truth(built: Path) -> None:
    """`python -m pipeline.simulate agreement` on the workflow's own distortion maps and products: layover
    and shadow against the simulator's ray-cast / surface-coverage truth, reflectors against its
    analytic-orbit solution (measured: layover IoU 0.96, no shadow in this small AOI, 0.0006 px)."""
    res = run([sys.executable, "-m", "pipeline.simulate", "agreement", "--world", "resources/simulated",
               "--results", "results"], built)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.split("|") for line in res.stdout.splitlines() if line.startswith("| S1")]
    assert len(rows) == len(small_config()["simulation"]["dates"])
    for row in rows:
        layover, shadow = float(row[2]), float(row[3])
        assert layover >= 0.9, row
        assert np.isnan(shadow) or shadow >= 0.85, row  # nan: neither has shadow in the AOI
    rms = re.search(r"RMS ([0-9.]+) lines, ([0-9.]+) pixels; largest ([0-9.]+) px", res.stdout)
    assert rms is not None and max(float(x) for x in rms.groups()) < 0.01, res.stdout


def test_flat_ground_backscatter_per_class_matches_the_simulated_surfaces(built: Path) -> None:
    """`python -m pipeline.simulate sar-stats`: on flat ground the ellipsoid-referenced sigma0 that the
    pipeline delivers (calibration, noise removal, terrain correction) is the surface's own, so each
    class's median equals the simulator's backscatter model at the scene's incidence angle (within the
    speckle median's bias and the texture: 1 dB), VV and VH, where the model is above the noise floor."""
    from pipeline.simulate.landcover import BACKSCATTER, REFERENCE_INCIDENCE_DEG
    from pipeline.simulate.sar_stats import sar_statistics

    # the distortion geometry layers (local incidence, slope) are written on demand
    res = run(["snakemake", "distortion_geometry_all", "--cores", "2", "--configfile", "test.yaml"], built)
    assert res.returncode == 0, res.stderr[-2000:]
    res = run([sys.executable, "-m", "pipeline.simulate", "sar-stats", "--world", "resources/simulated",
               "--results", "results"], built)
    assert res.returncode == 0 and "| class |" in res.stdout, res.stderr[-2000:]
    stats = sar_statistics(built / "resources" / "simulated", built / "results")
    with rasterio.open(next((built / "results" / "sar").glob("*_backscatter.tif"))) as src:
        incidence = float(src.tags()["incidence_angle_deg"])
    gain = np.cos(np.radians(incidence)) / np.cos(np.radians(REFERENCE_INCIDENCE_DEG))
    checked = 0
    for c in stats.classes:
        model = BACKSCATTER.get(c.name)
        # built-up is a mixture (dark ground and double-bounce scatterers: its median is neither's;
        # test_built_up_is_bright_points_on_dark_ground checks it against the truth)
        if model is None or c.flat_pixels < 500 or c.name == "built_up":
            continue
        for pol, measured in (("vv", c.flat_vv_median_db), ("vh", c.flat_vh_median_db)):
            expected = getattr(model, f"{pol}_db") + 10 * model.exponent * np.log10(gain)
            if expected > -21.0:  # well above the simulated noise floor (NESZ about -23 dB)
                assert abs(measured - expected) < 1.0, (c.name, pol, measured, expected)
                checked += 1
    assert checked >= 4, stats.classes
    # the relief dominates, as over real mountains: the local incidence explains more of VV than the land
    # cover does (tests' world 0.48 against 0.31; default world 0.61 against 0.34)
    assert 0.0 < stats.vv_r2_land_cover < stats.vv_r2_local_incidence < 1.0, stats
    # on slopes a rough surface (meadow, cos^3) darkens with the local incidence faster than a volume
    # (forest, cos^1: gamma0 about constant), as the model says: dB/deg at 38 deg -0.18 and -0.06, plus the
    # ellipsoid-referenced sigma0's own area gain, which is the same for both
    by_name = {c.name: c for c in stats.classes}
    meadow, forest = by_name["meadow"], by_name["forest"]
    assert meadow.vv_slope_db_per_deg < forest.vv_slope_db_per_deg - 0.08 < -0.08, (meadow, forest)


def test_changing_the_stretch_reruns_only_optical_tiling_and_store(built: Path) -> None:
    cfg = small_config(stretch_percentiles=[2, 98])
    (built / "changed.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "dataset", "-n", "--cores", "2", "--configfile", "changed.yaml"], built)
    planned = res.stdout + res.stderr
    assert res.returncode == 0, planned[-3000:]
    for rule in ("optical", "tiles", "store"):
        assert f"rule {rule}:" in planned or f"\n{rule}" in planned, rule
    for rule in ("terrain_correct", "distortion", "simulate", "dem:", "dem_normalise", "search", "fetch_sentinel1",
                 "fetch_sentinel2", "fetch_dem"):
        assert f"rule {rule}" not in planned and f"checkpoint {rule}" not in planned, rule


def planned_rules(built: Path, cfg: dict, name: str) -> str:
    (built / name).write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "dataset", "-n", "--cores", "2", "--configfile", name], built)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return res.stdout + res.stderr


def test_a_performance_knob_reruns_nothing_a_parameter_reruns_what_it_affects(built: Path) -> None:
    cfg = small_config()
    cfg["sar"] = {"tile_size": 128}  # memory only: the same bytes
    assert "Nothing to be done" in planned_rules(built, cfg, "tile.yaml")
    cfg["sar"] = {"db_floor": -30}
    planned = planned_rules(built, cfg, "floor.yaml")
    for rule in ("terrain_correct", "tiles", "store"):
        assert f"rule {rule}:" in planned, rule
    for rule in ("distortion", "dem", "dem_extended", "optical", "simulate", "fetch_sentinel1"):
        assert f"rule {rule}:" not in planned and f"checkpoint {rule}:" not in planned, rule
    cfg = small_config()
    cfg["distortion"] = {"margin_m": 2000}  # the scan margin: the extended DEM and the maps, not the backscatter
    planned = planned_rules(built, cfg, "margin.yaml")
    for rule in ("dem_extended", "distortion", "tiles", "store"):
        assert f"rule {rule}:" in planned, rule
    for rule in ("terrain_correct", "dem", "optical"):
        assert f"rule {rule}:" not in planned, rule


def test_deleting_the_patch_store_rebuilds_it(built: Path) -> None:
    store = built / "results" / "dataset" / "patches.zarr"
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    shutil.rmtree(store)
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "test.yaml"], built)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "rule store:" in out and "rule tiles:" not in out and "rule terrain_correct:" not in out
    after = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_cached_file_that_changed_is_fetched_again_by_a_plain_rerun(built: Path) -> None:
    """A truncated measurement window, then a truncated DEM tile, in the cache. While the source cannot serve
    the measurement, a plain rerun says what changed, fails at the fetch and leaves every good output in
    place; once it can, the rerun fetches it again and rebuilds an identical store. The same for the tile."""
    results = built / "results"
    before = {k: v for k, v in _files(results).items() if k.parts[0] not in ("products", "benchmarks")}
    product = sorted((results / "products" / "sentinel-1-grd").glob("*.json"))[0]
    window = Path(json.loads(product.read_text())["assets"]["vv"]["href"])
    source = built / "resources" / "simulated" / "sentinel1" / f"{product.stem}.SAFE" / "measurement"
    hidden = source.with_name("measurement-hidden")
    os.truncate(window, window.stat().st_size // 2)
    source.rename(hidden)  # the source cannot serve the file any more
    try:
        res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "test.yaml"], built)
    finally:
        hidden.rename(source)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert f"warning: {window}: changed since it was fetched" in out and "Error in rule fetch_sentinel1" in out
    after = _files(results)
    assert all(after.get(k) == v for k, v in before.items()), "a good output was deleted or changed"

    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "test.yaml"], built)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rule fetch_sentinel1:" in res.stdout + res.stderr and "rule store:" in res.stdout + res.stderr
    assert _files(results / "dataset" / "patches.zarr") == {
        k.relative_to("dataset/patches.zarr"): v for k, v in before.items() if k.parts[:2] == ("dataset", "patches.zarr")}

    tile = next((built / "resources" / "cache" / "simulated" / "dem").glob("*.hgt.zip"))
    os.truncate(tile, 1000)
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "test.yaml"], built)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert f"warning: {tile.relative_to(built)}: changed since it was fetched" in out and "rule fetch_dem:" in out
    assert _files(results / "dataset" / "patches.zarr") == {
        k.relative_to("dataset/patches.zarr"): v for k, v in before.items() if k.parts[:2] == ("dataset", "patches.zarr")}


def test_empty_dataset_fails_clearly(built: Path) -> None:
    cfg = small_config(max_days=0.1, directory="results/empty")
    (built / "empty.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "empty.yaml"], built)
    assert res.returncode != 0
    log = (built / "logs" / "store.log").read_text()
    assert "dataset is empty" in log


def test_patch_windows_and_splits() -> None:
    w = patch_windows(600, 520, 256, 256)
    assert [(p.row, p.col) for p in w] == [(0, 0), (0, 256), (256, 0), (256, 256)]
    rows, cols = np.meshgrid(np.arange(0, 5120, 256), np.arange(0, 5120, 256), indexing="ij")
    rows, cols = np.tile(rows.ravel(), 3), np.tile(cols.ravel(), 3)  # the same locations on 3 dates
    spatial = assign_splits(rows, cols, (0.8, 0.1, 0.1), 0, "spatial", 512)
    for key in set(zip(rows // 512, cols // 512)):
        sel = (rows // 512 == key[0]) & (cols // 512 == key[1])
        assert len(set(spatial[sel])) == 1  # one ground block, one split, every date
    counts = np.bincount(spatial, minlength=3) / spatial.size
    assert abs(counts[0] - 0.8) < 0.06
    random = assign_splits(rows, cols, (0.8, 0.1, 0.1), 0, "random", 512)
    leaks = sum(len(set(random[(rows == r) & (cols == c)])) > 1 for r, c in set(zip(rows, cols)))
    assert leaks > 0  # random splits put one ground location in several splits


def test_stratified_splits_keep_fractions_and_regions_where_spatial_blocks_drift() -> None:
    """Blocks of unequal size (an irregular AOI edge: some blocks hold 1 patch, others 4, on 3 dates) with
    radar shadow only in one corner: the stratified split keeps 80/10/10 of the patches and gives every split
    shadow; a ground block is still in one split only."""
    rng = np.random.default_rng(3)
    cells = [(r, c) for r in range(0, 40 * 256, 256) for c in range(0, 40 * 256, 256)]
    keep = [(r, c) for r, c in cells if rng.random() < (0.9 if (r // 512 + c // 512) % 3 else 0.3)]
    rows = np.tile([r for r, _ in keep], 3)
    cols = np.tile([c for _, c in keep], 3)
    shadow = (rows < 2560) & (cols < 2560)  # one corner of the AOI
    strata = np.column_stack([shadow, cols > 7680]).astype(float)
    want = np.array([0.8, 0.1, 0.1])
    result = {}
    for mode in ("spatial", "stratified"):
        split = assign_splits(rows, cols, tuple(want), 0, mode, 512, strata)
        for key in set(zip(rows // 512, cols // 512)):
            sel = (rows // 512 == key[0]) & (cols // 512 == key[1])
            assert len(set(split[sel])) == 1
        share = np.bincount(split, minlength=3) / split.size
        shadow_share = np.bincount(split[shadow], minlength=3) / shadow.sum()
        result[mode] = (np.abs(share - want).max(), np.abs(shadow_share - want).max())
    assert result["stratified"][0] < 0.01 and result["stratified"][1] < 0.03, result
    assert result["stratified"][0] < result["spatial"][0] and result["stratified"][1] < result["spatial"][1], result


def _synthetic_shard(path: Path, triplet: str, first: int, n: int, size: int, layers_short_by: int = 0) -> None:
    """A shard as the tiles stage writes it: ``n`` patches of ``size`` px whose every pixel holds its patch's
    number in the whole dataset (``first`` + k), on a 10 m grid."""
    rows = [{"triplet": triplet, "s1": f"S1_{triplet}", "s2": f"S2_{triplet}", "s1_time": "2020-01-01T00:00:00",
             "s2_time": "2020-01-01T00:00:00", "row": (k // 10) * size, "col": (k % 10) * size,
             "left": 300000.0 + (k % 10) * size * 10, "top": 5000000.0 - (k // 10) * size * 10,
             "right": 300000.0 + (k % 10 + 1) * size * 10, "bottom": 5000000.0 - (k // 10 + 1) * size * 10,
             "crs": "EPSG:32632", "shadow_fraction": 0.0, "foreshortening_fraction": 0.5, "masked_fraction": 0.0}
            for k in range(n)]
    m = n - layers_short_by
    number = (first + np.arange(m))[:, None, None, None]
    layers = {"sar": np.broadcast_to(number, (m, 2, size, size)).astype(np.float32),
              "dem": np.broadcast_to(number, (m, 1, size, size)).astype(np.float32),
              "optical": np.broadcast_to(number % 256, (m, 3, size, size)).astype(np.uint8),
              "valid": np.ones((m, 1, size, size), np.uint8),
              "flags": np.broadcast_to(number % 32, (m, 1, size, size)).astype(np.uint8)}
    if m == 0:
        layers = {k: np.zeros((0,)) for k in layers}  # what the tiles stage writes for a triplet without patches
    np.savez(path, index=json.dumps(rows), **layers)


def test_store_copies_uneven_shards_in_order_whole_zarr_shards_at_a_time(tmp_path: Path) -> None:
    """Triplets of 70, 0, 5, 64 and 1 patches: the store's layers hold every patch once, in the shards' order,
    in zarr shards of 64 patches (the writer fills them from several triplets); a shard whose layers miss a
    patch of its index is refused, naming the layer."""
    import zarr

    from pipeline.dataset.store import assemble_store
    from pipeline.errors import DatasetError

    size, shards, first = 8, [], 0
    for i, n in enumerate((70, 0, 5, 64, 1)):
        shards.append(tmp_path / f"t{i}.npz")
        _synthetic_shard(shards[-1], f"t{i}", first, n, size)
        first += n
    index = assemble_store(shards, tmp_path / "out", "spatial", (0.8, 0.1, 0.1), 0, 2 * size, size)
    assert len(index) == first == 140
    root = zarr.open_group(str(tmp_path / "out" / "patches.zarr"), mode="r")
    number = np.arange(first)
    assert root["sar"].shards == (64, 2, size, size)
    sar = root["sar"][:]
    assert sar.shape == (140, 2, size, size)
    assert (sar == number[:, None, None, None]).all()
    assert (root["dem"][:] == number[:, None, None, None]).all()
    assert (root["optical"][:] == (number % 256)[:, None, None, None]).all()
    assert (root["flags"][:] == (number % 32)[:, None, None, None]).all()
    assert (index["triplet"].to_numpy() == np.repeat([f"t{i}" for i in (0, 2, 3, 4)], (70, 5, 64, 1))).all()

    _synthetic_shard(shards[2], "t2", 70, 5, size, layers_short_by=1)
    with pytest.raises(DatasetError, match="'sar' layers hold 139 patches, their indexes 140"):
        assemble_store(shards, tmp_path / "bad", "spatial", (0.8, 0.1, 0.1), 0, 2 * size, size)
    assert not (tmp_path / "bad" / "patches.zarr").exists()
