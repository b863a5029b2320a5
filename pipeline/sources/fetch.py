"""Fetch the selected products into the cache and describe each one by a local STAC item.

One cache directory, keyed by product id, is shared by every run
(``<cache>/sentinel-1-grd/<id>/``, ``<cache>/sentinel-2-l2a/<id>/``, ``<cache>/dem/``):
a file already there that passes the checks is not fetched again. Hrefs are
http(s) URLs (real catalogs, the test server) or local paths (the simulated
world's static catalog): the same code fetches both.

- Sentinel-1 GRD, ``cog_window`` mode: the manifest and XML assets whole (MD5 from
  the manifest where it lists the file), the measurement COGs only over the AOI's
  radar window (:func:`pipeline.sar.product.aoi_radar_window`) into sparse
  full-size GeoTIFFs, so line/pixel stay the annotation's.
- Sentinel-1 GRD, ``safe_zip`` mode: the whole SAFE zip from CDSE OData
  (:mod:`pipeline.sources.odata`).
- Sentinel-2 L2A: B02, B03, B04 and SCL cropped to the AOI (plus two pixels), and the
  product metadata XML when the catalog has it.
- SRTM 1" tiles from a URL template (ESA's mirror by default).

The local item (written atomically) uses the Planetary Computer's asset keys with
absolute local hrefs; readers (:func:`pipeline.sar.safe.product_files`,
:func:`pipeline.stages.optical.prepare_optical`) take it like any STAC item.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import UserError
from pipeline.core.grid import MapGrid
from pipeline.io.atomic import write_json_atomic
from pipeline.io.cog_window import copy_map_window, copy_radar_window
from pipeline.io.checksums import file_md5, matches_record, write_record
from pipeline.io.download import DownloadPolicy, fetch
from pipeline.sar.safe import ManifestEntry, manifest_entries
from pipeline.sources.providers import S2_BANDS, s2_asset_keys

log = logging.getLogger(__name__)

S1_XML_KINDS = {"schema-product": "annotation", "schema-calibration": "annotation/calibration",
                "schema-noise": "annotation/calibration"}


def _href(item: dict[str, Any], key: str) -> str:
    try:
        return item["assets"][key]["href"]
    except KeyError:
        raise UserError(f"item {item['id']} has no asset {key!r} (assets: {', '.join(sorted(item['assets']))})") from None


MD5_MULTIHASH = "d510"  # multihash prefix of an MD5: function code 0xd5, digest length 0x10


def stated_file(item: dict[str, Any], key: str) -> tuple[int | None, str | None]:
    """The size (bytes) and MD5 (hex) a catalog states for an asset (STAC file extension), where it does.

    ``file:checksum`` is a multihash; an MD5 (prefix ``d510``) is checked, other functions are logged
    and the file is then checked by its size.
    """
    asset = item["assets"][key]
    size = asset.get("file:size")
    checksum = str(asset.get("file:checksum") or "").lower()
    md5 = checksum[len(MD5_MULTIHASH):] if checksum.startswith(MD5_MULTIHASH) and len(checksum) == 36 else None
    if checksum and md5 is None:
        log.info("item %s asset %s: checksum %s... is not an MD5 multihash; checked by size", item["id"], key,
                 checksum[:8])
    return (int(size) if size is not None else None), md5


def _name(href: str) -> str:
    return href.split("?")[0].rstrip("/").rsplit("/", 1)[-1]


def window_source(href: str, size: int | None, md5: str | None, **more: str | None) -> dict[str, Any]:
    """What a cached window is cut from (its cache record keeps it): the source file's name, and its
    size and MD5 where the manifest or the catalog states them, plus ``more`` identifying fields."""
    return {"file": _name(href), "size": size, "md5": md5, **more}


def product_annotation_href(href: str) -> str:
    """The product annotation's href, also where a catalog points ``schema-product-*`` at the RFI annotation.

    Some Planetary Computer items do (a known catalog bug): ``.../annotation/rfi/rfi-<name>.xml``
    stands next to the product annotation ``.../annotation/<name>.xml``.
    """
    base, query = (href.split("?", 1) + [""])[:2]
    if "/annotation/rfi/" in base:
        head, name = base.split("/annotation/rfi/", 1)
        base = f"{head}/annotation/{name.removeprefix('rfi-')}"
        log.warning("schema-product asset points at the RFI annotation; using %s", base)
    return f"{base}?{query}" if query else base


def local_item(item: dict[str, Any], assets: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    """A copy of a catalog item with local assets (absolute paths), no links, and extra properties."""
    local = copy.deepcopy(item)
    local["assets"] = assets
    local["links"] = []
    local["properties"].update(extra)
    return local


def write_local_item(item: dict[str, Any], path: str | Path) -> Path:
    return write_json_atomic(path, item)


def fetch_sentinel1_window(item: dict[str, Any], cache: Path, grid: MapGrid, height_range_m: tuple[float, float],
                           polarisations: list[str], sign: Callable[[str], str], margin_px: int = 16,
                           policy: DownloadPolicy = DownloadPolicy()) -> dict[str, Any]:
    """Fetch the XML assets and the AOI's radar window of the measurements; return the local item."""
    from pipeline.sar.annotation import parse_annotation
    from pipeline.sar.product import RadarGeometry, aoi_radar_window

    pols = [p.upper() for p in polarisations]
    have = {p.upper() for p in item["properties"].get("sar:polarizations", [])}
    if not set(pols) <= have:
        raise UserError(f"item {item['id']} has polarisations {sorted(have)}, the configuration asks for {pols}")
    root = cache / "sentinel-1-grd" / item["id"]
    manifest_href = _href(item, "safe-manifest")
    size, md5 = stated_file(item, "safe-manifest")
    manifest = fetch(sign(manifest_href), root / "manifest.safe", policy=policy, expected_size=size, expected_md5=md5)
    entries: dict[str, ManifestEntry] = manifest_entries(manifest)
    assets: dict[str, dict[str, Any]] = {"safe-manifest": {"href": str(manifest.resolve()), "roles": ["metadata"]}}
    window = None
    for pol in pols:
        p = pol.lower()
        for kind, folder in S1_XML_KINDS.items():
            listed = _href(item, f"{kind}-{p}")
            href = product_annotation_href(listed) if kind == "schema-product" else listed
            name = _name(href)
            entry = entries.get(name)  # the manifest's MD5; else the catalog's size and checksum where stated
            if entry:
                size, md5 = entry.size, entry.md5
            else:  # (not for an RFI annotation's checksum when the product annotation replaces it)
                size, md5 = stated_file(item, f"{kind}-{p}") if href == listed else (None, None)
            target = fetch(sign(href), root / folder / name, policy=policy, expected_md5=md5, expected_size=size)
            assets[f"{kind}-{p}"] = {"href": str(target.resolve()), "roles": ["metadata"]}
        if window is None:  # the polarisations share one image geometry
            with open(assets[f"schema-product-{p}"]["href"], "rb") as fh:
                annotation = parse_annotation(fh, f"{item['id']} {pol} annotation")
            window = aoi_radar_window(RadarGeometry(annotation), grid, height_range_m, margin_px)
        (r0, r1), (c0, c1) = window
        href = _href(item, p)
        stem = _name(href).rsplit(".", 1)[0]
        target = root / "measurement" / f"{stem}_l{r0}-{r1}_p{c0}-{c1}.tiff"
        entry = entries.get(_name(href))  # the manifest's size and MD5 of the measurement: the source's identity
        source = window_source(href, *((entry.size, entry.md5) if entry else stated_file(item, p)))
        if not matches_record(target, source):
            copy_radar_window(sign(href), target, (r0, r1), (c0, c1))
            write_record(target, source)
        assets[p] = {"href": str(target.resolve()), "roles": ["data"], "type": "image/tiff; application=geotiff"}
    props = {"sar:polarizations": pols, "sardem:radar_window": [list(window[0]), list(window[1])]}
    return local_item(item, assets, props)


def _grid_tag(grid: MapGrid) -> str:
    text = json.dumps([grid.epsg, grid.left, grid.top, grid.resolution, grid.width, grid.height])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def fetch_sentinel2(item: dict[str, Any], cache: Path, grid: MapGrid, asset_layout: str,
                    sign: Callable[[str], str], policy: DownloadPolicy = DownloadPolicy()) -> dict[str, Any]:
    """Fetch B02, B03, B04, SCL over the AOI (and the product and tile metadata when offered); return the local item."""
    keys = s2_asset_keys(asset_layout)
    root = cache / "sentinel-2-l2a" / item["id"]
    tag = _grid_tag(grid)
    assets: dict[str, dict[str, Any]] = {}
    meta_key = keys["product-metadata"]
    product_md5 = None  # the product metadata (generation time, cloud statistics) identifies the product's version
    if meta_key and meta_key in item["assets"]:
        size, md5 = stated_file(item, meta_key)
        target = fetch(sign(_href(item, meta_key)), root / "MTD_MSIL2A.xml", policy=policy, expected_size=size,
                       expected_md5=md5)
        assets["product-metadata"] = {"href": str(target.resolve()), "roles": ["metadata"]}
        product_md5 = file_md5(target)
    elif "s2:processing_baseline" not in item["properties"]:
        raise UserError(f"item {item['id']}: neither product metadata nor s2:processing_baseline; the reflectance "
                        "offset cannot be decided")
    for band in S2_BANDS:
        href = _href(item, str(keys[band]))
        target = root / f"{band}_{tag}.tif"
        source = window_source(href, *stated_file(item, str(keys[band])), product_metadata_md5=product_md5)
        if not matches_record(target, source):
            copy_map_window(sign(href), target, grid.bounds, f"EPSG:{grid.epsg}")
            write_record(target, source)
        assets[band] = {"href": str(target.resolve()), "roles": ["data"], "type": "image/tiff; application=geotiff"}
    tile_key = keys.get("granule-metadata")
    if tile_key and tile_key in item["assets"]:  # MTD_TL: the sun angles (registration QA)
        size, md5 = stated_file(item, tile_key)
        target = fetch(sign(_href(item, tile_key)), root / "MTD_TL.xml", policy=policy, expected_size=size,
                       expected_md5=md5)
        assets["granule-metadata"] = {"href": str(target.resolve()), "roles": ["metadata"]}
    return local_item(item, assets, {"sardem:aoi_grid": tag, "sardem:s2_asset_layout": asset_layout})


def dem_tile_url(template: str, tile: str) -> str:
    """A tile's URL from a template with ``{tile}`` (``N45E006``) and optionally ``{lat}`` (``N45``)."""
    return template.format(tile=tile, lat=tile[:3])


def fetch_dem_tile(template: str, tile: str, target: str | Path, policy: DownloadPolicy = DownloadPolicy()) -> Path:
    """Fetch one SRTM tile (ESA's ``.SRTMGL1.hgt.zip``, skadi's ``.hgt.gz`` or a plain ``.hgt``)."""
    return fetch(dem_tile_url(template, tile), target, policy=policy)
