"""What to search for, and how found scenes pair into triplets (pure functions on STAC item dicts).

The same criteria filter the items of every catalog: a STAC API's answer (the
server's ``query`` is only a pre-filter: every item is checked again here) and
a static catalog (the simulated world), so that both sources select alike.
Property names are those the Planetary Computer, Earth Search and CDSE catalogs
share (``sar:instrument_mode``, ``sar:polarizations``, ``sat:orbit_state``,
``sat:relative_orbit``, ``eo:cloud_cover``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

S1_COLLECTION = "sentinel-1-grd"
S2_COLLECTION = "sentinel-2-l2a"


@dataclass(frozen=True)
class SceneQuery:
    """Search criteria shared by the Sentinel-1 and Sentinel-2 searches.

    Attributes
    ----------
    bbox : tuple of float
        (west, south, east, north) of the AOI, degrees (WGS84 longitude, latitude).
    start, end : str or None
        Inclusive date range, ISO 8601 (``2018-01-01``); None leaves that end open.
    instrument_mode : str
        Sentinel-1 acquisition mode (``IW``).
    polarisations : tuple of str
        Sentinel-1 polarisations the product must all contain (``VV``, ``VH``).
    orbit_state : str or None
        ``descending`` or ``ascending`` (both satellites' passes), None for either.
    relative_orbit : int or None
        Sentinel-1 relative orbit (track), None for any.
    max_cloud_cover : float
        Sentinel-2 ``eo:cloud_cover`` strictly below this (percent).
    """

    bbox: tuple[float, float, float, float]
    start: str | None = None
    end: str | None = None
    instrument_mode: str = "IW"
    polarisations: tuple[str, ...] = ("VV", "VH")
    orbit_state: str | None = "descending"
    relative_orbit: int | None = None
    max_cloud_cover: float = 25.0
    extra: dict[str, Any] = field(default_factory=dict)

    def datetime_range(self) -> str | None:
        """The STAC API ``datetime`` parameter (``start/end``, open ends as ``..``); None: no limit."""
        if self.start is None and self.end is None:
            return None
        start = f"{self.start}T00:00:00Z" if self.start and "T" not in self.start else (self.start or "..")
        end = f"{self.end}T23:59:59Z" if self.end and "T" not in self.end else (self.end or "..")
        return f"{start}/{end}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox)
        d["polarisations"] = list(self.polarisations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneQuery":
        d = dict(d)
        d["bbox"] = tuple(float(v) for v in d["bbox"])
        d["polarisations"] = tuple(d.get("polarisations", ("VV", "VH")))
        return cls(**d)


def api_query(query: SceneQuery, collection: str) -> dict[str, dict[str, Any]]:
    """The STAC API ``query`` extension's filter for a collection (a pre-filter; see :func:`matches`)."""
    if collection == S1_COLLECTION:
        q: dict[str, dict[str, Any]] = {"sar:instrument_mode": {"eq": query.instrument_mode}}
        if query.orbit_state:
            q["sat:orbit_state"] = {"eq": query.orbit_state}
        if query.relative_orbit is not None:
            q["sat:relative_orbit"] = {"eq": query.relative_orbit}
        return q
    return {"eo:cloud_cover": {"lt": query.max_cloud_cover}}


def parse_utc(text: str) -> dt.datetime:
    """An ISO 8601 time (``Z`` or an offset; none means UTC), timezone-aware."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def item_time(item: dict[str, Any]) -> dt.datetime:
    """The item's acquisition time (``datetime``, else ``start_datetime``), timezone-aware UTC."""
    props = item["properties"]
    return parse_utc(props.get("datetime") or props["start_datetime"])


def _intersects(a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def matches(item: dict[str, Any], collection: str, query: SceneQuery) -> tuple[bool, str]:
    """Whether an item meets the criteria, and if not, why (for the search log)."""
    props = item["properties"]
    bbox = item.get("bbox")
    if bbox is not None and not _intersects(bbox, query.bbox):
        return False, "outside the AOI"
    t = item_time(item)
    rng = query.datetime_range()
    if rng:
        lo, hi = rng.split("/")
        if lo != ".." and t < parse_utc(lo):
            return False, "before the date range"
        if hi != ".." and t > parse_utc(hi):
            return False, "after the date range"
    if collection == S1_COLLECTION:
        if props.get("sar:instrument_mode") != query.instrument_mode:
            return False, f"mode {props.get('sar:instrument_mode')}"
        pols = {p.upper() for p in props.get("sar:polarizations", [])}
        if not set(query.polarisations) <= pols:
            return False, f"polarisations {sorted(pols)}"
        if query.orbit_state and props.get("sat:orbit_state", "").lower() != query.orbit_state:
            return False, f"orbit state {props.get('sat:orbit_state')}"
        if query.relative_orbit is not None and props.get("sat:relative_orbit") != query.relative_orbit:
            return False, f"relative orbit {props.get('sat:relative_orbit')}"
        return True, ""
    cloud = props.get("eo:cloud_cover")
    if cloud is None or not cloud < query.max_cloud_cover:
        return False, f"cloud cover {cloud}"
    return True, ""


def s2_acquisitions(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Sentinel-2 items grouped by acquisition: the MGRS tiles of one satellite's pass on one day
    (same platform, relative orbit and UTC date), each group sorted by id."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for item in items:
        p = item["properties"]
        key = (str(p.get("platform", "")).lower(), p.get("sat:relative_orbit", p.get("s2:relative_orbit")),
               f"{item_time(item):%Y%m%d}")
        groups.setdefault(key, []).append(item)
    return sorted((sorted(g, key=lambda i: i["id"]) for g in groups.values()), key=lambda g: g[0]["id"])


def s1_acquisitions(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Sentinel-1 items grouped by acquisition: the consecutive slices (frames) of one pass
    (same platform, absolute orbit and UTC date), each group sorted by time."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for item in items:
        p = item["properties"]
        orbit = p.get("sat:absolute_orbit", p.get("s1:datatake_id", item["id"]))
        key = (str(p.get("platform", "")).lower(), orbit, f"{item_time(item):%Y%m%d}")
        groups.setdefault(key, []).append(item)
    return sorted((sorted(g, key=lambda i: (item_time(i), i["id"])) for g in groups.values()),
                  key=lambda g: (item_time(g[0]), g[0]["id"]))


def pair_scenes(s1_items: list[dict[str, Any]], s2_items: list[dict[str, Any]], max_days: float) -> list[dict]:
    """Triplets: each Sentinel-1 acquisition with the nearest Sentinel-2 acquisition within ``max_days``.

    An acquisition is the set of products of one pass: Sentinel-1 slices (:func:`s1_acquisitions`),
    Sentinel-2 MGRS tiles (:func:`s2_acquisitions`); each is named by its first product's id.
    Returns dicts with ``id`` (the Sentinel-1 date, ``YYYYMMDD``, with ``_2``, ``_3`` for further
    passes of that date), ``s1`` and ``s2`` (the acquisitions' names), ``s1_items`` and ``s2_items``
    (their products' ids), their times (ISO 8601) and ``days_apart``. Passes without a partner are
    left out.
    """
    acquisitions = s2_acquisitions(s2_items)
    out: list[dict] = []
    seen: dict[str, int] = {}
    for group in s1_acquisitions(s1_items):
        ta = item_time(group[0])
        best = min(acquisitions, key=lambda g: (abs((item_time(g[0]) - ta).total_seconds()), g[0]["id"]),
                   default=None)
        if best is None:
            continue
        tb = item_time(best[0])
        days = abs((tb - ta).total_seconds()) / 86400
        if days > max_days:
            continue
        date = f"{ta:%Y%m%d}"
        seen[date] = seen.get(date, 0) + 1
        out.append({"id": date if seen[date] == 1 else f"{date}_{seen[date]}", "s1": group[0]["id"],
                    "s1_items": [i["id"] for i in group], "s2": best[0]["id"], "s2_items": [i["id"] for i in best],
                    "s1_time": ta.isoformat(), "s2_time": tb.isoformat(), "days_apart": round(days, 3)})
    return out
