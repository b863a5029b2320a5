"""Reader of the Sentinel-1 product annotation XML (``annotation/s1?-iw-grd-*.xml``).

Parses once into small frozen dataclasses. Times become float64 seconds
from the product's first line time (``ProductAnnotation.epoch``, UTC);
slant range times are two-way, in seconds; distances in metres; angles in
degrees. :data:`READER_PATHS` lists every element path this module reads,
so that tests can check that real and simulated products carry them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from pipeline.sar.calibration import LutVectors, NoiseAzimuthBlock
from pipeline.sar.orbit import Orbit
from pipeline.errors import SardemError

#: Element paths (from the root ``product``) that the reader uses.
READER_PATHS: tuple[str, ...] = (
    "adsHeader/missionId",
    "adsHeader/productType",
    "adsHeader/polarisation",
    "adsHeader/mode",
    "adsHeader/swath",
    "adsHeader/startTime",
    "adsHeader/stopTime",
    "adsHeader/absoluteOrbitNumber",
    "adsHeader/missionDataTakeId",
    "generalAnnotation/productInformation/pass",
    "generalAnnotation/productInformation/platformHeading",
    "generalAnnotation/productInformation/projection",
    "generalAnnotation/productInformation/rangeSamplingRate",
    "generalAnnotation/productInformation/radarFrequency",
    "generalAnnotation/orbitList/orbit/time",
    "generalAnnotation/orbitList/orbit/frame",
    "generalAnnotation/orbitList/orbit/position/x",
    "generalAnnotation/orbitList/orbit/position/y",
    "generalAnnotation/orbitList/orbit/position/z",
    "generalAnnotation/orbitList/orbit/velocity/x",
    "generalAnnotation/orbitList/orbit/velocity/y",
    "generalAnnotation/orbitList/orbit/velocity/z",
    "generalAnnotation/terrainHeightList/terrainHeight/azimuthTime",
    "generalAnnotation/terrainHeightList/terrainHeight/value",
    "imageAnnotation/imageInformation/productFirstLineUtcTime",
    "imageAnnotation/imageInformation/productLastLineUtcTime",
    "imageAnnotation/imageInformation/ascendingNodeTime",
    "imageAnnotation/imageInformation/slantRangeTime",
    "imageAnnotation/imageInformation/pixelValue",
    "imageAnnotation/imageInformation/outputPixels",
    "imageAnnotation/imageInformation/rangePixelSpacing",
    "imageAnnotation/imageInformation/azimuthPixelSpacing",
    "imageAnnotation/imageInformation/azimuthTimeInterval",
    "imageAnnotation/imageInformation/numberOfSamples",
    "imageAnnotation/imageInformation/numberOfLines",
    "imageAnnotation/imageInformation/incidenceAngleMidSwath",
    "imageAnnotation/processingInformation/srgrConversionApplied",
    "imageAnnotation/processingInformation/ellipsoidName",
    "imageAnnotation/processingInformation/ellipsoidSemiMajorAxis",
    "imageAnnotation/processingInformation/ellipsoidSemiMinorAxis",
    "imageAnnotation/processingInformation/bistaticDelayCorrectionApplied",
    "swathTiming/linesPerBurst",
    "swathTiming/burstList",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/azimuthTime",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/slantRangeTime",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/line",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/pixel",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/latitude",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/longitude",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/height",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/incidenceAngle",
    "geolocationGrid/geolocationGridPointList/geolocationGridPoint/elevationAngle",
    "coordinateConversion/coordinateConversionList/coordinateConversion/azimuthTime",
    "coordinateConversion/coordinateConversionList/coordinateConversion/slantRangeTime",
    "coordinateConversion/coordinateConversionList/coordinateConversion/sr0",
    "coordinateConversion/coordinateConversionList/coordinateConversion/srgrCoefficients",
    "coordinateConversion/coordinateConversionList/coordinateConversion/gr0",
    "coordinateConversion/coordinateConversionList/coordinateConversion/grsrCoefficients",
)


class AnnotationError(SardemError, ValueError):
    """An annotation file lacks an element or holds a value the reader cannot use."""


def parse_time(text: str) -> np.datetime64:
    """An annotation time ('2021-04-01T05:26:23.794457', UTC) as datetime64[ns]."""
    return np.datetime64(text.strip().rstrip("Z"), "ns")


def seconds_since(time: np.datetime64 | NDArray, epoch: np.datetime64) -> NDArray[np.float64]:
    """Float seconds from ``epoch`` (exact to the nanosecond for spans of days)."""
    return (np.asarray(time, dtype="datetime64[ns]") - epoch).astype("timedelta64[ns]").astype(np.int64) / 1e9


@dataclass(frozen=True)
class AdsHeader:
    mission_id: str
    product_type: str
    polarisation: str
    mode: str
    swath: str
    start_time: np.datetime64
    stop_time: np.datetime64
    absolute_orbit: int
    mission_data_take_id: int


@dataclass(frozen=True)
class ImageInformation:
    """Image timing and sampling. Times in seconds from the first line; slant range time two-way."""

    first_line_time: np.datetime64
    last_line_time_s: float
    ascending_node_time: np.datetime64
    slant_range_time_s: float
    range_pixel_spacing_m: float
    azimuth_pixel_spacing_m: float
    azimuth_time_interval_s: float
    number_of_samples: int
    number_of_lines: int
    incidence_angle_mid_swath_deg: float


@dataclass(frozen=True)
class CoordinateConversion:
    """Slant <-> ground range records: gr = sum srgr_k (R - sr0)^k, R = sum grsr_k (gr - gr0)^k (m)."""

    azimuth_time_s: NDArray[np.float64]
    slant_range_time_s: NDArray[np.float64]
    sr0_m: NDArray[np.float64]
    srgr: NDArray[np.float64]
    gr0_m: NDArray[np.float64]
    grsr: NDArray[np.float64]


@dataclass(frozen=True)
class GeolocationGrid:
    """Tie points; ``azimuth_time_s`` is each point's zero-Doppler time (s from the first line)."""

    azimuth_time_s: NDArray[np.float64]
    slant_range_time_s: NDArray[np.float64]
    line: NDArray[np.float64]
    pixel: NDArray[np.float64]
    latitude_deg: NDArray[np.float64]
    longitude_deg: NDArray[np.float64]
    height_m: NDArray[np.float64]
    incidence_angle_deg: NDArray[np.float64]
    elevation_angle_deg: NDArray[np.float64]

    def corners(self) -> list[tuple[float, float]]:
        """(latitude, longitude) in degrees of the image corners: first line first pixel, first line last
        pixel, last line last pixel, last line first pixel."""
        out = []
        for li, pi in ((self.line.min(), self.pixel.min()), (self.line.min(), self.pixel.max()),
                       (self.line.max(), self.pixel.max()), (self.line.max(), self.pixel.min())):
            k = int(np.flatnonzero((self.line == li) & (self.pixel == pi))[0])
            out.append((float(self.latitude_deg[k]), float(self.longitude_deg[k])))
        return out


@dataclass(frozen=True)
class ProductAnnotation:
    header: AdsHeader
    pass_direction: str
    platform_heading_deg: float
    radar_frequency_hz: float
    range_sampling_rate_hz: float
    image: ImageInformation
    orbit: Orbit
    coordinate_conversion: CoordinateConversion
    geolocation_grid: GeolocationGrid
    terrain_height_m: float
    bistatic_delay_applied: bool

    @property
    def epoch(self) -> np.datetime64:
        return self.image.first_line_time


def _text(root: etree._Element, path: str, source: str) -> str:
    node = root.find(path)
    if node is None or node.text is None:
        raise AnnotationError(f"{source}: missing element {path}")
    return node.text.strip()


def _floats(nodes: list[etree._Element], path: str) -> NDArray[np.float64]:
    return np.array([float(n.findtext(path)) for n in nodes], dtype=np.float64)


def _float_lists(nodes: list[etree._Element], path: str) -> NDArray[np.float64]:
    return np.array([[float(v) for v in n.findtext(path).split()] for n in nodes], dtype=np.float64)


def parse_annotation(source: str | Path | IO[bytes], name: str | None = None) -> ProductAnnotation:
    """Parse a product annotation file (path or open binary file)."""
    label = name or str(getattr(source, "name", source))
    try:
        root = etree.parse(source).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise AnnotationError(f"{label}: not a readable XML file ({exc})") from exc
    if root.tag != "product":
        raise AnnotationError(f"{label}: root element is <{root.tag}>, not <product> (a product annotation)")
    try:
        return _parse(root, label)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, AnnotationError):
            raise
        raise AnnotationError(f"{label}: malformed value ({exc})") from exc


def _parse(root: etree._Element, label: str) -> ProductAnnotation:
    t = lambda path: _text(root, path, label)  # noqa: E731
    header = AdsHeader(
        mission_id=t("adsHeader/missionId"),
        product_type=t("adsHeader/productType"),
        polarisation=t("adsHeader/polarisation"),
        mode=t("adsHeader/mode"),
        swath=t("adsHeader/swath"),
        start_time=parse_time(t("adsHeader/startTime")),
        stop_time=parse_time(t("adsHeader/stopTime")),
        absolute_orbit=int(t("adsHeader/absoluteOrbitNumber")),
        mission_data_take_id=int(t("adsHeader/missionDataTakeId")),
    )
    info = "imageAnnotation/imageInformation/"
    epoch = parse_time(t(info + "productFirstLineUtcTime"))
    if t("generalAnnotation/productInformation/projection") != "Ground Range":
        raise AnnotationError(f"{label}: not a ground range (GRD) product")
    image = ImageInformation(
        first_line_time=epoch,
        last_line_time_s=float(seconds_since(parse_time(t(info + "productLastLineUtcTime")), epoch)),
        ascending_node_time=parse_time(t(info + "ascendingNodeTime")),
        slant_range_time_s=float(t(info + "slantRangeTime")),
        range_pixel_spacing_m=float(t(info + "rangePixelSpacing")),
        azimuth_pixel_spacing_m=float(t(info + "azimuthPixelSpacing")),
        azimuth_time_interval_s=float(t(info + "azimuthTimeInterval")),
        number_of_samples=int(t(info + "numberOfSamples")),
        number_of_lines=int(t(info + "numberOfLines")),
        incidence_angle_mid_swath_deg=float(t(info + "incidenceAngleMidSwath")),
    )
    orbits = root.findall("generalAnnotation/orbitList/orbit")
    frames = {o.findtext("frame") for o in orbits}
    if frames != {"Earth Fixed"}:
        raise AnnotationError(f"{label}: orbit state vectors must be 'Earth Fixed', found {sorted(map(str, frames))}")
    orbit = Orbit(
        epoch=epoch,
        time_s=seconds_since(np.array([parse_time(o.findtext("time")) for o in orbits]), epoch),
        position_m=np.stack([_floats(orbits, f"position/{a}") for a in "xyz"], axis=-1),
        velocity_m_s=np.stack([_floats(orbits, f"velocity/{a}") for a in "xyz"], axis=-1),
    )
    ccs = root.findall("coordinateConversion/coordinateConversionList/coordinateConversion")
    if not ccs:
        raise AnnotationError(f"{label}: no coordinateConversion records (needed for slant to ground range)")
    conversion = CoordinateConversion(
        azimuth_time_s=seconds_since(np.array([parse_time(c.findtext("azimuthTime")) for c in ccs]), epoch),
        slant_range_time_s=_floats(ccs, "slantRangeTime"),
        sr0_m=_floats(ccs, "sr0"),
        srgr=_float_lists(ccs, "srgrCoefficients"),
        gr0_m=_floats(ccs, "gr0"),
        grsr=_float_lists(ccs, "grsrCoefficients"),
    )
    gps = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    grid = GeolocationGrid(
        azimuth_time_s=seconds_since(np.array([parse_time(g.findtext("azimuthTime")) for g in gps]), epoch),
        slant_range_time_s=_floats(gps, "slantRangeTime"),
        line=_floats(gps, "line"),
        pixel=_floats(gps, "pixel"),
        latitude_deg=_floats(gps, "latitude"),
        longitude_deg=_floats(gps, "longitude"),
        height_m=_floats(gps, "height"),
        incidence_angle_deg=_floats(gps, "incidenceAngle"),
        elevation_angle_deg=_floats(gps, "elevationAngle"),
    )
    heights = [float(v.text) for v in root.findall("generalAnnotation/terrainHeightList/terrainHeight/value")]
    return ProductAnnotation(
        header=header,
        pass_direction=t("generalAnnotation/productInformation/pass"),
        platform_heading_deg=float(t("generalAnnotation/productInformation/platformHeading")),
        radar_frequency_hz=float(t("generalAnnotation/productInformation/radarFrequency")),
        range_sampling_rate_hz=float(t("generalAnnotation/productInformation/rangeSamplingRate")),
        image=image,
        orbit=orbit,
        coordinate_conversion=conversion,
        geolocation_grid=grid,
        terrain_height_m=float(np.mean(heights)) if heights else 0.0,
        bistatic_delay_applied=t("imageAnnotation/processingInformation/bistaticDelayCorrectionApplied") == "true",
    )


@dataclass(frozen=True)
class CalibrationAnnotation:
    """The calibration file: LUT vectors of sigmaNought, betaNought, gamma and dn."""

    polarisation: str
    absolute_calibration_constant: float
    sigma_nought: LutVectors
    beta_nought: LutVectors
    gamma: LutVectors
    dn: LutVectors


@dataclass(frozen=True)
class NoiseAnnotation:
    """The noise file: range vectors (noiseRangeLut, or noiseLut before IPF 2.9) and azimuth blocks."""

    polarisation: str
    range_vectors: LutVectors
    azimuth_blocks: tuple[NoiseAzimuthBlock, ...]
    has_azimuth_vectors: bool


def _root(source: str | Path | IO[bytes], label: str, expected: str) -> etree._Element:
    try:
        root = etree.parse(source).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise AnnotationError(f"{label}: not a readable XML file ({exc})") from exc
    if root.tag != expected:
        raise AnnotationError(f"{label}: root element is <{root.tag}>, expected <{expected}>")
    return root


def _vectors(nodes: list[etree._Element], value_tag: str, label: str) -> LutVectors:
    from pipeline.sar.calibration import LutVectors

    if not nodes:
        raise AnnotationError(f"{label}: no vectors with <{value_tag}>")
    try:
        return LutVectors(
            line=np.array([float(n.findtext("line")) for n in nodes]),
            pixel=tuple(np.array(n.findtext("pixel").split(), dtype=np.float64) for n in nodes),
            values=tuple(np.array(n.findtext(value_tag).split(), dtype=np.float64) for n in nodes),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise AnnotationError(f"{label}: malformed <{value_tag}> vectors ({exc})") from exc


def parse_calibration(source: str | Path | IO[bytes], name: str | None = None) -> CalibrationAnnotation:
    """Parse ``annotation/calibration/calibration-*.xml``."""
    label = name or str(getattr(source, "name", source))
    root = _root(source, label, "calibration")
    nodes = root.findall("calibrationVectorList/calibrationVector")
    return CalibrationAnnotation(
        polarisation=_text(root, "adsHeader/polarisation", label),
        absolute_calibration_constant=float(
            root.findtext("calibrationInformation/absoluteCalibrationConstant") or 1.0
        ),
        sigma_nought=_vectors(nodes, "sigmaNought", label),
        beta_nought=_vectors(nodes, "betaNought", label),
        gamma=_vectors(nodes, "gamma", label),
        dn=_vectors(nodes, "dn", label),
    )


def parse_noise(source: str | Path | IO[bytes], name: str | None = None) -> NoiseAnnotation:
    """Parse ``annotation/calibration/noise-*.xml`` (both the IPF >= 2.9 and the older layout)."""
    from pipeline.sar.calibration import NoiseAzimuthBlock

    label = name or str(getattr(source, "name", source))
    root = _root(source, label, "noise")
    range_nodes = root.findall("noiseRangeVectorList/noiseRangeVector")
    if range_nodes:
        range_vectors = _vectors(range_nodes, "noiseRangeLut", label)
    else:  # products before IPF 2.9
        range_vectors = _vectors(root.findall("noiseVectorList/noiseVector"), "noiseLut", label)
    blocks = []
    az_nodes = root.findall("noiseAzimuthVectorList/noiseAzimuthVector")
    for n in az_nodes:
        lines = np.array(n.findtext("line").split(), dtype=np.float64)
        values = np.array(n.findtext("noiseAzimuthLut").split(), dtype=np.float64)
        if lines.size != values.size:
            raise AnnotationError(f"{label}: noiseAzimuthVector has {lines.size} lines but {values.size} values")
        blocks.append(
            NoiseAzimuthBlock(
                swath=n.findtext("swath") or "",
                first_line=int(n.findtext("firstAzimuthLine")),
                last_line=int(n.findtext("lastAzimuthLine")),
                first_pixel=int(n.findtext("firstRangeSample")),
                last_pixel=int(n.findtext("lastRangeSample")),
                line=lines,
                values=values,
            )
        )
    return NoiseAnnotation(
        polarisation=_text(root, "adsHeader/polarisation", label),
        range_vectors=range_vectors,
        azimuth_blocks=tuple(blocks),
        has_azimuth_vectors=bool(az_nodes),
    )
