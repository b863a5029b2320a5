"""A static STAC catalog of local Sentinel-1 GRD and Sentinel-2 L2A products.

Collection ids, asset keys and properties follow the Microsoft Planetary
Computer's ``sentinel-1-grd`` and ``sentinel-2-l2a`` collections (see
shared/reference/sources.md), so that search and download code treats
real and simulated items alike. Asset hrefs are relative to the item files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac

from pipeline.io.checksums import file_md5
from pipeline.sar.annotation import ProductAnnotation

S1_COLLECTION = "sentinel-1-grd"
S2_COLLECTION = "sentinel-2-l2a"


def _datetime(t: np.datetime64) -> dt.datetime:
    return np.datetime64(t, "us").astype(dt.datetime).replace(tzinfo=dt.timezone.utc)


def _polygon(lonlat: list[tuple[float, float]]) -> dict:
    ring = [list(p) for p in lonlat] + [list(lonlat[0])]
    return {"type": "Polygon", "coordinates": [ring]}


def _bbox(lonlat: list[tuple[float, float]]) -> list[float]:
    lon = [p[0] for p in lonlat]
    lat = [p[1] for p in lonlat]
    return [min(lon), min(lat), max(lon), max(lat)]


def sentinel1_item(safe: Path, annotation: ProductAnnotation, relative_orbit: int, files: dict[str, dict[str, Path]]) -> pystac.Item:
    """A ``sentinel-1-grd`` item; ``files[pol]`` maps 'measurement', 'product', 'calibration', 'noise' to paths."""
    g = annotation.geolocation_grid
    corners = [(lon, lat) for lat, lon in g.corners()]
    h = annotation.header
    start = _datetime(h.start_time)
    item = pystac.Item(
        id=safe.name.removesuffix(".SAFE"),
        geometry=_polygon(corners),
        bbox=_bbox(corners),
        datetime=start,
        properties={
            "start_datetime": start.isoformat().replace("+00:00", "Z"),
            "end_datetime": _datetime(h.stop_time).isoformat().replace("+00:00", "Z"),
            "platform": f"SENTINEL-1{h.mission_id[-1]}",
            "constellation": "Sentinel-1",
            "sar:instrument_mode": "IW",
            "sar:frequency_band": "C",
            "sar:center_frequency": 5.405,
            "sar:polarizations": sorted(files, key=lambda p: p != "VV"),
            "sar:product_type": "GRD",
            "sar:resolution_range": 20,
            "sar:resolution_azimuth": 22,
            "sar:pixel_spacing_range": 10,
            "sar:pixel_spacing_azimuth": 10,
            "sar:looks_range": 5,
            "sar:looks_azimuth": 1,
            "sat:orbit_state": annotation.pass_direction.lower(),
            "sat:relative_orbit": relative_orbit,
            "sat:absolute_orbit": h.absolute_orbit,
            "s1:datatake_id": str(h.mission_data_take_id),
            "s1:instrument_configuration_ID": "1",
            "s1:processing_level": "1",
            "s1:product_timeliness": "Fast-24h",
            "s1:resolution": "high",
        },
    )
    item.add_asset("safe-manifest", pystac.Asset(str(safe / "manifest.safe"), media_type="application/xml",
                                                 roles=["metadata"], title="Manifest File"))
    for pol, paths in files.items():
        p = pol.lower()
        item.add_asset(p, pystac.Asset(str(paths["measurement"]), media_type=pystac.MediaType.COG,
                                       roles=["data"], title=f"{pol}: {pol[0]} transmit, {pol[1]} receive"))
        item.add_asset(f"schema-product-{p}", pystac.Asset(str(paths["product"]), media_type="application/xml",
                                                           roles=["metadata"], title=f"{pol} Product Schema"))
        item.add_asset(f"schema-calibration-{p}", pystac.Asset(str(paths["calibration"]), media_type="application/xml",
                                                               roles=["metadata"], title=f"{pol} Calibration Schema"))
        item.add_asset(f"schema-noise-{p}", pystac.Asset(str(paths["noise"]), media_type="application/xml",
                                                         roles=["metadata"], title=f"{pol} Noise Schema"))
    return item


def sentinel2_item(
    safe: Path, sensing_time: np.datetime64, footprint_lonlat: list[tuple[float, float]], epsg: int, tile: str,
    relative_orbit: int, cloud_percent: float, snow_percent: float, processing_baseline: str,
    bands: dict[str, Path], product_metadata: Path, tile_metadata: Path, spacecraft: str,
) -> pystac.Item:
    """A ``sentinel-2-l2a`` item with Planetary Computer asset keys (B02, B03, B04, SCL, product-metadata)."""
    item = pystac.Item(
        id=safe.name.removesuffix(".SAFE"),
        geometry=_polygon(footprint_lonlat),
        bbox=_bbox(footprint_lonlat),
        datetime=_datetime(sensing_time),
        properties={
            "platform": spacecraft,
            "constellation": "Sentinel 2",
            "instruments": ["msi"],
            "eo:cloud_cover": round(cloud_percent, 6),
            "s2:snow_ice_percentage": round(snow_percent, 6),
            "s2:processing_baseline": processing_baseline,
            "s2:mgrs_tile": tile,
            "s2:product_type": "S2MSI2A",
            "sat:orbit_state": "descending",
            "sat:relative_orbit": relative_orbit,
            "proj:epsg": epsg,
        },
    )
    gsd = {"B02": 10, "B03": 10, "B04": 10, "SCL": 20}
    for key, path in bands.items():
        roles = ["data"]
        item.add_asset(key, pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=roles,
                                         extra_fields={"gsd": gsd[key]}))
    item.add_asset("product-metadata", pystac.Asset(str(product_metadata), media_type="application/xml",
                                                    roles=["metadata"]))
    item.add_asset("granule-metadata", pystac.Asset(str(tile_metadata), media_type="application/xml",
                                                    roles=["metadata"]))
    return item


FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"


def file_info(path: Path) -> dict:
    """The STAC file extension's ``file:size`` (bytes) and ``file:checksum`` (an MD5 multihash: 0xd5, 16 bytes)."""
    return {"file:size": path.stat().st_size, "file:checksum": "d510" + file_md5(path)}


def write_catalog(root: Path, s1_items: list[pystac.Item], s2_items: list[pystac.Item], title: str) -> Path:
    """Write ``root/catalog.json`` with one collection per mission; hrefs made relative."""
    catalog = pystac.Catalog(id="sardem-simulated", description=title, title=title)
    for cid, items, desc in ((S1_COLLECTION, s1_items, "Sentinel-1 IW GRD (simulated)"),
                             (S2_COLLECTION, s2_items, "Sentinel-2 L2A (simulated)")):
        if not items:
            continue
        extent = pystac.Extent(
            pystac.SpatialExtent([[min(i.bbox[0] for i in items), min(i.bbox[1] for i in items),
                                   max(i.bbox[2] for i in items), max(i.bbox[3] for i in items)]]),
            pystac.TemporalExtent([[min(i.datetime for i in items), max(i.datetime for i in items)]]),
        )
        collection = pystac.Collection(id=cid, description=desc, extent=extent, license="proprietary")
        collection.add_items(items)
        catalog.add_child(collection)
    catalog.normalize_hrefs(str(root))
    for item in catalog.get_items(recursive=True):
        for asset in item.assets.values():
            asset.href = str(Path(asset.href).resolve())
            if "metadata" in (asset.roles or []):  # whole files: their size and checksum, as CDSE's catalog states
                asset.extra_fields.update(file_info(Path(asset.href)))
        item.stac_extensions = sorted(set(item.stac_extensions) | {FILE_EXTENSION})
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"
