"""Dataset orchestration (files in, files out): optical scenes, DEM normalisation, triplets, shards, store.

Store layout (``<dataset>/patches.zarr``, zarr v3, sharded, dimensions (patch, <array>_channel, y, x),
readable with ``xarray.open_zarr(path, consolidated=False)``):
``sar`` float32 (VV, VH in dB), ``dem`` float32 (normalised by the maximum elevation),
``optical`` uint8 (R, G, B stretched to [0, 255], masked pixels 0), ``valid`` uint8 (optical
validity, 1 valid), ``flags`` uint8 (distortion bits, :mod:`pipeline.sar.distortion`).
``<dataset>/index.parquet`` has one row per patch: id, triplet, scene ids, dates, bounds, CRS,
split and the fractions of shadow, foreshortening and masked optical.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.warp import Resampling, reproject

from ..grid import MapGrid
from ..io.atomic import atomic_path
from ..io.rasters import write_geotiff
from ..optical.metadata import ProductMetadata, metadata_from_properties, parse_product_metadata
from ..optical.reflectance import S2_LAYOUTS_OFFSET_UNRELIABLE, dn_to_reflectance, offset_evidence
from ..sar import distortion as dist
from .optical import scl_mask, stretch_to_uint8
from .tiling import assign_splits, patch_windows

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset cannot be built (the message says why)."""


def _on_grid(path: Path, grid: MapGrid, resampling: Resampling, dtype) -> np.ndarray:
    out = np.zeros((grid.height, grid.width), dtype)
    with rasterio.open(path) as src:
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


def _read_item(item_json: Path) -> tuple[dict, dict[str, str]]:
    try:
        item = json.loads(item_json.read_text())
        return item, {k: item["assets"][k]["href"] for k in ("B04", "B03", "B02", "SCL")}
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise DatasetError(f"{item_json}: not a local Sentinel-2 item with B02, B03, B04 and SCL ({exc})") from exc


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
                    out_json: str | Path, masked_classes: list[int], percentiles: tuple[float, float],
                    max_masked_fraction: float, earth_search_offset: str = "detect") -> dict:
    """Decode, mask (SCL), reproject to the AOI grid and stretch one L2A acquisition; skip it when too masked.

    ``item_jsons`` are the local STAC items that :func:`pipeline.sources.fetch.fetch_sentinel2` writes
    (assets B02, B03, B04, SCL and, when the catalog has it, product-metadata): one, or the MGRS tiles
    of one acquisition, mosaicked in the given order (each pixel from the first tile that has data;
    each tile decoded with its own metadata).

    ``earth_search_offset`` applies to tiles served by Earth Search's ``sentinel-2-l2a`` (layout
    ``earth_search``) from baseline 04.00 on, whose pixels may already carry BOA_ADD_OFFSET: 'detect'
    decides from the pixels (:func:`pipeline.optical.reflectance.offset_evidence`; an inconclusive
    scene stops with a message), 'applied' / 'not_applied' impose the answer.
    """
    paths = [Path(item_jsons)] if isinstance(item_jsons, (str, Path)) else [Path(p) for p in item_jsons]
    if not paths:
        raise DatasetError("no Sentinel-2 item given")
    bands = {b: np.full((grid.height, grid.width), np.nan, np.float32) for b in ("B04", "B03", "B02")}
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
        tile = {band: dn_to_reflectance(dns[band], offsets[band], meta.quantification_value) for band in bands}
        take = (scl == 0) & (tile_scl > 0) & np.isfinite(tile["B04"])
        scl[take] = tile_scl[take]
        for band in bands:
            bands[band][take] = tile[band][take]
    meta, item = metas[0], items[0]
    masked = scl_mask(scl, masked_classes) | ~np.isfinite(bands["B04"])
    fraction = float(masked.mean())
    info = {"id": item["id"], "items": [i["id"] for i in items], "time": str(meta.start_time),
            "masked_fraction": fraction, "cloud_cover_percent": float(np.mean([m.cloud_cover_percent for m in metas])),
            "skipped": False, "reason": "", "offset_evidence": evidences}
    if fraction > max_masked_fraction:
        info.update(skipped=True, reason=f"{100 * fraction:.1f}% of the AOI masked (clouds, snow, no data) "
                                         f"> {100 * max_masked_fraction:.0f}%")
        log.warning("skipping %s: %s", info["id"], info["reason"])
    rgb, limits = stretch_to_uint8(np.stack([bands[b] for b in ("B04", "B03", "B02")]), ~masked, percentiles)
    info["stretch_limits"] = limits
    data = np.concatenate([rgb, (~masked).astype(np.uint8)[None]])
    with atomic_path(out_tif) as tmp:
        write_geotiff(tmp, data, grid, None, {"stretch_percentiles": json.dumps(list(percentiles)),
                                              "s2_offset_evidence": json.dumps(evidences)},
                      ["red", "green", "blue", "valid"])
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return info


def normalise_dem(dem_tif: str | Path, out_tif: str | Path, dem_max_m: float | None) -> float:
    """DEM (orthometric) / maximum elevation; the maximum is the AOI's unless ``dem_max_m`` fixes it."""
    with rasterio.open(dem_tif) as src:
        h = src.read(1)
        t = src.transform
        grid = MapGrid(src.crs.to_epsg(), t.c, t.f, t.a, src.width, src.height)
    top = float(np.nanmax(h)) if dem_max_m is None else float(dem_max_m)
    with atomic_path(out_tif) as tmp:
        write_geotiff(tmp, (h / top).astype(np.float32), grid, np.nan, {"dem_max_m": str(top)})
    return top


def tile_triplet(triplet: dict, sar_tif: Path, flags_tif: Path, optical_tif: Path, optical_json: Path,
                 dem_norm_tif: Path, out_npz: Path, patch_size: int, stride: int, max_masked: float) -> int:
    """Cut one triplet into patches (an .npz shard and its rows of the index). Returns the patch count."""
    info = json.loads(Path(optical_json).read_text())
    with rasterio.open(sar_tif) as src:
        sar = src.read().astype(np.float32)
        skipped_sar = src.tags().get("skipped", "")
        t = src.transform
        grid = MapGrid(src.crs.to_epsg(), t.c, t.f, t.a, src.width, src.height)
    with rasterio.open(flags_tif) as src:
        flags = src.read(1)
    with rasterio.open(optical_tif) as src:
        opt = src.read()
    with rasterio.open(dem_norm_tif) as src:
        dem = src.read(1).astype(np.float32)
    arrays: dict[str, list] = {k: [] for k in ("sar", "dem", "optical", "valid", "flags")}
    rows = []
    if info["skipped"]:
        log.warning("triplet %s: optical scene %s skipped (%s)", triplet["id"], triplet["s2"], info["reason"])
    elif skipped_sar:
        log.warning("triplet %s: Sentinel-1 scene %s skipped (%s)", triplet["id"], triplet["s1"], skipped_sar)
    else:
        for w in patch_windows(grid.height, grid.width, patch_size, stride):
            win = (slice(w.row, w.row + patch_size), slice(w.col, w.col + patch_size))
            s = sar[(slice(None),) + win]
            if not np.isfinite(s).all() or not np.isfinite(dem[win]).all():
                continue  # SAR or DEM no data
            valid = opt[3][win] > 0
            masked = 1.0 - float(valid.mean())
            if masked > max_masked:
                continue
            f = flags[win]
            left = grid.left + w.col * grid.resolution
            top = grid.top - w.row * grid.resolution
            rows.append({
                "triplet": triplet["id"], "s1": triplet["s1"], "s2": triplet["s2"],
                "s1_time": triplet["s1_time"], "s2_time": triplet["s2_time"], "row": w.row, "col": w.col,
                "left": left, "top": top, "right": left + patch_size * grid.resolution,
                "bottom": top - patch_size * grid.resolution, "crs": f"EPSG:{grid.epsg}",
                "shadow_fraction": float(((f & dist.SHADOW) > 0).mean()),
                "foreshortening_fraction": float(((f & (dist.FORESHORTENING | dist.LAYOVER)) > 0).mean()),
                "masked_fraction": masked,
            })
            arrays["sar"].append(s)
            arrays["dem"].append(dem[win][None])
            arrays["optical"].append(opt[(slice(0, 3),) + win])
            arrays["valid"].append(valid.astype(np.uint8)[None])
            arrays["flags"].append(f[None])
    with atomic_path(out_npz) as tmp:
        stacked = {k: np.stack(v) if v else np.zeros((0,)) for k, v in arrays.items()}
        with open(tmp, "wb") as fh:
            np.savez(fh, index=json.dumps(rows), **stacked)
    return len(rows)


def assemble_store(shards: list[Path], out_dir: Path, split_mode: str, fractions: tuple[float, float, float],
                   seed: int, split_block_px: int, patch_size: int) -> pd.DataFrame:
    """One sharded zarr store for all patches, the Parquet index with splits, and the dataset card."""
    import zarr

    loaded = [np.load(p) for p in shards]
    rows = [r for z in loaded for r in json.loads(str(z["index"]))]
    if not rows:
        raise DatasetError("the dataset is empty: no triplet produced a patch (see logs/: skipped scenes, "
                           "no S1/S2 pair within dataset.max_days, or patches dropped for no data or masking)")
    index = pd.DataFrame(rows)
    index.insert(0, "patch", np.arange(len(index)))
    split = assign_splits(index["row"].to_numpy(), index["col"].to_numpy(), fractions, seed, split_mode, split_block_px)
    index["split"] = [SPLITS[s] for s in split]
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "patches.zarr") as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        n = len(index)
        for name, dtype in (("sar", "float32"), ("dem", "float32"), ("optical", "uint8"), ("valid", "uint8"),
                            ("flags", "uint8")):
            data = np.concatenate([z[name] for z in loaded if z[name].ndim == 4])
            arr = root.create_array(name, shape=data.shape, dtype=dtype, chunks=(1,) + data.shape[1:],
                                    shards=(min(64, n),) + data.shape[1:],
                                    dimension_names=("patch", f"{name}_channel", "y", "x"))
            arr[:] = data
        root.attrs.update({"channels": {"sar": ["VV_dB", "VH_dB"], "dem": ["elevation_over_max"],
                                        "optical": ["red", "green", "blue"], "valid": ["optical_valid"],
                                        "flags": ["distortion_bits"]},
                           "patch_size": patch_size})
    with atomic_path(out_dir / "index.parquet") as tmp:
        index.to_parquet(tmp, index=False)
    return index


def dataset_card(index: pd.DataFrame, triplets: list[dict], optical_infos: list[dict], dem_max_m: float,
                 skipped_sar: dict[str, str] | None = None) -> str:
    """The dataset card (Markdown)."""
    lines = ["# Dataset card", "", f"{len(index)} patches of 256 x 256 at 10 m from {index['triplet'].nunique()} "
             f"SAR-DEM-optical triplets; DEM normalised by {dem_max_m:.1f} m.", "", "## Splits", "",
             "| split | patches | shadow | foreshortening | masked optical |", "|---|---|---|---|---|"]
    for name in SPLITS:
        part = index[index["split"] == name]
        lines.append(f"| {name} | {len(part)} | {part['shadow_fraction'].mean():.3f} | "
                     f"{part['foreshortening_fraction'].mean():.3f} | {part['masked_fraction'].mean():.3f} |")
    lines += ["", "## Triplets", "", "| triplet | Sentinel-1 | Sentinel-2 | days apart | patches |", "|---|---|---|---|---|"]
    for t in triplets:
        lines.append(f"| {t['id']} | {t['s1']} | {t['s2']} | {t['days_apart']} | {(index['triplet'] == t['id']).sum()} |")
    skipped = [o for o in optical_infos if o["skipped"]]
    if skipped:
        lines += ["", "## Skipped optical scenes", ""] + [f"- {o['id']}: {o['reason']}" for o in skipped]
    if skipped_sar:
        lines += ["", "## Skipped Sentinel-1 scenes", ""] + [f"- {k}: {v}" for k, v in skipped_sar.items()]
    return "\n".join(lines) + "\n"
