"""Stage ``optical``: decode, mask (SCL), reproject to the AOI grid and stretch one Sentinel-2 L2A acquisition."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from pipeline.config import validate
from pipeline.core.grid import MapGrid
from pipeline.errors import DatasetError
from pipeline.io.atomic import atomic_path
from pipeline.io.checksums import verify_cached
from pipeline.io.rasters import open_raster, write_geotiff
from pipeline.optical.masking import fringe_statistic, refine_mask, scl_mask, stretch_to_uint8
from pipeline.optical.metadata import (
    ProductMetadata,
    metadata_from_properties,
    parse_product_metadata,
    parse_tile_metadata,
)
from pipeline.optical.reflectance import S2_LAYOUTS_OFFSET_UNRELIABLE, dn_to_reflectance, offset_evidence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpticalParams:
    """What changes the optical stage's result (the config's ``dataset`` keys of the same names)."""

    scl_mask_classes: tuple[int, ...]
    stretch_percentiles: tuple[float, float]
    max_scene_masked_fraction: float
    earth_search_offset: str  # detect, applied or not_applied
    mask_dilation_px: int
    min_valid_island_px: int

    KEYS = ("scl_mask_classes", "stretch_percentiles", "max_scene_masked_fraction", "earth_search_offset",
            "mask_dilation_px", "min_valid_island_px")

    @classmethod
    def from_dict(cls, dataset: dict[str, Any]) -> OpticalParams:
        """From (part of) the config's ``dataset`` section, completed with the schema's defaults."""
        d = validate({"dataset": {k: v for k, v in dataset.items() if k in cls.KEYS}})["dataset"]
        return cls(tuple(int(c) for c in d["scl_mask_classes"]), tuple(d["stretch_percentiles"]),
                   float(d["max_scene_masked_fraction"]), d["earth_search_offset"], int(d["mask_dilation_px"]),
                   int(d["min_valid_island_px"]))


def _on_grid(path: Path, grid: MapGrid, resampling: Resampling, dtype) -> np.ndarray:
    out = np.zeros((grid.height, grid.width), dtype)
    with open_raster(path, "Sentinel-2 band") as src:
        reproject(rasterio.band(src, 1), out, dst_transform=grid.transform, dst_crs=f"EPSG:{grid.epsg}",
                  resampling=resampling, src_nodata=0, dst_nodata=0)
    return out


def _optical_metadata(item: dict, label: str) -> ProductMetadata:
    if "product-metadata" in item["assets"]:
        return parse_product_metadata(item["assets"]["product-metadata"]["href"])
    try:
        return metadata_from_properties(item["id"], item["properties"])
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{label}: no product metadata asset and incomplete properties ({exc})") from exc


def sun_angles(item: dict, label: str) -> tuple[float, float] | None:
    """(zenith, azimuth) of the sun (deg) from the tile metadata (MTD_TL) or the item's properties; None if absent."""
    if "granule-metadata" in item["assets"]:
        tile = parse_tile_metadata(item["assets"]["granule-metadata"]["href"], label)
        return tile.sun_zenith_deg, tile.sun_azimuth_deg
    props = item["properties"]
    if "s2:mean_solar_zenith" in props and "s2:mean_solar_azimuth" in props:  # Planetary Computer
        return float(props["s2:mean_solar_zenith"]), float(props["s2:mean_solar_azimuth"])
    if "view:sun_elevation" in props and "view:sun_azimuth" in props:  # Earth Search
        return 90.0 - float(props["view:sun_elevation"]), float(props["view:sun_azimuth"])
    return None


def _read_item(item_json: Path) -> tuple[dict, dict[str, str]]:
    try:
        item = json.loads(item_json.read_text())
        hrefs = {k: item["assets"][k]["href"] for k in ("B04", "B03", "B02", "SCL")}
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise DatasetError(f"{item_json}: not a local Sentinel-2 item with B02, B03, B04 and SCL ({exc})") from exc
    verify_cached([h for h in hrefs.values() if "://" not in h])
    return item, hrefs


def _band_offsets(item: dict, meta: ProductMetadata, dns: dict[str, np.ndarray], scl: np.ndarray, mode: str,
                  label: str) -> tuple[dict[str, float], dict]:
    """The BOA_ADD_OFFSET to decode each band with, and the evidence behind it (logged)."""
    offsets = {band: meta.offset(band) for band in dns}
    layout = item["properties"].get("sardem:s2_asset_layout")
    record = {"item": item["id"], "layout": layout, "decision": "metadata", "offsets": offsets}
    if layout not in S2_LAYOUTS_OFFSET_UNRELIABLE or not any(offsets.values()):
        return offsets, record
    flag = item["properties"].get("earthsearch:boa_offset_applied")
    if mode == "detect":
        evidence = offset_evidence(list(dns.values()), scl)
        record.update(evidence.as_dict(), catalog_flag=flag)
        log.info("%s: Earth Search pixels, baseline %s: %d dark values (SCL water, dark area), median DN %.0f, "
                 "%.0f%% below 1000 -> %s (the catalog's earthsearch:boa_offset_applied says %s, not used)",
                 item["id"], meta.processing_baseline, evidence.dark_pixels, evidence.median_dn,
                 100 * evidence.fraction_below_1000, evidence.decision, flag)
        if evidence.decision == "inconclusive":
            raise DatasetError(
                f"{label} ({item['id']}): cannot tell from the pixels whether Earth Search already applied "
                f"BOA_ADD_OFFSET ({evidence.dark_pixels} dark water/shadow values, median DN {evidence.median_dn:.0f}; "
                "a decision needs water or shadow under clear sky). Options: search Sentinel-2 in a catalog that "
                "serves ESA's DNs with their metadata (search.sentinel2.assets: earth_search_c1 with collection "
                "sentinel-2-c1-l2a, planetary_computer or cdse), or set dataset.earth_search_offset to "
                "'applied' or 'not_applied' if you know the answer for these scenes")
        applied = evidence.decision == "offset_applied"
    else:
        applied = mode == "applied"
        record.update(decision=f"configured: {mode}", catalog_flag=flag)
        log.info("%s: Earth Search pixels, offset %s by configuration (dataset.earth_search_offset)", item["id"], mode)
    if applied:
        offsets = {band: 0.0 for band in dns}
    record["offsets"] = offsets
    return offsets, record


def prepare_optical(item_jsons: str | Path | list[str | Path], grid: MapGrid, out_tif: str | Path,
                    out_json: str | Path, params: OpticalParams | None = None) -> dict:
    """Decode, mask (SCL), reproject to the AOI grid and stretch one L2A acquisition; skip it when too masked.

    ``item_jsons`` are the local STAC items that :func:`pipeline.sources.fetch.fetch_sentinel2` writes
    (assets B02, B03, B04, SCL and, when the catalog has it, product-metadata): one, or the MGRS tiles
    of one acquisition, mosaicked in the given order (each pixel from the first tile that has data;
    each tile decoded with its own metadata).

    ``params.earth_search_offset`` applies to tiles served by Earth Search's ``sentinel-2-l2a`` (layout
    ``earth_search``) from baseline 04.00 on, whose pixels may already carry BOA_ADD_OFFSET: 'detect'
    decides from the pixels (:func:`pipeline.optical.reflectance.offset_evidence`; an inconclusive
    scene stops with a message), 'applied' / 'not_applied' impose the answer.
    """
    params = params or OpticalParams.from_dict({})
    masked_classes, percentiles = params.scl_mask_classes, params.stretch_percentiles
    max_masked_fraction, earth_search_offset = params.max_scene_masked_fraction, params.earth_search_offset
    paths = [Path(item_jsons)] if isinstance(item_jsons, (str, Path)) else [Path(p) for p in item_jsons]
    if not paths:
        raise DatasetError("no Sentinel-2 item given")
    reflectance = np.full((3, grid.height, grid.width), np.nan, np.float32)  # R, G, B
    bands = dict(zip(("B04", "B03", "B02"), reflectance))  # views: each band written in place
    scl = np.zeros((grid.height, grid.width), np.uint8)
    items, metas, evidences = [], [], []
    for path in paths:
        item, hrefs = _read_item(path)
        meta = _optical_metadata(item, str(path))
        items.append(item)
        metas.append(meta)
        tile_scl = _on_grid(hrefs["SCL"], grid, Resampling.nearest, np.uint8)
        dns = {band: np.round(_on_grid(hrefs[band], grid, Resampling.bilinear, np.float32)).astype(np.uint16)
               for band in bands}
        offsets, evidence = _band_offsets(item, meta, dns, tile_scl, earth_search_offset, str(path))
        evidences.append(evidence)
        take = (scl == 0) & (tile_scl > 0) & np.isfinite(
            dn_to_reflectance(dns["B04"], offsets["B04"], meta.quantification_value))
        scl[take] = tile_scl[take]
        for band in bands:  # one band's reflectance at a time
            bands[band][take] = dn_to_reflectance(dns.pop(band), offsets[band], meta.quantification_value)[take]
    meta, item = metas[0], items[0]
    scl_masked = scl_mask(scl, masked_classes) | ~np.isfinite(bands["B04"])
    masked = refine_mask(scl_masked, params.mask_dilation_px, params.min_valid_island_px)
    fraction = float(masked.mean())
    info = {"id": item["id"], "items": [i["id"] for i in items], "time": str(meta.start_time),
            "masked_fraction": fraction, "cloud_cover_percent": float(np.mean([m.cloud_cover_percent for m in metas])),
            "skipped": False, "reason": "", "offset_evidence": evidences}
    sun = sun_angles(item, str(paths[0]))
    info["sun_zenith_deg"], info["sun_azimuth_deg"] = sun if sun else (None, None)
    if fraction > max_masked_fraction:
        info.update(skipped=True, reason=f"{100 * fraction:.1f}% of the AOI masked (clouds, snow, no data) "
                                         f"> {100 * max_masked_fraction:.0f}%")
        log.warning("skipping %s: %s", info["id"], info["reason"])
    rgb, limits = stretch_to_uint8(reflectance, ~masked, percentiles)
    info["stretch_limits"] = limits
    # bright fringes next to the mask: mean reflectance within 8 px of it vs further away (SCL mask, final mask)
    fringe = {"scl_mask": fringe_statistic(reflectance, ~scl_masked), "final_mask": fringe_statistic(reflectance, ~masked)}
    info["fringe_reflectance_near_far"] = {k: [round(v, 5) for v in pair] for k, pair in fringe.items()}
    info["mask"] = {"scl_fraction": float(scl_masked.mean()), "dilation_px": params.mask_dilation_px,
                    "min_valid_island_px": params.min_valid_island_px, "final_fraction": fraction}
    data = np.concatenate([rgb, (~masked).astype(np.uint8)[None]])
    with atomic_path(out_tif) as tmp:
        write_geotiff(tmp, data, grid, None, {"stretch_percentiles": json.dumps(list(percentiles)),
                                              "s2_offset_evidence": json.dumps(evidences)},
                      ["red", "green", "blue", "valid"])
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    log.info("%s: %d tile(s), %.1f%% of the AOI masked (SCL classes %s: %.1f%%, grown by %d px, islands < %d px), "
             "stretch limits %s -> %s", info["id"], len(paths), 100 * fraction, list(masked_classes),
             100 * float(scl_masked.mean()), params.mask_dilation_px, params.min_valid_island_px, limits, out_tif)
    log.info("reflectance near / far from the mask (8 px): SCL mask %s, final mask %s",
             info["fringe_reflectance_near_far"]["scl_mask"], info["fringe_reflectance_near_far"]["final_mask"])
    return info
