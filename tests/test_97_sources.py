"""Search and fetch: criteria, pairing, real manifests and metadata, a STAC API and CDSE OData served
on 127.0.0.1 (tests/stac_server.py), and whole Snakemake runs through them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import yaml
from rasterio.windows import Window

from pipeline.errors import UserError
from pipeline.core.grid import MapGrid, aoi_grid_around, aoi_grid_for_bbox, lonlat_bounds
from pipeline.io.checksums import file_md5
from pipeline.io.download import CredentialsError, DownloadError, DownloadPolicy
from pipeline.optical.metadata import metadata_from_properties, parse_product_metadata
from pipeline.sar.product import aoi_radar_window, open_product
from pipeline.sar.safe import manifest_entries, product_files
from pipeline.sources.fetch import fetch_sentinel1_window, fetch_sentinel2, product_annotation_href
from pipeline.sources.odata import ODataEndpoints, fetch_safe_zip, zip_item
from pipeline.sources.providers import href_signer
from pipeline.sources.query import S1_COLLECTION, S2_COLLECTION, SceneQuery, matches, pair_scenes
from pipeline.sources.search import read_result, run_search, search_api, search_static

from .conftest import DATA, REPO, run, small_config, workflow_copy
from .stac_server import PASSWORD, USER, Chaos, StacServer

FAST = DownloadPolicy(connect_timeout_s=2, read_timeout_s=10, max_attempts=3, backoff_s=0.05)
NO_SIGN = href_signer(None)


def s1_item(item_id: str, when: str, **props) -> dict:
    p = {"datetime": when, "sar:instrument_mode": "IW", "sar:polarizations": ["VV", "VH"],
         "sat:orbit_state": "descending", "sat:relative_orbit": 66, **props}
    return {"id": item_id, "bbox": [6.0, 45.0, 7.0, 46.0], "properties": p, "assets": {}}


def s2_item(item_id: str, when: str, cloud: float, bbox=(6.0, 45.0, 7.0, 46.0)) -> dict:
    return {"id": item_id, "bbox": list(bbox), "properties": {"datetime": when, "eo:cloud_cover": cloud}, "assets": {}}


# ---------------------------------------------------------------- criteria and pairing (pure)

def test_criteria_select_as_the_paper_does() -> None:
    q = SceneQuery(bbox=(6.5, 45.3, 6.7, 45.5), start="2018-01-01", end="2021-12-31")
    ok = s1_item("a", "2019-06-01T05:34:00Z")
    assert matches(ok, S1_COLLECTION, q) == (True, "")
    assert not matches(s1_item("b", "2019-06-01T17:34:00Z", **{"sat:orbit_state": "ascending"}), S1_COLLECTION, q)[0]
    assert not matches(s1_item("c", "2019-06-01T05:34:00Z", **{"sar:polarizations": ["VV"]}), S1_COLLECTION, q)[0]
    assert not matches(s1_item("d", "2019-06-01T05:34:00Z", **{"sar:instrument_mode": "EW"}), S1_COLLECTION, q)[0]
    assert not matches(s1_item("e", "2017-12-31T23:59:59Z"), S1_COLLECTION, q)[0]
    assert matches(s1_item("f", "2021-12-31T23:00:00Z"), S1_COLLECTION, q)[0]  # the end date is inclusive
    assert not matches(s1_item("g", "2022-01-01T00:00:01Z"), S1_COLLECTION, q)[0]
    assert not matches(s1_item("h", "2019-06-01T05:34:00Z"), S1_COLLECTION, SceneQuery(bbox=q.bbox, relative_orbit=139))[0]
    assert matches(s2_item("s", "2019-06-01T10:30:00Z", 24.9), S2_COLLECTION, q)[0]
    assert not matches(s2_item("t", "2019-06-01T10:30:00Z", 25.0), S2_COLLECTION, q)[0]  # strictly below 25 %
    assert not matches(s2_item("u", "2019-06-01T10:30:00Z", 3.0, bbox=(8, 47, 9, 48)), S2_COLLECTION, q)[0]
    assert q.datetime_range() == "2018-01-01T00:00:00Z/2021-12-31T23:59:59Z"
    assert SceneQuery(bbox=q.bbox, start="2020-01-01").datetime_range() == "2020-01-01T00:00:00Z/.."


def test_pairing_takes_the_nearest_optical_scene_within_the_window() -> None:
    s1 = [s1_item("s1-late", "2020-08-12T05:34:00Z"), s1_item("s1-early", "2020-05-20T05:34:00Z"),
          s1_item("s1-alone", "2020-10-01T05:34:00Z"), s1_item("s1-twin", "2020-08-12T05:34:30Z")]
    s2 = [s2_item("s2-a", "2020-05-21T10:37:00Z", 1), s2_item("s2-b", "2020-05-23T10:37:00Z", 1),
          s2_item("s2-c", "2020-08-10T10:27:00Z", 1), s2_item("s2-d", "2020-10-06T10:27:00Z", 1)]
    triplets = pair_scenes(s1, s2, max_days=3)
    assert [(t["id"], t["s1"], t["s2"]) for t in triplets] == [
        ("20200520", "s1-early", "s2-a"), ("20200812", "s1-late", "s2-c"), ("20200812_2", "s1-twin", "s2-c")]
    assert triplets[0]["days_apart"] == pytest.approx((24 * 60 + (10 * 60 + 37) - (5 * 60 + 34)) / 1440, abs=1e-3)
    assert pair_scenes(s1, s2, max_days=0.1) == []


def test_rfi_annotation_href_is_replaced_by_the_product_annotation() -> None:
    rfi = "https://host/s1-grd/GRD/2021/8/9/IW/DV/X_6FF8/annotation/rfi/rfi-iw-vv.xml?st=1&sig=abc"
    assert product_annotation_href(rfi) == "https://host/s1-grd/GRD/2021/8/9/IW/DV/X_6FF8/annotation/iw-vv.xml?st=1&sig=abc"
    plain = "https://host/X.SAFE/annotation/s1a-iw-grd-vv-2021.xml"
    assert product_annotation_href(plain) == plain


def test_real_manifest_lists_the_md5_of_the_real_annotation() -> None:
    """The verification data that fetching uses, on a real Copernicus manifest and annotation."""
    entries = manifest_entries(DATA / "s1" / "S1B_manifest.safe")
    annotation = DATA / "s1" / "s1b-iw-grd-vv-20210401t052623-20210401t052648-026269-032297-001.xml"
    entry = entries[annotation.name]
    assert entry.path == f"annotation/{annotation.name}"
    assert entry.md5 == file_md5(annotation) and entry.size == annotation.stat().st_size
    assert sum(e.path.startswith("measurement/") for e in entries.values()) == 2


@pytest.mark.parametrize("product", sorted((DATA / "s2").iterdir()))
def test_offsets_from_stac_properties_equal_the_real_product_metadata(product: Path) -> None:
    """Baselines 02.12 (no offset) and 05.09 (-1000): the baseline rule gives the metadata's offsets."""
    meta = parse_product_metadata(product / "MTD_MSIL2A.xml")
    props = {"s2:processing_baseline": meta.processing_baseline, "eo:cloud_cover": meta.cloud_cover_percent,
             "datetime": str(meta.start_time) + "Z", "platform": meta.spacecraft}
    derived = metadata_from_properties(product.name, props)
    for band in ("B02", "B03", "B04"):
        assert derived.offset(band) == meta.offset(band)
    assert derived.quantification_value == meta.quantification_value


def test_bbox_grid_covers_the_box() -> None:
    grid = aoi_grid_for_bbox(5.8, 45.2, 7.1, 46.1)
    w, s, e, n = lonlat_bounds(grid)
    assert w <= 5.8 and s <= 45.2 and e >= 7.1 and n >= 46.1
    assert grid.epsg == 32632 and grid.left % 10 == 0 and grid.top % 10 == 0
    assert 95_000 < grid.height * 10 < 110_000  # about 100 km, as the paper's area
    with pytest.raises(ValueError, match="west < east"):
        aoi_grid_for_bbox(7.1, 45.2, 5.8, 46.1)


def test_radar_window_holds_every_aoi_pixel(alpine_world) -> None:
    """Every AOI pixel, geocoded exactly at its true height, falls inside the window (margin excluded)."""
    geometry = open_product(alpine_world.s1_safes()[0]).geometry
    grid = MapGrid(**alpine_world.truth["aoi_grid"])
    h = np.linspace(200.0, 3500.0, 7)
    (r0, r1), (c0, c1) = aoi_radar_window(geometry, grid, (h[0], h[-1]), margin_px=0)
    import pyproj

    e, n = np.meshgrid(grid.easting[::16], grid.northing[::16])
    lon, lat = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True).transform(e, n)
    for height in h:
        line, pixel = geometry.geographic_to_radar(lat, lon, np.full_like(lat, height))
        assert line.min() >= r0 and line.max() < r1 and pixel.min() >= c0 and pixel.max() < c1
    # and tight: the AOI's corners at the height extremes reach its first and last lines within a pixel
    left, bottom, right, top = grid.bounds
    clon, clat = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True).transform(
        np.array([left, right, right, left]), np.array([top, top, bottom, bottom]))
    lines = np.concatenate([geometry.geographic_to_radar(clat, clon, np.full(4, height))[0] for height in (h[0], h[-1])])
    assert lines.min() - r0 < 1.0 and r1 - 1 - lines.max() < 1.0


# ---------------------------------------------------------------- against the local server

@pytest.fixture(scope="module")
def server(built: Path):
    s = StacServer(built / "resources" / "simulated")
    yield s
    s.close()


def test_api_search_equals_the_static_catalog_search(server: StacServer, built: Path) -> None:
    """pystac-client against /search (paged, 2 items a page) selects what the static search does."""
    grid = aoi_grid_around(45.42, 6.62, 5120)
    q = SceneQuery(bbox=lonlat_bounds(grid), max_cloud_cover=100, orbit_state=None)  # both passes
    for collection in (S1_COLLECTION, S2_COLLECTION):
        api = search_api(f"{server.url}/stac", collection, q)
        static = search_static(built / "resources" / "simulated" / "catalog.json", collection, q)
        assert [i["id"] for i in api] == [i["id"] for i in static] and len(api) == 3
        assert all(a["properties"] == b["properties"] for a, b in zip(api, static))
    # the paper's cloud threshold drops the fully cloudy scene (criteria checked client-side as well)
    q25 = SceneQuery(bbox=q.bbox, max_cloud_cover=25)
    assert len(search_api(f"{server.url}/stac", S2_COLLECTION, q25)) == 2
    # the default world flies two dates descending and one ascending
    for orbit_state, count in (("descending", 2), ("ascending", 1)):
        assert len(search_api(f"{server.url}/stac", S1_COLLECTION, SceneQuery(bbox=q.bbox, orbit_state=orbit_state))) == count
    assert any(m == "POST" and p == "/stac/search" for m, p in server.requests)


def test_unreachable_catalog_says_it_needs_network(tmp_path: Path) -> None:
    q = SceneQuery(bbox=(6.5, 45.3, 6.7, 45.5))
    with pytest.raises(UserError, match="needs network.*search.frozen"):
        run_search(q, {S1_COLLECTION: "http://127.0.0.1:9/stac", S2_COLLECTION: "http://127.0.0.1:9/stac"}, "stac",
                   policy=FAST)


def test_only_the_aoi_radar_window_travels(server: StacServer, built: Path, tmp_path: Path) -> None:
    """An eighth of the AOI's side: a few of the 256 x 256 tiles travel, and the window equals the original."""
    item = server.item(S1_COLLECTION, sorted(i["id"] for i in server.items[S1_COLLECTION])[0])
    full = aoi_grid_around(45.42, 6.62, 5120)
    grid = MapGrid(full.epsg, full.left, full.top, 10.0, full.width // 8, full.height // 8)
    local = fetch_sentinel1_window(item, tmp_path, grid, (1500.0, 1700.0), ["VV"], NO_SIGN, 8, FAST)
    (r0, r1), (c0, c1) = local["properties"]["sardem:radar_window"]
    measurement = next(k for k in server.bytes_served if k.endswith(".tiff") and "-vv-" in k)
    original = built / "resources" / "simulated" / measurement[len("/files/"):]
    served = server.bytes_served[measurement]
    assert served < 0.35 * original.stat().st_size, (served, original.stat().st_size)
    with rasterio.open(local["assets"]["vv"]["href"]) as got, rasterio.open(original) as want:
        assert (got.height, got.width) == (want.height, want.width)  # line/pixel stay the annotation's
        win = Window(max(c0, 0), max(r0, 0), min(c1, want.width) - max(c0, 0), min(r1, want.height) - max(r0, 0))
        np.testing.assert_array_equal(got.read(1, window=win), want.read(1, window=win))
        assert got.read(1, window=Window(0, want.height - 8, 8, 8)).max() == 0  # outside: absent (no data)
    # the local item reads like the SAFE
    path = tmp_path / "item.json"
    path.write_text(json.dumps(local))
    assert open_product(path).polarisations == ["VV"]


def test_corrupted_xml_is_fetched_again_and_rfi_href_is_fixed(server: StacServer, tmp_path: Path) -> None:
    item = server.item(S1_COLLECTION, sorted(i["id"] for i in server.items[S1_COLLECTION])[1])
    href = item["assets"]["schema-product-vv"]["href"]
    head, name = href.rsplit("/annotation/", 1)
    item["assets"]["schema-product-vv"]["href"] = f"{head}/annotation/rfi/rfi-{name}"  # the catalog bug
    key = "/files/" + href.split("/files/", 1)[1]
    from urllib.parse import unquote

    key = unquote(key)
    server.faults[key] = "corrupt-once"
    grid = aoi_grid_around(45.42, 6.62, 2560)
    local = fetch_sentinel1_window(item, tmp_path, grid, (500.0, 3000.0), ["VV"], NO_SIGN, 8, FAST)
    original = server.world / key[len("/files/"):]
    fetched = Path(local["assets"]["schema-product-vv"]["href"])
    assert fetched.read_bytes() == original.read_bytes()
    assert server.bytes_served[key] == 2 * original.stat().st_size  # bad once, then good
    assert not any("/rfi/" in p for _, p in server.requests)
    assert not list(tmp_path.rglob("*.part"))


def test_sentinel2_crop_decodes_like_the_full_band(server: StacServer, built: Path, tmp_path: Path) -> None:
    item = server.item(S2_COLLECTION, sorted(i["id"] for i in server.items[S2_COLLECTION])[0])
    grid = aoi_grid_around(45.42, 6.62, 2560)
    local = fetch_sentinel2(item, tmp_path, grid, "planetary_computer", NO_SIGN, FAST)
    assert set(local["assets"]) == {"B02", "B03", "B04", "SCL", "product-metadata", "granule-metadata"}
    with rasterio.open(local["assets"]["B04"]["href"]) as crop:
        rel = item["assets"]["B04"]["href"].split("/files/", 1)[1]
        with rasterio.open(server.world / rel) as full:
            assert crop.crs == full.crs and crop.res == full.res
            col, row = ~full.transform @ (crop.transform.c, crop.transform.f)
            assert abs(col - round(col)) < 1e-9 and abs(row - round(row)) < 1e-9  # on the source's pixel grid
            win = Window(round(col), round(row), crop.width, crop.height)
            np.testing.assert_array_equal(crop.read(1), full.read(1, window=win))
            left, bottom, right, top = crop.bounds
            assert left <= grid.left and top >= grid.top and right >= grid.bounds[2] and bottom <= grid.bounds[1]


@pytest.fixture(scope="module")
def alpine_server(alpine_world):
    s = StacServer(alpine_world.root)
    yield s
    s.close()


def test_the_catalog_size_and_checksum_guard_whole_files(alpine_server: StacServer, alpine_world,
                                                          tmp_path: Path) -> None:
    """Sentinel-2's metadata files are listed in no manifest: the catalog's ``file:size`` and ``file:checksum``
    (STAC file extension, an MD5 multihash) are checked before the rename. A corrupted answer is fetched
    again; a file that cannot match the catalog's checksum stops with a DownloadError naming it, and
    nothing of it is kept."""
    server = alpine_server
    item = server.item(S2_COLLECTION, sorted(i["id"] for i in server.items[S2_COLLECTION])[0])
    spec = alpine_world.world.spec
    grid = aoi_grid_around(spec.center_lat, spec.center_lon, 2560)
    asset = item["assets"]["product-metadata"]
    original = server.world / asset["href"].split("/files/", 1)[1]
    assert asset["file:size"] == original.stat().st_size and asset["file:checksum"] == "d510" + file_md5(original)
    key = "/files/" + asset["href"].split("/files/", 1)[1]
    server.faults[key] = "corrupt-once"
    local = fetch_sentinel2(item, tmp_path / "a", grid, "planetary_computer", NO_SIGN, FAST)
    assert Path(local["assets"]["product-metadata"]["href"]).read_bytes() == original.read_bytes()
    assert server.bytes_served[key] == 2 * original.stat().st_size  # bad once (same size), then good

    bad = json.loads(json.dumps(item))
    bad["assets"]["granule-metadata"]["file:checksum"] = "d510" + "0" * 32
    with pytest.raises(DownloadError, match=r"MTD_TL\.xml: giving up after 3 attempts: MD5 mismatch"):
        fetch_sentinel2(bad, tmp_path / "b", grid, "planetary_computer", NO_SIGN, FAST)
    assert not [f for f in (tmp_path / "b").rglob("MTD_TL.xml*") if ".locks" not in f.parts]


def test_a_window_cut_from_an_older_product_is_cut_again(alpine_server: StacServer, alpine_world,
                                                         tmp_path: Path) -> None:
    """A product rebuilt under the same id (a reprocessing, a rebuilt simulated world): the cached radar
    window matches its own record but was cut from other bytes. The manifest's MD5 of the measurement
    (recorded with the window) tells, and the window is cut again from the new measurement; an unchanged
    product reuses it."""
    item = alpine_server.item(S1_COLLECTION, sorted(i["id"] for i in alpine_server.items[S1_COLLECTION])[0])
    world = tmp_path / "world"
    safe_rel = Path(item["assets"]["safe-manifest"]["href"].split("/files/", 1)[1]).parent
    shutil.copytree(alpine_world.root / safe_rel, world / safe_rel)
    local_item = json.loads(json.dumps(item))
    for asset in local_item["assets"].values():  # the copy, by path (fetch reads local files as it reads URLs)
        asset["href"] = str(world / asset["href"].split("/files/", 1)[1])
    spec = alpine_world.world.spec
    grid = aoi_grid_around(spec.center_lat, spec.center_lon, 2560)
    cache = tmp_path / "cache"

    def fetched_window() -> tuple[np.ndarray, np.ndarray]:
        local = fetch_sentinel1_window(local_item, cache, grid, (500.0, 3000.0), ["VV"], NO_SIGN, 8, FAST)
        (r0, r1), (c0, c1) = local["properties"]["sardem:radar_window"]
        win = Window(c0, r0, c1 - c0, r1 - r0)
        with rasterio.open(local["assets"]["vv"]["href"]) as got, rasterio.open(local_item["assets"]["vv"]["href"]) as src:
            return got.read(1, window=win), src.read(1, window=win)

    got, want = fetched_window()
    np.testing.assert_array_equal(got, want)
    # the product is rebuilt: other DNs in the measurement, the manifest (and the catalog's entry for it) follow
    measurement = Path(local_item["assets"]["vv"]["href"])
    old_md5, old_size = file_md5(measurement), measurement.stat().st_size
    with rasterio.open(measurement, "r+") as dst:
        dst.write(dst.read(1) // 2 + 1, 1)
    manifest = Path(local_item["assets"]["safe-manifest"]["href"])
    text = manifest.read_text().replace(old_md5, file_md5(measurement))
    manifest.write_text(text.replace(f'size="{old_size}"', f'size="{measurement.stat().st_size}"'))
    local_item["assets"]["safe-manifest"].update({"file:size": manifest.stat().st_size,
                                                  "file:checksum": "d510" + file_md5(manifest)})
    window_file = next((cache / "sentinel-1-grd" / item["id"] / "measurement").glob("*.tiff"))
    before = window_file.stat().st_mtime_ns
    got, want = fetched_window()
    np.testing.assert_array_equal(got, want)  # the new product's DNs, not the cached window's
    assert window_file.stat().st_mtime_ns != before
    after = window_file.stat().st_mtime_ns
    fetched_window()  # unchanged: reused
    assert window_file.stat().st_mtime_ns == after


def test_a_band_window_of_a_reprocessed_sentinel2_product_is_cut_again(alpine_server: StacServer, alpine_world,
                                                                        tmp_path: Path) -> None:
    """Sentinel-2 windows name no manifest: the product metadata (generation time, statistics) identifies
    the product's version, and a new one makes the cached band windows be cut again."""
    item = alpine_server.item(S2_COLLECTION, sorted(i["id"] for i in alpine_server.items[S2_COLLECTION])[0])
    world = tmp_path / "world"
    rel = Path(item["assets"]["product-metadata"]["href"].split("/files/", 1)[1]).parent  # the SAFE
    shutil.copytree(alpine_world.root / rel, world / rel)
    local_item = json.loads(json.dumps(item))
    for asset in local_item["assets"].values():
        if "/files/" in asset["href"]:
            asset["href"] = str(world / asset["href"].split("/files/", 1)[1])
    spec = alpine_world.world.spec
    grid = aoi_grid_around(spec.center_lat, spec.center_lon, 2560)
    band = Path(local_item["assets"]["B04"]["href"])

    def fetched_b04() -> np.ndarray:
        local = fetch_sentinel2(local_item, tmp_path / "cache", grid, "planetary_computer", NO_SIGN, FAST)
        with rasterio.open(local["assets"]["B04"]["href"]) as crop, rasterio.open(band) as full:
            col, row = ~full.transform @ (crop.transform.c, crop.transform.f)
            want = full.read(1, window=Window(round(col), round(row), crop.width, crop.height))
            np.testing.assert_array_equal(crop.read(1), want)
            return want

    first = fetched_b04()
    with rasterio.open(band, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:  # reprocessed: other reflectances
        dst.write(dst.read(1) // 2 + 1, 1)
    metadata = Path(local_item["assets"]["product-metadata"]["href"])
    text = metadata.read_text()
    start = text.index("<GENERATION_TIME>") + len("<GENERATION_TIME>")
    metadata.write_text(text[:start] + "2031" + text[start + 4:])
    local_item["assets"]["product-metadata"].update({"file:size": metadata.stat().st_size,
                                                     "file:checksum": "d510" + file_md5(metadata)})
    assert not np.array_equal(fetched_b04(), first)  # fetched_b04 checks the window against the new band


# ---------------------------------------------------------------- CDSE OData

def test_odata_safe_zip_with_token_is_verified_and_reads_like_the_safe(server: StacServer, tmp_path: Path,
                                                                       monkeypatch) -> None:
    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    endpoints = ODataEndpoints(f"{server.url}/odata/v1", f"{server.url}/odata/v1", f"{server.url}/auth/token")
    safe = next(iter(server.products.values()))
    product_id = safe.name.removesuffix(".SAFE")
    zipped = fetch_safe_zip(product_id, tmp_path, endpoints, FAST)
    assert zipped.name == f"{product_id}.SAFE.zip"
    item = zip_item(server.item(S1_COLLECTION, product_id), zipped)
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    from_zip, from_dir = product_files(path), product_files(safe)
    for pol in ("VV", "VH"):
        with rasterio.open(from_zip[pol].measurement) as a, rasterio.open(from_dir[pol].measurement) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
    # wrong password: a clear credentials error, nothing under the final name
    monkeypatch.setenv("CDSE_PASSWORD", "wrong")
    with pytest.raises(CredentialsError, match="refused the credentials"):
        fetch_safe_zip(product_id, tmp_path / "other", endpoints, FAST)
    assert not (tmp_path / "other" / "sentinel-1-grd" / f"{product_id}.SAFE.zip").exists()


def test_odata_zip_that_fails_its_manifest_is_not_kept(server: StacServer, tmp_path: Path, monkeypatch) -> None:
    """The OData checksum matches what was served, but a member differs from the manifest's MD5."""
    import io
    import zipfile

    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    endpoints = ODataEndpoints(f"{server.url}/odata/v1", f"{server.url}/odata/v1", f"{server.url}/auth/token")
    pid, safe = list(server.products.items())[-1]
    good = zipfile.ZipFile(io.BytesIO(server.zip_of(pid)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info in good.infolist():
            data = good.read(info)
            if "/annotation/calibration/noise-" in info.filename:
                data = data.replace(b"<noiseRangeLut", b"<noiseRangeLuT", 1)
            z.writestr(info, data)
    server._zips[pid] = buf.getvalue()
    try:
        with pytest.raises(DownloadError, match="does not match its MD5 in the manifest"):
            fetch_safe_zip(safe.name.removesuffix(".SAFE"), tmp_path, endpoints, FAST)
        assert not list((tmp_path / "sentinel-1-grd").glob("*.zip"))
    finally:
        server._zips.pop(pid)


# ---------------------------------------------------------------- whole workflow runs

def stac_config(url: str) -> dict:
    cfg = small_config()
    cfg["source"] = "stac"
    cfg["search"].update({"sentinel1": {"api": f"{url}/stac", "sign": None},
                          "sentinel2": {"api": f"{url}/stac", "assets": "planetary_computer"}})
    cfg["download"] = {"dem_url": url + "/files/dem/{tile}.SRTMGL1.hgt.zip"}
    return cfg


@pytest.fixture(scope="module")
def stac_run(server: StacServer, tmp_path_factory) -> Path:
    work = workflow_copy(tmp_path_factory.mktemp("stac"))
    (work / "stac.yaml").write_text(yaml.safe_dump(stac_config(server.url)))
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "stac.yaml"], work)
    assert res.returncode == 0, res.stderr[-4000:]
    return work


def test_stac_source_gives_byte_identical_patches(stac_run: Path, built: Path, server: StacServer) -> None:
    """The same AOI and dates through source: stac (local STAC API + HTTP) and source: simulated."""
    a = xr.open_zarr(built / "results" / "dataset" / "patches.zarr", consolidated=False)
    b = xr.open_zarr(stac_run / "results" / "dataset" / "patches.zarr", consolidated=False)
    assert a.sizes["patch"] == b.sizes["patch"] > 0
    for name in ("sar", "dem", "optical", "valid", "flags"):
        x, y = a[name].values, b[name].values
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
    ia = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    ib = pd.read_parquet(stac_run / "results" / "dataset" / "index.parquet")
    pd.testing.assert_frame_equal(ia, ib)
    assert json.loads((stac_run / "results" / "search" / "result.json").read_text())["source"] == "stac"
    assert any(k.endswith(".tiff") for k in server.bytes_served)  # the measurements came over HTTP
    assert not (stac_run / "resources" / "simulated").exists()


TEMPORARY = (".part", ".tmp", ".old")


@pytest.mark.slow
def test_the_main_job_survives_a_server_that_fails_at_random(stac_run: Path, built: Path, tmp_path: Path) -> None:
    """Chaos: every request to the search API, the files and the DEM may be dropped, stalled, answered with
    503 or 429, given another range than asked or cut short (seeded, at most two faults per request path).
    The dataset comes out byte-identical to the fault-free run, and no temporary file is left."""
    chaotic = StacServer(built / "resources" / "simulated")
    chaotic.chaos = Chaos(seed=4, rate=0.3)
    try:
        work = workflow_copy(tmp_path)
        (work / "stac.yaml").write_text(yaml.safe_dump(stac_config(chaotic.url)))
        res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "stac.yaml"], work, timeout=1200)
        (work / "chaos.json").write_text(json.dumps(chaotic.chaos.log, indent=0))
        failed = [p.name for p in (work / "logs").rglob("*.log") if "error:" in p.read_text(errors="replace")]
        assert res.returncode == 0, (failed, [e for e in chaotic.chaos.log if any(f[:20] in e[0] for f in failed)])
    finally:
        chaotic.close()
    served = chaotic.chaos.served
    print(f"chaos: {sum(served.values())} faults in {len(chaotic.requests)} requests: {dict(served)}")
    assert set(served) == set(Chaos.kinds) and all(n >= 2 for n in served.values()), served
    a = xr.open_zarr(stac_run / "results" / "dataset" / "patches.zarr", consolidated=False)
    b = xr.open_zarr(work / "results" / "dataset" / "patches.zarr", consolidated=False)
    assert a.sizes["patch"] == b.sizes["patch"] > 0
    for name in ("sar", "dem", "optical", "valid", "flags"):
        assert a[name].values.tobytes() == b[name].values.tobytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(stac_run / "results" / "dataset" / "index.parquet"),
                                  pd.read_parquet(work / "results" / "dataset" / "index.parquet"))
    left = [p for p in work.rglob("*") if p.name.endswith(TEMPORARY) or ".tmp" in p.name]
    assert not left, left


def test_frozen_search_result_plans_offline(stac_run: Path, tmp_path: Path) -> None:
    """With search.frozen, every fetch job is planned without contacting any server."""
    work = workflow_copy(tmp_path)
    shutil.copy(stac_run / "results" / "search" / "result.json", work / "frozen.json")
    cfg = stac_config("http://127.0.0.1:9")  # nothing listens there
    cfg["search"]["frozen"] = "frozen.json"
    (work / "frozen.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "-n", "dataset", "--cores", "1", "--configfile", "frozen.yaml"], work)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    result = read_result(work / "frozen.json")
    n_s1 = len(pair_scenes(result[S1_COLLECTION], result[S2_COLLECTION], 3))
    stats = dict(line.split()[:2] for line in out.split("Job stats:")[1].splitlines()[3:] if len(line.split()) == 2)
    assert int(stats["fetch_sentinel1"]) == n_s1 and int(stats["tiles"]) == n_s1 and "search" not in stats


def test_paper_configuration_plans_offline_and_the_search_says_it_needs_network(tmp_path: Path) -> None:
    work = workflow_copy(tmp_path)
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert cfg["aoi"]["bbox"] == [5.8, 45.2, 7.1, 46.1] and cfg["search"]["max_cloud_cover"] == 25
    assert cfg["search"]["orbit_state"] == "descending" and cfg["search"]["start"].startswith("2018")
    res = run(["snakemake", "-n", "dataset", "--cores", "1", "--configfile", "config/paper.yaml"], work)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "search" in out and "fetch_dem" in out
    # run the search with the catalogs out of reach: a clear message, nothing under the final name
    res = run(["snakemake", "search", "--cores", "1", "--configfile", "config/paper.yaml", "--config",
               "search={'sentinel1': {'api': 'http://127.0.0.1:9/stac'}, 'sentinel2': {'api': 'http://127.0.0.1:9/stac'}}"],
              work)
    assert res.returncode != 0
    log = (work / "logs" / "search.log").read_text()
    assert "needs network" in log and "search.frozen" in log
    assert not (work / "results" / "paper" / "search" / "result.json").exists()


# ---------------------------------------------------------------- AOI files, precise orbits

def test_geojson_aoi_bbox(tmp_path: Path) -> None:
    from pipeline.io.aoi import geojson_bbox

    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[6.1, 45.3], [6.9, 45.25], [6.7, 45.9], [6.1, 45.3]]]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [7.05, 45.5]}}]}
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps(fc))
    assert geojson_bbox(path) == (6.1, 45.25, 7.05, 45.9)
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [[[300000, 5000000], [310000, 5000000],
                                                                       [310000, 5010000], [300000, 5000000]]]}))
    with pytest.raises(UserError, match="aoi.geojson: coordinates are not longitude/latitude"):
        geojson_bbox(path)
    path.write_text("{not json")
    with pytest.raises(UserError, match="aoi.geojson: not a readable GeoJSON"):
        geojson_bbox(path)


def eof_bytes(annotation, shift_s: float = 0.0) -> bytes:
    """An AUX_POEORB-style file (the real XML layout) of an annotation's own state vectors."""
    o = annotation.orbit
    osvs = []
    for t, p, v in zip(o.time_s, o.position_m, o.velocity_m_s):
        utc = np.datetime_as_string(o.epoch + np.timedelta64(int(round((t + shift_s) * 1e6)), "us"), unit="us")
        osvs.append(f"<OSV><UTC>UTC={utc}</UTC><X>{p[0]:.6f}</X><Y>{p[1]:.6f}</Y><Z>{p[2]:.6f}</Z>"
                    f"<VX>{v[0]:.6f}</VX><VY>{v[1]:.6f}</VY><VZ>{v[2]:.6f}</VZ></OSV>")
    return ("<?xml version=\"1.0\" ?><Earth_Explorer_File><Data_Block type=\"xml\"><List_of_OSVs>"
            + "".join(osvs) + "</List_of_OSVs></Data_Block></Earth_Explorer_File>").encode()


def test_orbit_file_selection_by_name() -> None:
    import datetime as dt

    from pipeline.sources.orbits import select_orbit_file

    utc = dt.timezone.utc
    start, stop = dt.datetime(2020, 5, 20, 5, 34, 18, tzinfo=utc), dt.datetime(2020, 5, 20, 5, 34, 45, tzinfo=utc)
    keys = ["AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_20200609T121200_V20200519T225942_20200521T005942.EOF",
            "AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_20200610T110000_V20200519T225942_20200521T005942.EOF",
            "AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_20200608T121200_V20200518T225942_20200520T005942.EOF",
            "AUX_POEORB/S1B_OPER_AUX_POEORB_OPOD_20200611T121200_V20200519T225942_20200521T005942.EOF",
            "AUX_RESORB/S1A_OPER_AUX_RESORB_OPOD_20200612T121200_V20200519T225942_20200521T005942.EOF",
            "AUX_POEORB/README.txt"]
    assert select_orbit_file(keys, "S1A", start, stop) == keys[1]  # covering, latest generated
    assert select_orbit_file(keys[2:], "S1A", start, stop) is None
    late = dt.datetime(2020, 5, 21, 0, 59, 30, tzinfo=utc)
    assert select_orbit_file(keys, "S1A", late, late) is None  # within the 60 s margin of the validity's end


def test_precise_orbit_is_fetched_and_used(server: StacServer, built: Path, tmp_path: Path) -> None:
    """The covering file is found by a paged bucket listing, named in the local item, and used by the chain."""
    from pipeline.sar.annotation import parse_annotation
    from pipeline.stages.sources import fetch_sentinel1

    result = read_result(built / "results" / "search" / "result.json")
    item = result[S1_COLLECTION][0]
    safe = next(p for p in server.products.values() if p.name == item["id"] + ".SAFE")
    annotation = parse_annotation(next(safe.glob("annotation/s1?-iw-grd-vv-*.xml")))
    day = item["id"][17:25]
    good = f"AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_{day}T235959_V{day}T000000_{day}T235959.EOF"
    server.orbit_files = {
        good: eof_bytes(annotation),
        f"AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_{day}T000001_V{day}T000000_{day}T000500.EOF": b"decoy",
        f"AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_{day}T000002_V{day}T000500_{day}T001000.EOF": b"decoy",
        f"AUX_POEORB/S1B_OPER_AUX_POEORB_OPOD_{day}T235959_V{day}T000000_{day}T235959.EOF": b"decoy",
    }
    small_grid = aoi_grid_around(45.42, 6.62, 5120)
    settings = {"sentinel1": "cog_window", "window_margin_px": 16, "polarisations": ["VV", "VH"], "sign": None,
                "precise_orbits": True, "orbits_url": f"{server.url}/orbits", "odata": {}}
    out = tmp_path / "item.json"
    fetch_sentinel1(built / "results" / "search" / "result.json", item["id"], tmp_path / "cache", small_grid,
                    built / "results" / "dem" / "dem_wgs84.tif", settings, out)
    local = json.loads(out.read_text())
    assert Path(local["assets"]["orbit"]["href"]).name == good.rsplit("/", 1)[1]
    assert sum(1 for m, p in server.requests if p == "/orbits/") >= 2  # the listing was paged
    res = run([sys.executable, "-m", "pipeline", "terrain-correct", "--safe", str(out), "--dem",
               str(built / "results" / "dem" / "dem_wgs84.tif"), "--out", str(tmp_path / "bs.tif"),
               "--geometry", str(tmp_path / "geo.tif")], REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    reference = built / "results" / "sar" / f"{item['id']}_backscatter.tif"
    with rasterio.open(tmp_path / "bs.tif") as a, rasterio.open(reference) as b:
        assert a.tags()["orbit"] == good.rsplit("/", 1)[1] and b.tags()["orbit"] == "annotation"
        x, y = a.read(), b.read()
        ok = np.isfinite(x) & np.isfinite(y)
        assert ok.mean() > 0.9 and np.abs(x[ok] - y[ok]).max() < 0.01  # the same orbit, so the same image


def test_tiles_of_one_acquisition_are_paired_and_mosaicked(built: Path, tmp_path: Path) -> None:
    """Two overlapping tiles cut from one product pair as one acquisition and mosaic to the product."""
    from rasterio.windows import transform as window_transform

    from pipeline.sources.query import s2_acquisitions
    from pipeline.stages.optical import OpticalParams, prepare_optical

    full_json = sorted((built / "results" / "products" / "sentinel-2-l2a").glob("*.json"))[0]
    full = json.loads(full_json.read_text())
    tiles = []
    for name, (lo, hi) in (("T32TLR", (0.0, 0.6)), ("T32TLQ", (0.4, 1.0))):
        item = json.loads(json.dumps(full))
        item["id"] = full["id"].replace("T32TLR", name)
        for band in ("B02", "B03", "B04", "SCL"):
            src_path = Path(full["assets"][band]["href"])
            with rasterio.open(src_path) as src:
                c0, c1 = int(round(lo * src.width)), int(round(hi * src.width))
                win = Window(c0, 0, c1 - c0, src.height)
                profile = dict(src.profile, width=win.width, transform=window_transform(win, src.transform))
                out = tmp_path / f"{name}_{band}.tif"
                with rasterio.open(out, "w", **profile) as dst:
                    dst.write(src.read(window=win))
            item["assets"][band]["href"] = str(out)
        path = tmp_path / f"{item['id']}.json"
        path.write_text(json.dumps(item))
        tiles.append((item, path))
    # one acquisition: the S1 scene pairs with both tiles at once
    groups = s2_acquisitions([t[0] for t in tiles])
    assert len(groups) == 1 and len(groups[0]) == 2
    s1 = s1_item("s1", full["properties"]["datetime"])
    (triplet,) = pair_scenes([s1], [t[0] for t in tiles], 3)
    assert triplet["s2_items"] == sorted(t[0]["id"] for t in tiles) and triplet["s2"] == triplet["s2_items"][0]
    # the mosaic of the two tiles equals the product they were cut from
    grid = MapGrid(**aoi_grid_dict(built))
    params = OpticalParams.from_dict({"scl_mask_classes": [0, 1, 3, 8, 9, 10, 11], "stretch_percentiles": [1.0, 99.0], "max_scene_masked_fraction": 1.0})
    prepare_optical([t[1] for t in tiles], grid, tmp_path / "mosaic.tif", tmp_path / "mosaic.json", params)
    prepare_optical(full_json, grid, tmp_path / "one.tif", tmp_path / "one.json", params)
    with rasterio.open(tmp_path / "mosaic.tif") as a, rasterio.open(tmp_path / "one.tif") as b:
        x, y = a.read(), b.read()
    np.testing.assert_array_equal(x, y)  # the tiles lie on the product's 10 m grid: no seam
    assert json.loads((tmp_path / "mosaic.json").read_text())["items"] == [t[0]["id"] for t in tiles]


def aoi_grid_dict(work: Path) -> dict:
    with rasterio.open(work / "results" / "dem" / "dem_wgs84.tif") as src:
        t = src.transform
        return {"epsg": src.crs.to_epsg(), "left": t.c, "top": t.f, "resolution": t.a, "width": src.width,
                "height": src.height}


def test_skadi_style_gzip_tiles_read_like_esa_zips(server: StacServer, tmp_path: Path) -> None:
    """The same heights from ESA's .SRTMGL1.hgt.zip and skadi's {lat}/{tile}.hgt.gz, fetched over HTTP."""
    import gzip
    import zipfile

    from pipeline.dem.tiles import read_mosaic
    from pipeline.sources.fetch import fetch_dem_tile

    esa = server.world / "dem" / "N45E006.SRTMGL1.hgt.zip"
    with zipfile.ZipFile(esa) as z:
        raw = z.read("N45E006.hgt")
    skadi = server.world / "skadi" / "N45" / "N45E006.hgt.gz"
    skadi.parent.mkdir(parents=True, exist_ok=True)
    skadi.write_bytes(gzip.compress(raw, mtime=0))
    got = fetch_dem_tile(server.url + "/files/skadi/{lat}/{tile}.hgt.gz", "N45E006",
                         tmp_path / "dem" / "N45E006.hgt.gz", FAST)
    assert got.read_bytes() == skadi.read_bytes()
    a = read_mosaic(tmp_path / "dem", 6.5, 45.3, 6.7, 45.5)
    b = read_mosaic(esa.parent, 6.5, 45.3, 6.7, 45.5)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.fixture(scope="module")
def slices(built: Path, tmp_path_factory) -> list[tuple[dict, Path]]:
    """Two overlapping slices (lines 0-512 and 256-end) cut from the first Sentinel-1 product, as local items."""
    from pipeline.io.cog_window import copy_radar_window

    tmp_path = tmp_path_factory.mktemp("slices")
    full_json = sorted((built / "results" / "products" / "sentinel-1-grd").glob("*.json"))[0]
    full = json.loads(full_json.read_text())
    with rasterio.open(full["assets"]["vv"]["href"]) as src:
        height, width = src.height, src.width
    paths = []
    for suffix, rows in (("A", (0, 512)), ("B", (256, height))):
        item = json.loads(json.dumps(full))
        item["id"] = f"{full['id']}_{suffix}"
        for pol in ("vv", "vh"):
            target = tmp_path / f"{suffix}_{pol}.tiff"
            copy_radar_window(full["assets"][pol]["href"], target, rows, (0, width), block=256)
            item["assets"][pol]["href"] = str(target)
        path = tmp_path / f"{item['id']}.json"
        path.write_text(json.dumps(item))
        paths.append((item, path))
    return paths


def test_slices_of_one_pass_are_paired_and_mosaicked(built: Path, slices, tmp_path: Path) -> None:
    """Two overlapping slices cut from one product pair as one pass; the mosaic of their terrain
    corrections equals the terrain correction of the product."""
    from pipeline.stages.mosaic import mosaic_slices
    from pipeline.sources.query import s1_acquisitions

    paths = slices
    full_json = sorted((built / "results" / "products" / "sentinel-1-grd").glob("*.json"))[0]
    full = json.loads(full_json.read_text())
    groups = s1_acquisitions([p[0] for p in paths])
    assert len(groups) == 1 and [i["id"] for i in groups[0]] == [p[0]["id"] for p in paths]
    (triplet,) = pair_scenes([p[0] for p in paths], [s2_item("s2", full["properties"]["datetime"], 1)], 3)
    assert triplet["s1_items"] == [p[0]["id"] for p in paths] and triplet["s1"] == paths[0][0]["id"]
    dem = built / "results" / "dem" / "dem_wgs84.tif"
    extended = [built / "results" / "dem" / f"dem_{datum}_extended.tif" for datum in ("egm96", "wgs84")]
    grid = json.dumps(aoi_grid_dict(built))
    outputs = {}
    for name, item_path in (("A", paths[0][1]), ("B", paths[1][1]), ("full", full_json)):
        bs, geo = tmp_path / f"{name}_backscatter.tif", tmp_path / f"{name}_geometry.tif"
        flags, dgeo = tmp_path / f"{name}_flags.tif", tmp_path / f"{name}_dgeometry.tif"
        for cmd in (["terrain-correct", "--safe", str(item_path), "--dem", str(dem), "--out", str(bs),
                     "--geometry", str(geo)],
                    ["distortion", "--safe", str(item_path), "--dem-orthometric", str(extended[0]),
                     "--dem-ellipsoidal", str(extended[1]), "--grid", grid, "--out-flags", str(flags),
                     "--out-geometry", str(dgeo)]):
            res = run([sys.executable, "-m", "pipeline", *cmd], REPO)
            assert res.returncode == 0, res.stderr[-2000:]
        outputs[name] = (bs, flags)
    mosaic_bs, mosaic_flags = tmp_path / "mosaic_backscatter.tif", tmp_path / "mosaic_flags.tif"
    mosaic_slices([outputs["A"][0], outputs["B"][0]], [outputs["A"][1], outputs["B"][1]], mosaic_bs, mosaic_flags)
    with rasterio.open(mosaic_bs) as a, rasterio.open(outputs["full"][0]) as b, \
            rasterio.open(outputs["A"][0]) as first:
        x, y, part = a.read(), b.read(), first.read()
        assert a.tags()["slices"].split(",") == ["A", "B"]
    assert np.isnan(part).mean() > 0.2  # slice A alone leaves a good part of the AOI empty
    np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
    np.testing.assert_array_equal(x, y)
    with rasterio.open(mosaic_flags) as a, rasterio.open(outputs["full"][1]) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_workflow_mosaics_the_slices_of_a_pass(built: Path, slices, tmp_path: Path) -> None:
    """A frozen search result with one pass in two slices: the rule graph terrain-corrects both,
    mosaics them, and the pass's patches equal those of the whole product."""
    result = read_result(built / "results" / "search" / "result.json")
    first = sorted(result[S1_COLLECTION], key=lambda i: i["id"])[0]
    result[S1_COLLECTION] = [i for i in result[S1_COLLECTION] if i["id"] != first["id"]] + [s[0] for s in slices]
    work = workflow_copy(tmp_path)
    (work / "frozen.json").write_text(json.dumps(result))
    cfg = small_config()
    cfg["source"] = "stac"
    cfg["search"].update(frozen="frozen.json", sentinel1={"sign": None},
                         sentinel2={"assets": "planetary_computer", "sign": None})
    cfg["download"] = {"dem_url": str(built / "resources" / "simulated" / "dem") + "/{tile}.SRTMGL1.hgt.zip"}
    (work / "slices.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "slices.yaml"], work)
    assert res.returncode == 0, res.stderr[-4000:]
    assert (work / "results" / "sar" / "mosaic" / f"{slices[0][0]['id']}_backscatter.tif").exists()
    a = xr.open_zarr(built / "results" / "dataset" / "patches.zarr", consolidated=False)
    b = xr.open_zarr(work / "results" / "dataset" / "patches.zarr", consolidated=False)
    ia = pd.read_parquet(built / "results" / "dataset" / "index.parquet")
    ib = pd.read_parquet(work / "results" / "dataset" / "index.parquet")
    rows_a = np.flatnonzero(ia["s1"].to_numpy() == first["id"])
    rows_b = np.flatnonzero(ib["s1"].to_numpy() == slices[0][0]["id"])
    assert len(rows_a) == len(rows_b) > 0
    for name in ("sar", "dem", "optical", "valid", "flags"):
        np.testing.assert_array_equal(a[name].values[rows_a], b[name].values[rows_b])
    # the pass's quicklook shows the mosaic (the whole product's image), not its first slice
    triplet = ia["triplet"].to_numpy()[rows_a[0]]
    quicklook = f"results/dataset/quicklooks/{triplet}.png"
    assert (work / quicklook).read_bytes() == (built / quicklook).read_bytes()


def test_unsupported_asset_schemes_are_refused_clearly(tmp_path: Path) -> None:
    from pipeline.io.download import fetch

    with pytest.raises(DownloadError, match="requester-pays.*Planetary Computer.*safe_zip"):
        fetch("s3://sentinel-s1-l1c/GRD/2020/5/20/IW/DV/X/annotation/vv.xml", tmp_path / "vv.xml")
    with pytest.raises(DownloadError, match="unsupported scheme"):
        fetch("ftp://example.org/x.xml", tmp_path / "x.xml")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("layout", ["earth_search", "cdse"])
def test_sentinel2_asset_layouts_give_the_same_optical_image(layout: str, server: StacServer, built: Path,
                                                             tmp_path: Path) -> None:
    """The same product under Earth Search's keys (red, green, blue, scl; no MTD: offsets from
    s2:processing_baseline) or CDSE's (B04_10m ...) decodes to the same image as under the
    Planetary Computer's keys with its MTD."""
    from pipeline.sources.providers import S2_ASSET_KEYS
    from pipeline.stages.optical import OpticalParams, prepare_optical

    item = server.item(S2_COLLECTION, sorted(i["id"] for i in server.items[S2_COLLECTION])[0])
    renamed = json.loads(json.dumps(item))
    keys = S2_ASSET_KEYS[layout]
    renamed["assets"] = {keys[k]: v for k, v in item["assets"].items() if k in keys and keys[k]}
    grid = MapGrid(**aoi_grid_dict(built))
    params = OpticalParams.from_dict({"scl_mask_classes": [0, 1, 3, 8, 9, 10, 11], "stretch_percentiles": [1.0, 99.0], "max_scene_masked_fraction": 1.0})
    outputs = []
    for name, it, lay in (("pc", item, "planetary_computer"), (layout, renamed, layout)):
        local = fetch_sentinel2(it, tmp_path / name, grid, lay, NO_SIGN, FAST)
        assert set(local["assets"]) >= {"B02", "B03", "B04", "SCL"}
        assert ("product-metadata" in local["assets"]) == (lay != "earth_search")
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(local))
        prepare_optical(path, grid, tmp_path / f"{name}.tif", tmp_path / f"{name}_info.json", params)
        with rasterio.open(tmp_path / f"{name}.tif") as src:
            outputs.append(src.read())
    np.testing.assert_array_equal(outputs[0], outputs[1])
