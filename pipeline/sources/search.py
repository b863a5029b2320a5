"""Scene search: a STAC API (pystac-client) or a static catalog, frozen into one JSON file.

The frozen result holds the query and every selected item (full STAC item JSON,
absolute hrefs, unsigned), per collection. Every later stage reads the scenes
from it, so a rerun plans the same scenes offline, whatever the catalogs
publish meanwhile. File layout::

    {"format": "sardem-search/1", "source": ..., "query": {...},
     "endpoints": {"sentinel-1-grd": ..., "sentinel-2-l2a": ...},
     "sentinel-1-grd": [item, ...], "sentinel-2-l2a": [item, ...]}
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.io.atomic import write_json_atomic
from pipeline.io.download import DownloadPolicy
from pipeline.io.redact import redact
from pipeline.sources.query import S1_COLLECTION, S2_COLLECTION, SceneQuery, matches

log = logging.getLogger(__name__)
FORMAT = "sardem-search/1"


def _selected(items: list[dict[str, Any]], collection: str, query: SceneQuery, origin: str) -> list[dict[str, Any]]:
    out = []
    for item in items:
        ok, why = matches(item, collection, query)
        if ok:
            out.append(item)
        else:
            log.info("%s: %s left out (%s)", origin, item["id"], why)
    return sorted(out, key=lambda i: i["id"])


def _plain(item) -> dict[str, Any]:
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    d["links"] = []
    for asset in d["assets"].values():
        asset.pop("alternate", None)
    return d


def search_static(catalog: str | Path, collection: str, query: SceneQuery) -> list[dict[str, Any]]:
    """Items of one collection of a static STAC catalog (local paths) that meet the query; hrefs absolute."""
    import pystac

    catalog = Path(catalog)
    try:
        root = pystac.Catalog.from_file(str(catalog))
    except Exception as exc:  # pystac raises several types for missing or bad JSON
        raise UserError(f"{catalog}: not a readable STAC catalog ({exc})") from exc
    child = root.get_child(collection)
    if child is None:
        raise UserError(f"{catalog}: no collection {collection!r}")
    items = []
    for item in child.get_items():
        item.make_asset_hrefs_absolute()
        items.append(_plain(item))
    return _selected(items, collection, query, str(catalog))


SEARCH_POLICY = DownloadPolicy(max_attempts=4, backoff_s=1.0, backoff_max_s=30.0)
"""Retries of a search: a few, quickly (a machine without network learns it within seconds)."""


class _Transient(Exception):
    """A failure worth another try (connection, timeout, truncated answer, 429, 5xx); its cause is the
    network error where there is one, else the API's error."""


def search_api(url: str, collection: str, query: SceneQuery, max_items: int = 10000,
               remote_collection: str | None = None, policy: DownloadPolicy = SEARCH_POLICY) -> list[dict[str, Any]]:
    """Items of a STAC API collection that meet the query (``query`` extension as a pre-filter when offered).

    ``collection`` is the canonical name (which criteria apply); ``remote_collection`` the catalog's
    collection id when it differs (Earth Search's ``sentinel-2-c1-l2a`` for ``sentinel-2-l2a``).
    A search that fails on the way (connection dropped, timeout, a truncated page, 429 or 5xx) is run
    again from its first page, ``policy.max_attempts`` times in all with exponential backoff.

    Raises
    ------
    UserError
        The API cannot be reached ("needs network"), or answers with an error.
    """
    import pystac_client
    import requests

    last: BaseException | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            found = _search_once(url, collection, query, max_items, remote_collection)
        except _Transient as exc:
            last = exc.__cause__
            if attempt < policy.max_attempts:
                wait = min(policy.backoff_s * 2 ** (attempt - 1), policy.backoff_max_s)
                log.warning("%s: %s (attempt %d of %d), searching again in %.1f s", redact(url), redact(str(last)),
                            attempt, policy.max_attempts, wait)
                time.sleep(wait)
            continue
        log.info("%s %s: %d items before the client-side check", url, collection, len(found))
        return _selected(found, collection, query, url)
    if isinstance(last, pystac_client.exceptions.APIError):
        raise UserError(f"{url}: the STAC API answered with an error {policy.max_attempts} times: {last}") from last
    assert isinstance(last, requests.RequestException)
    raise UserError(
        f"searching {url} needs network, and it failed {policy.max_attempts} times ({last.__class__.__name__}). "
        "Run the search where the catalog can be reached (snakemake search, or python -m pipeline search), then "
        "set search.frozen to the result file: every later stage plans from it offline"
    ) from last


def _search_once(url: str, collection: str, query: SceneQuery, max_items: int,
                 remote_collection: str | None) -> list[dict[str, Any]]:
    """One search through every page (see :func:`search_api`); transient failures raise ``_Transient``."""
    import pystac_client
    import requests
    from pystac_client.conformance import ConformanceClasses

    try:
        client = pystac_client.Client.open(url, timeout=(10, 60))
        kwargs: dict[str, Any] = {"collections": [remote_collection or collection], "bbox": list(query.bbox),
                                  "max_items": max_items}
        if query.datetime_range():
            kwargs["datetime"] = query.datetime_range()
        if client.conforms_to(ConformanceClasses.QUERY):
            from pipeline.sources.query import api_query

            kwargs["query"] = api_query(query, collection)
        return [_plain(item) for item in client.search(**kwargs).items()]
    except requests.RequestException as exc:  # connection, timeout, a body cut short
        raise _Transient() from exc
    except pystac_client.exceptions.APIError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, requests.RequestException):  # pystac-client wraps the network error
            raise _Transient() from cause
        status = getattr(exc, "status_code", None)
        if status == 429 or (status or 0) >= 500:
            raise _Transient() from exc
        raise UserError(f"{url}: the STAC API answered with an error: {exc}") from exc


def run_search(query: SceneQuery, endpoints: dict[str, str], source: str,
               collections: dict[str, str] | None = None, policy: DownloadPolicy = SEARCH_POLICY) -> dict[str, Any]:
    """Search both collections; ``endpoints`` maps each collection to a STAC API URL or a static catalog path.

    ``source`` is recorded in the result ('simulated' or 'stac'); ``collections`` maps a canonical
    collection to the API's collection id where they differ (recorded too).
    """
    collections = dict(collections or {})
    result: dict[str, Any] = {"format": FORMAT, "source": source, "query": query.as_dict(),
                              "endpoints": dict(endpoints)}
    if collections:
        result["collections"] = collections
    for collection in (S1_COLLECTION, S2_COLLECTION):
        where = endpoints[collection]
        if where.startswith(("http://", "https://")):
            items = search_api(where, collection, query, remote_collection=collections.get(collection),
                               policy=policy)
        else:
            items = search_static(where, collection, query)
        log.info("%s: %d %s items selected", where, len(items), collection)
        result[collection] = items
    return result


def write_result(result: dict[str, Any], path: str | Path) -> Path:
    """Write the frozen search result atomically (sorted keys: the same search gives the same bytes)."""
    return write_json_atomic(path, result)


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and check a frozen search result; errors name the file."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable search result ({exc})") from exc
    if not isinstance(result, dict) or result.get("format") != FORMAT:
        raise UserError(f"{path}: not a search result of format {FORMAT} (python -m pipeline search writes one)")
    for collection in (S1_COLLECTION, S2_COLLECTION):
        if not isinstance(result.get(collection), list):
            raise UserError(f"{path}: no list of {collection} items")
    return result


def item_by_id(result: dict[str, Any], collection: str, item_id: str) -> dict[str, Any]:
    for item in result[collection]:
        if item["id"] == item_id:
            return item
    raise UserError(f"the search result has no {collection} item {item_id}")
