"""Stages ``search``, ``fetch_sentinel1``, ``fetch_sentinel2``, ``fetch_dem`` and ``triplets``: the workflow's first rules."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.core.grid import MapGrid
from pipeline.io.atomic import write_bytes_atomic
from pipeline.io.checksums import record_problem
from pipeline.io.rasters import band_range, open_raster
from pipeline.sources.fetch import fetch_dem_tile, fetch_sentinel1_window, write_local_item
from pipeline.sources.providers import href_signer
from pipeline.sources.query import S1_COLLECTION, S2_COLLECTION, SceneQuery, pair_scenes
from pipeline.sources.search import item_by_id, read_result, run_search, write_result

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


def write_triplets(search_result: str | Path, max_days: float, out: str | Path) -> list[dict]:
    """Pair the scenes of a frozen search result (at most ``max_days`` apart) into ``out`` (JSON)."""
    pairs = triplets(search_result, max_days)
    write_bytes_atomic(out, json.dumps(pairs, indent=2).encode())
    log.info("%d triplets (Sentinel-1 / Sentinel-2 at most %s days apart) -> %s", len(pairs), max_days, out)
    return pairs


def note_changed_cache(products: str | Path, dem_tiles: list[str | Path], markers: str | Path) -> list[str]:
    """Before a run is planned: mark every product and DEM tile whose cached files changed since they were fetched.

    The mark is a file ``<markers>/<product id or tile file name>`` touched now. The workflow makes it an
    input of the product's fetch rule and of the rules that read the product, so a plain rerun fetches
    what changed (the fetch finds the file off its record and fetches it anew), then reruns the readers;
    a failed fetch leaves the readers' good outputs untouched, and the next run tries again.
    DEM tiles are compared by size and MD5; a product's files (``<products>/<collection>/<id>.json``,
    the local item) by size (the stages compare MD5s before they write). Returns one message per change.
    """
    markers = Path(markers)
    changed: dict[str, str] = {}
    for tile in map(Path, dem_tiles):
        problem = record_problem(tile) if tile.exists() else None
        if problem:
            changed[tile.name] = f"{tile}: changed since it was fetched ({problem})"
    for local in sorted(Path(products).glob("*/*.json")):
        try:
            assets = json.loads(local.read_text()).get("assets", {})
        except (OSError, ValueError):
            continue  # not ours to judge: the stage that reads it says what is wrong
        for asset in assets.values():
            problem = record_problem(asset["href"], check_md5=False)
            if problem:
                changed[local.stem] = f"{asset['href']}: changed since it was fetched ({problem})"
                break
    for name in changed:
        markers.mkdir(parents=True, exist_ok=True)
        (markers / name).touch()
    return [f"{message}: fetching {name} again" for name, message in changed.items()]


def changed_markers(markers: str | Path, names: list[str]) -> list[str]:
    """The marks :func:`note_changed_cache` left for ``names`` (products or tile file names), as paths."""
    return [str(Path(markers) / n) for n in names if (Path(markers) / n).exists()]


def _height_range_m(dem_tif: str | Path) -> tuple[float, float]:
    with open_raster(dem_tif, "DEM") as src:
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
        from pipeline.sources.odata import ODataEndpoints, fetch_safe_zip, zip_item

        local = zip_item(item, fetch_safe_zip(scene, cache, ODataEndpoints(**settings["odata"])))
    else:
        local = fetch_sentinel1_window(item, cache, grid, _height_range_m(dem_tif), settings["polarisations"],
                                       href_signer(settings["sign"]), settings["window_margin_px"])
    if settings.get("precise_orbits"):
        from pipeline.sources.orbits import fetch_precise_orbit
        from pipeline.sources.query import parse_utc

        props = item["properties"]
        start = parse_utc(props.get("start_datetime") or props["datetime"])
        stop = parse_utc(props.get("end_datetime") or props["datetime"])
        eof = fetch_precise_orbit(settings["orbits_url"], scene[:3], start, stop, cache)
        local["assets"]["orbit"] = {"href": str(eof.resolve()), "roles": ["metadata"], "title": "AUX_POEORB"}
    return write_local_item(local, out)


def fetch_sentinel2(search_result: str | Path, scene: str, cache: str | Path, grid: MapGrid,
                    settings: dict[str, Any], out: str | Path) -> Path:
    """Fetch one Sentinel-2 product over the AOI (``settings``: assets layout, sign)."""
    from pipeline.sources.fetch import fetch_sentinel2 as fetch_s2

    item = item_by_id(read_result(search_result), S2_COLLECTION, scene)
    local = fetch_s2(item, Path(cache), grid, settings["assets"], href_signer(settings["sign"]))
    return write_local_item(local, out)


__all__ = ["fetch_dem_tile", "fetch_sentinel1", "fetch_sentinel2", "search", "triplets", "write_triplets"]
