"""Whole SAFE zips from the Copernicus Data Space Ecosystem (CDSE) OData API.

- product lookup: ``GET <catalogue>/Products?$filter=Name eq '<id>.SAFE'`` (no login);
- token: ``POST <token_url>`` with ``grant_type=password``, ``client_id=cdse-public`` and
  the user's name and password, from ``CDSE_USERNAME`` / ``CDSE_PASSWORD`` or the
  ``~/.netrc`` entry of the token host; the token lives 10 minutes, so it is renewed
  before each attempt once 8 minutes old;
- download: ``GET <download>/Products(<Id>)/$value`` with ``Authorization: Bearer``,
  through :func:`pipeline.io.download.download` (resume, retries, MD5 from the OData
  ``Checksum``), then every member is checked against the MD5 of ``manifest.safe``.

Credentials are read from the environment or ``.netrc`` only, and never logged or written.
"""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

from pipeline.errors import UserError
from pipeline.io.download import CredentialsError, DownloadError, DownloadPolicy, download
from pipeline.sar.safe import manifest_entries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ODataEndpoints:
    catalogue_url: str = "https://catalogue.dataspace.copernicus.eu/odata/v1"
    download_url: str = "https://download.dataspace.copernicus.eu/odata/v1"
    token_url: str = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
    client_id: str = "cdse-public"


def credentials(token_url: str) -> tuple[str, str]:
    """(user, password) from CDSE_USERNAME / CDSE_PASSWORD, else ~/.netrc for the token host."""
    user, password = os.environ.get("CDSE_USERNAME"), os.environ.get("CDSE_PASSWORD")
    if user and password:
        return user, password
    host = urlparse(token_url).hostname or ""
    try:
        entry = netrc.netrc().authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError):
        entry = None
    if entry and entry[0] and entry[2]:
        return entry[0], entry[2]
    raise CredentialsError(f"no CDSE credentials: set CDSE_USERNAME and CDSE_PASSWORD, or a ~/.netrc entry for {host}")


class BearerToken:
    """Access tokens of the CDSE identity service, renewed when older than ``max_age_s``."""

    def __init__(self, endpoints: ODataEndpoints, max_age_s: float = 480.0, session: requests.Session | None = None):
        self.endpoints = endpoints
        self.max_age_s = max_age_s
        self.session = session or requests.Session()
        self._token: str | None = None
        self._issued = 0.0

    def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() - self._issued > self.max_age_s:
            user, password = credentials(self.endpoints.token_url)
            try:
                r = self.session.post(self.endpoints.token_url, timeout=(10, 30), data={
                    "grant_type": "password", "client_id": self.endpoints.client_id,
                    "username": user, "password": password})
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise DownloadError(f"{self.endpoints.token_url}: cannot get a token ({exc.__class__.__name__})") from exc
            if r.status_code in (400, 401, 403):
                raise CredentialsError(f"{self.endpoints.token_url}: HTTP {r.status_code}: the CDSE identity service "
                                       "refused the credentials (CDSE_USERNAME / CDSE_PASSWORD or ~/.netrc)")
            r.raise_for_status()
            self._token = r.json()["access_token"]
            self._issued = time.monotonic()
        return {"Authorization": f"Bearer {self._token}"}


def find_product(endpoints: ODataEndpoints, name: str, session: requests.Session | None = None) -> dict:
    """The OData record (Id, Name, ContentLength, Checksum) of a product by its SAFE name."""
    session = session or requests.Session()
    url = f"{endpoints.catalogue_url}/Products"
    try:
        r = session.get(url, params={"$filter": f"Name eq '{name}'"}, timeout=(10, 60))
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise UserError(f"{url}: looking up {name} needs network, and it failed ({exc.__class__.__name__})") from exc
    if r.status_code != 200:
        raise UserError(f"{url}: HTTP {r.status_code} looking up {name}")
    found = r.json().get("value", [])
    if not found:
        raise UserError(f"{url}: no product named {name}")
    return found[0]


def _md5(record: dict) -> str | None:
    for c in record.get("Checksum", []):
        if c.get("Algorithm", "").upper() == "MD5" and c.get("Value"):
            return c["Value"].lower()
    return None


def verify_safe_zip(path: Path) -> int:
    """Check every member that manifest.safe lists against its MD5; return the number checked."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        manifest = next((n for n in names if n.endswith(".SAFE/manifest.safe")), None)
        if manifest is None:
            raise DownloadError(f"{path}: no <name>.SAFE/manifest.safe in the zip")
        prefix = manifest.removesuffix("manifest.safe")
        with z.open(manifest) as fh:
            entries = manifest_entries(fh)
        for entry in entries.values():
            member = prefix + entry.path
            if member not in names:
                raise DownloadError(f"{path}: {member}, listed in the manifest, is missing")
            h = hashlib.md5()
            with z.open(member) as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != entry.md5:
                raise DownloadError(f"{path}: {member} does not match its MD5 in the manifest")
    return len(entries)


def fetch_safe_zip(product_id: str, cache: Path, endpoints: ODataEndpoints = ODataEndpoints(),
                   policy: DownloadPolicy = DownloadPolicy(), token: BearerToken | None = None) -> Path:
    """Download ``<cache>/sentinel-1-grd/<id>.SAFE.zip`` (verified; kept when already there and valid)."""
    name = product_id.removesuffix(".SAFE")  # catalogs differ on whether ids carry the suffix
    target = cache / "sentinel-1-grd" / f"{name}.SAFE.zip"
    record = find_product(endpoints, f"{name}.SAFE")
    token = token or BearerToken(endpoints)
    url = f"{endpoints.download_url}/Products({record['Id']})/$value"
    download(url, target, expected_size=record.get("ContentLength") or None, expected_md5=_md5(record),
             headers=token.headers, policy=policy)
    try:
        n = verify_safe_zip(target)
    except DownloadError:
        target.unlink(missing_ok=True)  # never keep a product that fails its manifest
        raise
    log.info("%s: %d files match the manifest", target.name, n)
    return target


def zip_item(item: dict, zip_path: Path) -> dict:
    """A local item whose assets point into the SAFE zip (``/vsizip/``), with the Planetary Computer's keys."""
    from pipeline.sar.safe import product_files
    from pipeline.sources.fetch import local_item

    files = product_files(zip_path.resolve())
    assets: dict[str, dict] = {}
    for pol, f in files.items():
        p = pol.lower()
        assets[p] = {"href": f.measurement, "roles": ["data"]}
        assets[f"schema-product-{p}"] = {"href": f.annotation, "roles": ["metadata"]}
        assets[f"schema-calibration-{p}"] = {"href": f.calibration, "roles": ["metadata"]}
        assets[f"schema-noise-{p}"] = {"href": f.noise, "roles": ["metadata"]}
    return local_item(item, assets, {"sar:polarizations": sorted(files, key=lambda pol: pol != "VV")})
