"""Search and fetch stages (files in, files out): what the workflow's first rules run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import rasterio

from ..cli_errors import UserError
from ..grid import MapGrid
from ..io.rasters import band_range
from .fetch import fetch_dem_tile, fetch_sentinel1_window, write_local_item
from .providers import href_signer
from .query import S1_COLLECTION, S2_COLLECTION, SceneQuery, pair_scenes
from .search import item_by_id, read_result, run_search, write_result

log = logging.getLogger(__name__)


def search(query: dict[str, Any], endpoints: dict[str, str], source: str, out: str | Path,
           collections: dict[str, str] | None = None) -> Path:
    """Search both collections and freeze the result into ``out``."""
    result = run_search(SceneQuery.from_dict(query), endpoints, source, collections)
    for collection in (S1_COLLECTION, S2_COLLECTION):
        if not result[collection]:
            log.warning("the search found no %s scene", collection)
    return write_result(result, out)


def triplets(search_result: str | Path, max_days: float) -> list[dict]:
    """The Sentinel-1 / Sentinel-2 pairs of a frozen search result."""
    result = read_result(search_result)
    return pair_scenes(result[S1_COLLECTION], result[S2_COLLECTION], max_days)


def _height_range_m(dem_tif: str | Path) -> tuple[float, float]:
    with rasterio.open(dem_tif) as src:
        lo, hi = band_range(src)
    if lo > hi:
        raise UserError(f"{dem_tif}: no valid height")
    return lo, hi


def fetch_sentinel1(search_result: str | Path, scene: str, cache: str | Path, grid: MapGrid, dem_tif: str | Path,
                    settings: dict[str, Any], out: str | Path) -> Path:
    """Fetch one Sentinel-1 product (``settings``: the config's download section plus polarisations, sign)."""
    item = item_by_id(read_result(search_result), S1_COLLECTION, scene)
    cache = Path(cache)
    if settings["sentinel1"] == "safe_zip":
        from .odata import ODataEndpoints, fetch_safe_zip, zip_item

        local = zip_item(item, fetch_safe_zip(scene, cache, ODataEndpoints(**settings["odata"])))
    else:
        local = fetch_sentinel1_window(item, cache, grid, _height_range_m(dem_tif), settings["polarisations"],
                                       href_signer(settings["sign"]), settings["window_margin_px"])
    if settings.get("precise_orbits"):
        from .orbits import fetch_precise_orbit
        from .query import parse_utc

        props = item["properties"]
        start = parse_utc(props.get("start_datetime") or props["datetime"])
        stop = parse_utc(props.get("end_datetime") or props["datetime"])
        eof = fetch_precise_orbit(settings["orbits_url"], scene[:3], start, stop, cache)
        local["assets"]["orbit"] = {"href": str(eof.resolve()), "roles": ["metadata"], "title": "AUX_POEORB"}
    return write_local_item(local, out)


def fetch_sentinel2(search_result: str | Path, scene: str, cache: str | Path, grid: MapGrid,
                    settings: dict[str, Any], out: str | Path) -> Path:
    """Fetch one Sentinel-2 product over the AOI (``settings``: assets layout, sign)."""
    from .fetch import fetch_sentinel2 as fetch_s2

    item = item_by_id(read_result(search_result), S2_COLLECTION, scene)
    local = fetch_s2(item, Path(cache), grid, settings["assets"], href_signer(settings["sign"]))
    return write_local_item(local, out)


__all__ = ["fetch_dem_tile", "fetch_sentinel1", "fetch_sentinel2", "search", "triplets"]
