"""Readers of the SAFE container: directory, zip, or a lone annotation file."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.sar.annotation import AnnotationError, ProductAnnotation, parse_annotation
from pipeline.errors import SardemError

ANNOTATION_RE = re.compile(r"(^|/)annotation/s1[abcd]-[a-z0-9]+-[a-z]+-(?P<pol>[hv]{2})-[^/]*\.xml$")


class SafeError(SardemError, ValueError):
    """A SAFE product is incomplete or malformed."""


def read_annotations(path: Path) -> dict[str, ProductAnnotation]:
    """Product annotations by polarisation ('VV', 'VH', ...), from a SAFE dir, zip or one XML."""
    if not path.exists():
        raise SafeError(f"{path}: no such file or directory")
    if path.is_file() and path.suffix.lower() == ".xml":
        ann = parse_annotation(path)
        return {ann.header.polarisation: ann}
    if path.is_file() and path.suffix.lower() == ".json":
        found = {}
        for pol, f in stac_item_files(path).items():
            with open_xml(f.annotation) as fh:
                found[pol] = parse_annotation(fh, f.annotation)
        return found
    found: dict[str, ProductAnnotation] = {}
    if path.is_dir():
        for f in sorted(path.glob("annotation/*.xml")):
            m = ANNOTATION_RE.search(f.as_posix())
            if m:
                found[m["pol"].upper()] = parse_annotation(f)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                m = ANNOTATION_RE.search(name)
                if m:
                    with z.open(name) as fh:
                        found[m["pol"].upper()] = parse_annotation(fh, f"{path}!{name}")
    else:
        raise SafeError(f"{path}: neither a SAFE directory, a SAFE zip nor an annotation XML")
    if not found:
        raise SafeError(f"{path}: no product annotation (annotation/s1?-*-*-<pol>-*.xml) found")
    return found


__all__ = ["AnnotationError", "SafeError", "read_annotations"]


@dataclass(frozen=True)
class PolarisationFiles:
    """Where one polarisation's files are: a GDAL path for the measurement, readable sources for the XMLs."""

    polarisation: str
    measurement: str
    annotation: str
    calibration: str
    noise: str


def _opener(container: Path, member: str) -> str:
    return f"/vsizip/{container}/{member}" if container.suffix.lower() == ".zip" else str(container / member)


def stac_item_files(path: Path) -> dict[str, PolarisationFiles]:
    """The per-file layout of STAC catalogs: a ``sentinel-1-grd`` item whose assets are the measurement
    COGs (``vv``, ``vh``) and the XML files (``schema-product-vv``, ``schema-calibration-vv``, ...)."""
    import pystac

    try:
        item = pystac.Item.from_file(str(path))
    except Exception as exc:  # pystac raises several types for bad JSON
        raise SafeError(f"{path}: not a readable STAC item ({exc})") from exc
    out = {}
    for pol in item.properties.get("sar:polarizations", []):
        p = pol.lower()
        keys = {"measurement": p, "annotation": f"schema-product-{p}", "calibration": f"schema-calibration-{p}",
                "noise": f"schema-noise-{p}"}
        missing = [k for k in keys.values() if k not in item.assets]
        if missing:
            raise SafeError(f"{path}: item {item.id} lacks the assets {', '.join(missing)} for {pol}")
        hrefs = {kind: item.assets[key].get_absolute_href() for kind, key in keys.items()}
        for kind, href in hrefs.items():
            inside = split_vsizip(href)
            if "://" not in href and not Path(inside[0] if inside else href).exists():
                raise SafeError(f"{path}: {pol} {kind} asset {href} does not exist")
        out[pol.upper()] = PolarisationFiles(pol.upper(), **hrefs)
    if not out:
        raise SafeError(f"{path}: item has no sar:polarizations")
    return out


def product_files(path: str | Path) -> dict[str, PolarisationFiles]:
    """The files of each polarisation of a SAFE directory, a SAFE zip or a STAC item (JSON);
    errors name what is missing."""
    path = Path(path)
    if not path.exists():
        raise SafeError(f"{path}: no such file or directory")
    if path.is_file() and path.suffix.lower() == ".json":
        return stac_item_files(path)
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    else:
        raise SafeError(f"{path}: neither a SAFE directory nor a SAFE zip")
    out: dict[str, PolarisationFiles] = {}
    for name in sorted(names):
        m = ANNOTATION_RE.search(name)
        if not m:
            continue
        pol = m["pol"].upper()
        stem = name.rsplit("/", 1)[-1].removesuffix(".xml")
        prefix = name.rsplit("annotation/", 1)[0]
        wanted = {
            "measurement": f"{prefix}measurement/{stem}.tiff",
            "calibration": f"{prefix}annotation/calibration/calibration-{stem}.xml",
            "noise": f"{prefix}annotation/calibration/noise-{stem}.xml",
        }
        for kind, member in wanted.items():
            if member not in names:
                raise SafeError(f"{path}: {pol} {kind} file {member} is missing")
        out[pol] = PolarisationFiles(
            polarisation=pol,
            measurement=_opener(path, wanted["measurement"]),
            annotation=_opener(path, name),
            calibration=_opener(path, wanted["calibration"]),
            noise=_opener(path, wanted["noise"]),
        )
    if not out:
        raise SafeError(f"{path}: no product annotation (annotation/s1?-*-*-<pol>-*.xml) found")
    return out


def split_vsizip(path: str) -> tuple[str, str] | None:
    """(zip file, member) of a GDAL ``/vsizip/<file>.zip/<member>`` path; None for other paths."""
    if not path.startswith("/vsizip/"):
        return None
    container, member = path[len("/vsizip/"):].split(".zip/", 1)
    return container + ".zip", member


def open_xml(source: str):
    """A binary file object for a path or a /vsizip/ path (XML readers take it)."""
    inside = split_vsizip(source)
    if inside:
        container, member = inside
        with zipfile.ZipFile(container) as z:
            return io.BytesIO(z.read(member))  # annotation files are a few MB; the zip is closed at once
    return open(source, "rb")


@dataclass(frozen=True)
class ManifestEntry:
    """One file that manifest.safe lists: its path relative to the SAFE, size (bytes) and MD5 (hex)."""

    path: str
    size: int
    md5: str


def manifest_entries(source: str | Path | IO[bytes]) -> dict[str, ManifestEntry]:
    """The files a manifest.safe (path or binary file) lists (dataObjectSection), by file name."""
    from lxml import etree

    try:
        root = etree.parse(source if hasattr(source, "read") else str(source)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise SafeError(f"{source}: not a readable manifest.safe ({exc})") from exc
    out: dict[str, ManifestEntry] = {}
    for stream in root.xpath("//*[local-name()='dataObject']/*[local-name()='byteStream']"):
        loc = stream.xpath("*[local-name()='fileLocation']/@href")
        md5 = stream.xpath("*[local-name()='checksum'][@checksumName='MD5']/text()")
        if not loc or not md5:
            continue
        rel = loc[0].removeprefix("./")
        out[rel.rsplit("/", 1)[-1]] = ManifestEntry(rel, int(stream.get("size", -1)), md5[0].strip().lower())
    if not out:
        raise SafeError(f"{source}: the manifest lists no files with MD5 checksums")
    return out


def item_orbit_file(path: str | Path) -> str | None:
    """The precise orbit file that a local STAC item names (asset ``orbit``), if any."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    import json

    try:
        asset = json.loads(path.read_text()).get("assets", {}).get("orbit")
    except (OSError, json.JSONDecodeError) as exc:
        raise SafeError(f"{path}: not a readable STAC item ({exc})") from exc
    return asset["href"] if asset else None
