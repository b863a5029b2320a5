"""Sentinel-1 precise orbits (AUX_POEORB) from a public S3 bucket, without login.

The bucket (``https://s1-orbits.s3.amazonaws.com`` by default) holds keys
``AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_<generated>_V<validity start>_<validity stop>.EOF``.
A listing (S3 ``ListObjects``, paged with ``marker``) by the generation month narrows the
search: precise orbits are produced about 20 days after the acquisition. The file whose
validity covers the acquisition plus a margin is chosen; among several, the latest generated.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import requests
from lxml import etree

from pipeline.errors import UserError
from pipeline.io.download import DownloadPolicy, download

log = logging.getLogger(__name__)

EOF_NAME_RE = re.compile(
    r"(?P<mission>S1[ABCD])_OPER_AUX_(?P<kind>POEORB|RESORB)_OPOD_(?P<generated>\d{8}T\d{6})_"
    r"V(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})\.EOF$"
)


@dataclass(frozen=True)
class OrbitFileName:
    """What an orbit file's name says: mission, kind, generation time and validity (UTC)."""

    key: str
    mission: str
    kind: str
    generated: dt.datetime
    valid_from: dt.datetime
    valid_to: dt.datetime


def _t(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)


def parse_orbit_name(key: str) -> OrbitFileName | None:
    """The name's fields, or None for keys that are not orbit files."""
    m = EOF_NAME_RE.search(key)
    if not m:
        return None
    return OrbitFileName(key, m["mission"], m["kind"], _t(m["generated"]), _t(m["start"]), _t(m["stop"]))


def select_orbit_file(keys: list[str], mission: str, start: dt.datetime, stop: dt.datetime,
                      margin_s: float = 60.0) -> str | None:
    """The latest generated POEORB file of ``mission`` valid from ``start - margin`` to ``stop + margin``."""
    margin = dt.timedelta(seconds=margin_s)
    found = [n for n in map(parse_orbit_name, keys) if n and n.mission == mission and n.kind == "POEORB"
             and n.valid_from <= start - margin and n.valid_to >= stop + margin]
    return max(found, key=lambda n: (n.generated, n.key)).key if found else None


def list_bucket(url: str, prefix: str, session: requests.Session | None = None, timeout_s: float = 30.0) -> list[str]:
    """Keys under ``prefix`` of an S3 bucket (ListObjects v1, every page)."""
    session = session or requests.Session()
    keys: list[str] = []
    marker = ""
    while True:
        try:
            r = session.get(url.rstrip("/") + "/", params={"prefix": prefix, "marker": marker}, timeout=(10, timeout_s))
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise UserError(f"{url}: listing orbit files needs network, and it failed ({exc.__class__.__name__})") from exc
        if r.status_code != 200:
            raise UserError(f"{url}: HTTP {r.status_code} listing {prefix}")
        root = etree.fromstring(r.content)
        page = [k.text for k in root.xpath("//*[local-name()='Contents']/*[local-name()='Key']")]
        keys += page
        truncated = (root.xpath("string(//*[local-name()='IsTruncated'])") or "false").lower() == "true"
        if not truncated or not page:
            return keys
        marker = root.xpath("string(//*[local-name()='NextMarker'])") or page[-1]


def _months(first: dt.datetime, days: int) -> list[str]:
    out: list[str] = []
    for d in range(days + 1):
        m = f"{first + dt.timedelta(days=d):%Y%m}"
        if m not in out:
            out.append(m)
    return out


def fetch_precise_orbit(url: str, mission: str, start: dt.datetime, stop: dt.datetime, cache: Path,
                        policy: DownloadPolicy = DownloadPolicy()) -> Path:
    """Find and fetch the AUX_POEORB file that covers an acquisition, into ``<cache>/orbits/``."""
    keys: list[str] = []
    for month in _months(start, 40):  # generated within about 3 weeks of the acquisition
        keys += list_bucket(url, f"AUX_POEORB/{mission}_OPER_AUX_POEORB_OPOD_{month}")
        key = select_orbit_file(keys, mission, start, stop)
        if key:
            name = key.rsplit("/", 1)[-1]
            return download(f"{url.rstrip('/')}/{key}", cache / "orbits" / name, policy=policy)
    raise UserError(f"{url}: no AUX_POEORB file of {mission} covers {start:%Y-%m-%dT%H:%M:%S} to "
                    f"{stop:%H:%M:%S} (precise orbits appear about 20 days after acquisition; set "
                    "download.precise_orbits: false to use the annotation's orbit)")
