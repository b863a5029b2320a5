"""Reader of Sentinel-2 L2A product and tile metadata (MTD_MSIL2A.xml, GRANULE/*/MTD_TL.xml).

Namespaces differ between processing baselines, so elements are found by
local name. Angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from lxml import etree
from pipeline.errors import SardemError

#: Sentinel-2 band ids as MTD_MSIL2A numbers them (bandId / band_id attributes).
BAND_IDS = {"B01": 0, "B02": 1, "B03": 2, "B04": 3, "B05": 4, "B06": 5, "B07": 6, "B08": 7, "B8A": 8,
            "B09": 9, "B10": 10, "B11": 11, "B12": 12}


class MetadataError(SardemError, ValueError):
    """A Sentinel-2 metadata file lacks an element the reader needs."""


@dataclass(frozen=True)
class ProductMetadata:
    """MTD_MSIL2A.xml: what reflectance decoding and filtering need."""

    product_uri: str
    spacecraft: str
    start_time: np.datetime64
    processing_baseline: str
    quantification_value: float
    boa_add_offset: dict[str, float]  # per band name; empty before baseline 04.00
    cloud_cover_percent: float
    snow_ice_percent: float

    def offset(self, band: str) -> float:
        """BOA_ADD_OFFSET of ``band`` (0 for products without offsets)."""
        return self.boa_add_offset.get(band, 0.0)


@dataclass(frozen=True)
class TileMetadata:
    """GRANULE/*/MTD_TL.xml: sun angles and the tile's CRS."""

    tile_id: str
    sensing_time: np.datetime64
    epsg: int
    sun_zenith_deg: float
    sun_azimuth_deg: float


def _find(root: etree._Element, name: str, label: str) -> etree._Element:
    hits = root.xpath(f"//*[local-name()='{name}']")
    if not hits:
        raise MetadataError(f"{label}: missing element {name}")
    return hits[0]


def _parse(source: str | Path | IO[bytes], label: str) -> etree._Element:
    try:
        return etree.parse(source).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise MetadataError(f"{label}: not a readable XML file ({exc})") from exc


def _time(text: str) -> np.datetime64:
    return np.datetime64(text.strip().rstrip("Z"), "ns")


def parse_product_metadata(source: str | Path | IO[bytes], name: str | None = None) -> ProductMetadata:
    """Parse MTD_MSIL2A.xml (any processing baseline)."""
    label = name or str(getattr(source, "name", source))
    root = _parse(source, label)
    text = lambda n: (_find(root, n, label).text or "").strip()  # noqa: E731
    by_id = {v: k for k, v in BAND_IDS.items()}
    offsets = {
        by_id[int(el.get("band_id"))]: float(el.text)
        for el in root.xpath("//*[local-name()='BOA_ADD_OFFSET']")
    }
    snow = root.xpath("//*[local-name()='SNOW_ICE_PERCENTAGE']")
    return ProductMetadata(
        product_uri=text("PRODUCT_URI"),
        spacecraft=text("SPACECRAFT_NAME"),
        start_time=_time(text("PRODUCT_START_TIME")),
        processing_baseline=text("PROCESSING_BASELINE"),
        quantification_value=float(text("BOA_QUANTIFICATION_VALUE")),
        boa_add_offset=offsets,
        cloud_cover_percent=float(text("Cloud_Coverage_Assessment")),
        snow_ice_percent=float(snow[0].text) if snow else 0.0,
    )


def parse_tile_metadata(source: str | Path | IO[bytes], name: str | None = None) -> TileMetadata:
    """Parse GRANULE/*/MTD_TL.xml."""
    label = name or str(getattr(source, "name", source))
    root = _parse(source, label)
    sun = _find(root, "Mean_Sun_Angle", label)
    code = (_find(root, "HORIZONTAL_CS_CODE", label).text or "").strip()
    return TileMetadata(
        tile_id=(_find(root, "TILE_ID", label).text or "").strip(),
        sensing_time=_time(_find(root, "SENSING_TIME", label).text or ""),
        epsg=int(code.split(":")[-1]),
        sun_zenith_deg=float(sun.xpath("*[local-name()='ZENITH_ANGLE']")[0].text),
        sun_azimuth_deg=float(sun.xpath("*[local-name()='AZIMUTH_ANGLE']")[0].text),
    )


def metadata_from_properties(product_id: str, properties: dict) -> ProductMetadata:
    """Metadata from STAC properties when the catalog has no MTD_MSIL2A.xml (Earth Search).

    The offset follows the processing baseline (``s2:processing_baseline``): from 04.00 on,
    BOA = (DN - 1000) / 10000, before it DN / 10000. Earth Search's
    ``earthsearch:boa_offset_applied`` is not used (known to be wrong).
    """
    baseline = str(properties["s2:processing_baseline"])
    major, minor = (int(x) for x in baseline.split("."))
    offset = {band: -1000.0 for band in BAND_IDS} if (major, minor) >= (4, 0) else {}
    return ProductMetadata(
        product_uri=product_id,
        spacecraft=str(properties.get("platform", "")),
        start_time=np.datetime64(str(properties["datetime"]).rstrip("Z").split("+")[0], "ns"),
        processing_baseline=baseline,
        quantification_value=10000.0,
        boa_add_offset=offset,
        cloud_cover_percent=float(properties["eo:cloud_cover"]),
        snow_ice_percent=float(properties.get("s2:snow_ice_percentage", 0.0)),
    )
