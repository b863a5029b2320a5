"""Sentinel-2 radiometry that does not depend on the catalog: Earth Search's pre-applied offset detected from the pixels."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pipeline.errors import DatasetError
from pipeline.stages.optical import OpticalParams, prepare_optical
from pipeline.core.grid import MapGrid
from pipeline.optical.reflectance import offset_evidence
from pipeline.simulate.earth_search import earth_search_item

PARAMS = dict(scl_mask_classes=[0, 1, 3, 8, 9, 10, 11], stretch_percentiles=[1.0, 99.0], max_scene_masked_fraction=1.0)


def _grid(built: Path) -> MapGrid:
    with rasterio.open(built / "results" / "dem" / "dem_normalised.tif") as src:
        t = src.transform
        return MapGrid(src.crs.to_epsg(), t.c, t.f, t.a, src.width, src.height)


def _items(built: Path) -> list[dict]:
    paths = sorted((built / "results" / "products" / "sentinel-2-l2a").glob("*.json"))
    return [json.loads(p.read_text()) for p in paths]


def _decode(item: dict, tmp: Path, name: str, grid: MapGrid, mode: str = "detect") -> tuple[np.ndarray, dict]:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(item))
    info = prepare_optical(path, grid, tmp / f"{name}.tif", tmp / f"{name}_info.json", OpticalParams.from_dict(dict(PARAMS, earth_search_offset=mode)))
    with rasterio.open(tmp / f"{name}.tif") as src:
        return src.read(), info


@pytest.fixture()
def clear_item(built: Path) -> dict:
    return [i for i in _items(built) if i["properties"]["eo:cloud_cover"] < 50][0]


def test_three_servings_decode_to_the_same_image(built: Path, clear_item: dict, tmp_path: Path, caplog) -> None:
    """ESA DNs with MTD (Planetary Computer), Earth Search with the offset pre-applied and the flag saying
    it is not, Earth Search without it and the flag saying it is: one image, and the decision logged."""
    grid = _grid(built)
    reference, _ = _decode(clear_item, tmp_path, "pc", grid)
    applied = earth_search_item(clear_item, tmp_path / "es_applied", offset_applied=True, flag=False)
    plain = earth_search_item(clear_item, tmp_path / "es_plain", offset_applied=False, flag=True)
    assert "product-metadata" not in applied["assets"]
    with caplog.at_level(logging.INFO, logger="pipeline.stages.optical"):
        image_applied, info_applied = _decode(applied, tmp_path, "es_applied", grid)
        image_plain, info_plain = _decode(plain, tmp_path, "es_plain", grid)
    assert info_applied["offset_evidence"][0]["decision"] == "offset_applied"
    assert info_plain["offset_evidence"][0]["decision"] == "esa_dn"
    assert info_applied["offset_evidence"][0]["catalog_flag"] is False  # the flag was wrong, and not used
    assert "offset_applied" in caplog.text and "esa_dn" in caplog.text
    np.testing.assert_array_equal(image_plain, reference)
    # pre-applied DNs lose nothing but pixels at or below 0 reflectance (clipped to DN 1): within one DN
    assert np.abs(image_applied.astype(int) - reference.astype(int)).max() <= 1
    with rasterio.open(tmp_path / "es_applied.tif") as src:
        assert json.loads(src.tags()["s2_offset_evidence"])[0]["decision"] == "offset_applied"
    # imposing the answer by configuration gives the same image without looking
    imposed, info = _decode(applied, tmp_path, "imposed", grid, mode="applied")
    np.testing.assert_array_equal(imposed, image_applied)
    assert info["offset_evidence"][0]["decision"] == "configured: applied"


def test_inconclusive_scenes_stop_with_a_clear_message(built: Path, clear_item: dict, tmp_path: Path) -> None:
    grid = _grid(built)
    no_dark = earth_search_item(clear_item, tmp_path / "no_dark", offset_applied=True, flag=True,
                                scl_override={6: 4, 2: 4})
    with pytest.raises(DatasetError, match="cannot tell from the pixels.*earth_search_c1.*earth_search_offset"):
        _decode(no_dark, tmp_path, "no_dark", grid)
    assert not (tmp_path / "no_dark.tif").exists()
    cloudy = [i for i in _items(built) if i["properties"]["eo:cloud_cover"] > 90]
    assert cloudy, "the small world has a fully cloudy scene"
    es_cloudy = earth_search_item(cloudy[0], tmp_path / "cloudy", offset_applied=False, flag=False)
    with pytest.raises(DatasetError, match="cannot tell"):
        _decode(es_cloudy, tmp_path, "cloudy", grid)


def test_offset_evidence_rule() -> None:
    rng = np.random.default_rng(0)
    scl = np.full((100, 100), 4, np.uint8)
    scl[:40] = 6  # water
    water = rng.uniform(0.01, 0.06, (3, 100, 100))
    esa = (water * 10000 + 1000).astype(np.uint16)
    pre = (water * 10000).astype(np.uint16)
    assert offset_evidence(list(esa), scl).decision == "esa_dn"
    assert offset_evidence(list(pre), scl).decision == "offset_applied"
    assert offset_evidence(list(pre), np.full_like(scl, 4)).decision == "inconclusive"  # no dark pixels
    few = np.full_like(scl, 4)
    few[0, :10] = 6
    assert offset_evidence(list(pre), few).decision == "inconclusive"  # 30 values < 200
    ambiguous = np.full((3, 100, 100), 1000, np.uint16)
    assert offset_evidence(list(ambiguous), scl).decision == "inconclusive"
