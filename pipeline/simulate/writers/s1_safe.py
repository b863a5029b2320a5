"""Writer of Sentinel-1 IW GRDH SAFE products (the simulated world's format).

Follows the real layout element by element for everything a reader uses
(see the real products in shared/fixtures/s1-grd-real):

``<NAME>.SAFE/manifest.safe`` (MD5 and size of every file),
``annotation/s1a-iw-grd-vv-<start>-<stop>-<orbit>-<datatake>-001.xml`` (VH: ``-002``),
``annotation/calibration/calibration-*.xml`` and ``noise-*.xml`` (IPF >= 2.9 layout),
``measurement/*.tiff`` (uint16 GeoTIFF, numberOfLines x numberOfSamples,
georeferenced only by GCPs from the geolocation grid).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from lxml import etree
from lxml.builder import E
from numpy.typing import NDArray
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from pipeline.sar.annotation import ProductAnnotation
from pipeline.sar.calibration import LutVectors
from pipeline.simulate.s1_design import ProductDesign
from pipeline.io.atomic import atomic_path
from pipeline.io.checksums import file_md5

IPF_VERSION = "003.31"


def fmt_time(t: np.datetime64) -> str:
    """Annotation time format: '2021-04-01T05:26:23.794457' (UTC, microseconds)."""
    return str(np.datetime_as_string(np.datetime64(t, "us"), unit="us"))


def _time_at(epoch: np.datetime64, seconds: float) -> str:
    return fmt_time(epoch + np.timedelta64(int(round(seconds * 1e9)), "ns"))


def _e(x: float) -> str:
    return f"{x:.15e}"


def _vector(tag: str, values, fmt: str = "{:.6e}") -> etree._Element:
    values = list(values)
    el = E(tag, " ".join(fmt.format(v) for v in values))
    el.set("count", str(len(values)))
    return el


def _counted(tag: str, children: list[etree._Element]) -> etree._Element:
    el = E(tag, *children)
    el.set("count", str(len(children)))
    return el


@dataclass(frozen=True)
class ProductNames:
    """File names of one product in ESA's pattern."""

    safe: str
    stem: dict[str, str]  # per polarisation: 's1a-iw-grd-vv-<start>-<stop>-<orbit>-<dt>-001'

    @classmethod
    def of(cls, annotation: ProductAnnotation, polarisations: tuple[str, ...]) -> "ProductNames":
        h = annotation.header
        start = np.datetime64(h.start_time, "s").astype(object).strftime("%Y%m%dT%H%M%S")
        stop = np.datetime64(h.stop_time, "s").astype(object).strftime("%Y%m%dT%H%M%S")
        take = h.mission_data_take_id
        crc = zlib.crc32(f"{h.mission_id}{start}{stop}{take}".encode()) & 0xFFFF
        pol_code = "DV" if set(polarisations) == {"VV", "VH"} else "SV"
        safe = f"{h.mission_id}_IW_GRDH_1S{pol_code[0]}{pol_code[1]}_{start}_{stop}_{h.absolute_orbit:06d}_{take:06X}_{crc:04X}.SAFE"
        stems = {}
        for i, pol in enumerate(polarisations, start=1):
            stems[pol] = (
                f"{h.mission_id.lower()}-iw-grd-{pol.lower()}-{start.lower()}-{stop.lower()}-"
                f"{h.absolute_orbit:06d}-{take:06x}-{i:03d}"
            )
        return cls(safe=safe, stem=stems)


def _ads_header(ann: ProductAnnotation, pol: str) -> etree._Element:
    h = ann.header
    return E.adsHeader(
        E.missionId(h.mission_id),
        E.productType(h.product_type),
        E.polarisation(pol),
        E.mode(h.mode),
        E.swath(h.swath),
        E.startTime(fmt_time(h.start_time)),
        E.stopTime(fmt_time(h.stop_time)),
        E.absoluteOrbitNumber(str(h.absolute_orbit)),
        E.missionDataTakeId(str(h.mission_data_take_id)),
        E.imageNumber("001" if pol == "VV" else "002"),
    )


def annotation_xml(design: ProductDesign, pol: str) -> bytes:
    """The product annotation file of one polarisation."""
    ann = design.annotation
    img = ann.image
    epoch = img.first_line_time
    orbit = ann.orbit
    orbits = [
        E.orbit(
            E.time(_time_at(epoch, t)),
            E.frame("Earth Fixed"),
            E.position(E.x(_e(p[0])), E.y(_e(p[1])), E.z(_e(p[2]))),
            E.velocity(E.x(_e(v[0])), E.y(_e(v[1])), E.z(_e(v[2]))),
        )
        for t, p, v in zip(orbit.time_s, orbit.position_m, orbit.velocity_m_s)
    ]
    cc = ann.coordinate_conversion
    conversions = [
        E.coordinateConversion(
            E.azimuthTime(_time_at(epoch, cc.azimuth_time_s[i])),
            E.slantRangeTime(_e(cc.slant_range_time_s[i])),
            E.sr0(_e(cc.sr0_m[i])),
            _vector("srgrCoefficients", cc.srgr[i], "{:.15e}"),
            E.gr0(_e(cc.gr0_m[i])),
            _vector("grsrCoefficients", cc.grsr[i], "{:.15e}"),
        )
        for i in range(cc.azimuth_time_s.size)
    ]
    g = ann.geolocation_grid
    points = [
        E.geolocationGridPoint(
            E.azimuthTime(_time_at(epoch, g.azimuth_time_s[i])),
            E.slantRangeTime(_e(g.slant_range_time_s[i])),
            E.line(str(int(g.line[i]))),
            E.pixel(str(int(g.pixel[i]))),
            E.latitude(_e(g.latitude_deg[i])),
            E.longitude(_e(g.longitude_deg[i])),
            E.height(_e(g.height_m[i])),
            E.incidenceAngle(_e(g.incidence_angle_deg[i])),
            E.elevationAngle(_e(g.elevation_angle_deg[i])),
        )
        for i in range(g.line.size)
    ]
    heights = [
        E.terrainHeight(E.azimuthTime(_time_at(epoch, t)), E.value(_e(ann.terrain_height_m)))
        for t in np.arange(-10.0, img.last_line_time_s + 10.0, 10.0)
    ]
    product = E.product(
        _ads_header(ann, pol),
        E.qualityInformation(E.productQualityIndex(_e(0.0)), _counted("qualityDataList", [])),
        E.generalAnnotation(
            E.productInformation(
                E("pass", ann.pass_direction),
                E.timelinessCategory("Fast-24h"),
                E.platformHeading(_e(ann.platform_heading_deg)),
                E.projection("Ground Range"),
                E.rangeSamplingRate(_e(ann.range_sampling_rate_hz)),
                E.radarFrequency(_e(ann.radar_frequency_hz)),
                E.azimuthSteeringRate(_e(1.590368784)),
            ),
            _counted("downlinkInformationList", []),
            _counted("orbitList", orbits),
            _counted("attitudeList", []),
            _counted("rawDataAnalysisList", []),
            _counted("replicaInformationList", []),
            _counted("noiseList", []),
            _counted("terrainHeightList", heights),
            _counted("azimuthFmRateList", []),
        ),
        E.imageAnnotation(
            E.imageInformation(
                E.productFirstLineUtcTime(fmt_time(epoch)),
                E.productLastLineUtcTime(_time_at(epoch, img.last_line_time_s)),
                E.ascendingNodeTime(fmt_time(img.ascending_node_time)),
                E.anchorTime(fmt_time(epoch)),
                E.productComposition("Assembled"),
                E.sliceNumber("0"),
                _counted("sliceList", []),
                E.slantRangeTime(_e(img.slant_range_time_s)),
                E.pixelValue("Detected"),
                E.outputPixels("16 bit Unsigned Integer"),
                E.rangePixelSpacing(f"{img.range_pixel_spacing_m:.6e}"),
                E.azimuthPixelSpacing(f"{img.azimuth_pixel_spacing_m:.6e}"),
                E.azimuthTimeInterval(_e(img.azimuth_time_interval_s)),
                E.azimuthFrequency(_e(1.0 / img.azimuth_time_interval_s)),
                E.numberOfSamples(str(img.number_of_samples)),
                E.numberOfLines(str(img.number_of_lines)),
                E.zeroDopMinusAcqTime(_e(0.0)),
                E.incidenceAngleMidSwath(_e(img.incidence_angle_mid_swath_deg)),
            ),
            E.processingInformation(
                E.rangeSpreadingLossCompensationApplied("true"),
                E.srgrConversionApplied("true"),
                E.detectionPerformed("true"),
                E.thermalNoiseCorrectionPerformed("false"),
                E.applicationLutId("IW_Default"),
                E.referenceRange(_e(8.0e5)),
                E.ellipsoidName("WGS84"),
                E.ellipsoidSemiMajorAxis(_e(6378137.0)),
                E.ellipsoidSemiMinorAxis(_e(6356752.314245)),
                E.bistaticDelayCorrectionApplied("true" if ann.bistatic_delay_applied else "false"),
                E.topsFilterConvention("Only Echo Lines"),
                E.orbitSource("Downlink"),
                E.attitudeSource("Downlink"),
            ),
        ),
        E.dopplerCentroid(_counted("dcEstimateList", [])),
        E.antennaPattern(_counted("antennaPatternList", [])),
        E.swathTiming(E.linesPerBurst("0"), E.samplesPerBurst("0"), _counted("burstList", [])),
        E.geolocationGrid(_counted("geolocationGridPointList", points)),
        E.coordinateConversion(_counted("coordinateConversionList", conversions)),
        E.swathMerging(
            _counted(
                "swathMergeList",
                [
                    E.swathMerge(
                        E.swath("IW2"),
                        _counted(
                            "swathBoundsList",
                            [
                                E.swathBounds(
                                    E.azimuthTime(fmt_time(epoch)),
                                    E.firstAzimuthLine("0"),
                                    E.firstRangeSample("0"),
                                    E.lastAzimuthLine(str(img.number_of_lines - 1)),
                                    E.lastRangeSample(str(img.number_of_samples - 1)),
                                )
                            ],
                        ),
                    )
                ],
            )
        ),
    )
    return etree.tostring(product, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _lut_vectors(tag: str, v: LutVectors, names: list[str], tables: list[LutVectors], epoch, dt: float):
    out = []
    for i, line in enumerate(v.line):
        children = [E.azimuthTime(_time_at(epoch, line * dt)), E.line(str(int(line))),
                    _vector("pixel", v.pixel[i], "{:.0f}")]
        for name, table in zip(names, tables):
            children.append(_vector(name, table.values[i]))
        out.append(E(tag, *children))
    return out


def calibration_xml(design: ProductDesign, pol: str) -> bytes:
    ann, cal = design.annotation, design.calibration
    epoch, dt = ann.image.first_line_time, ann.image.azimuth_time_interval_s
    vectors = _lut_vectors(
        "calibrationVector", cal.sigma_nought, ["sigmaNought", "betaNought", "gamma", "dn"],
        [cal.sigma_nought, cal.beta_nought, cal.gamma, cal.dn], epoch, dt,
    )
    root = E.calibration(
        _ads_header(ann, pol),
        E.calibrationInformation(E.absoluteCalibrationConstant(f"{cal.absolute_calibration_constant:.6e}")),
        _counted("calibrationVectorList", vectors),
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def noise_xml(design: ProductDesign, pol: str) -> bytes:
    ann, noise = design.annotation, design.noise
    epoch, dt = ann.image.first_line_time, ann.image.azimuth_time_interval_s
    rng = noise.range_vectors
    range_vectors = _lut_vectors("noiseRangeVector", rng, ["noiseRangeLut"], [rng], epoch, dt)
    az = [
        E.noiseAzimuthVector(
            E.swath(b.swath),
            E.firstAzimuthLine(str(b.first_line)),
            E.firstRangeSample(str(b.first_pixel)),
            E.lastAzimuthLine(str(b.last_line)),
            E.lastRangeSample(str(b.last_pixel)),
            _vector("line", b.line, "{:.0f}"),
            _vector("noiseAzimuthLut", b.values),
        )
        for b in noise.azimuth_blocks
    ]
    root = E.noise(
        _ads_header(ann, pol),
        _counted("noiseRangeVectorList", range_vectors),
        _counted("noiseAzimuthVectorList", az),
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_measurement(path: Path, dn: NDArray[np.uint16], ann: ProductAnnotation) -> None:
    """uint16 GeoTIFF of the image, georeferenced by GCPs (EPSG:4326) from the geolocation grid."""
    g = ann.geolocation_grid
    gcps = [
        GroundControlPoint(row=float(g.line[i]), col=float(g.pixel[i]), x=float(g.longitude_deg[i]),
                           y=float(g.latitude_deg[i]), z=float(g.height_m[i]), id=str(i + 1))
        for i in range(g.line.size)
    ]
    profile = dict(driver="GTiff", width=dn.shape[1], height=dn.shape[0], count=1, dtype="uint16",
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate", nodata=None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn, 1)
        dst.gcps = (gcps, CRS.from_epsg(4326))



def manifest_xml(safe_dir: Path, design: ProductDesign, relative_orbit: int, files: list[tuple[str, str, str]]) -> bytes:
    """manifest.safe: product metadata and one dataObject (size, MD5) per file.

    ``files``: (dataObject ID, repID, path relative to the SAFE) in manifest order
    (annotation entries before measurement entries).
    """
    ann = design.annotation
    h = ann.header
    ns = {
        "xfdu": "urn:ccsds:schema:xfdu:1",
        "safe": "http://www.esa.int/safe/sentinel-1.0",
        "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1",
        "s1sarl1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1",
        "gml": "http://www.opengis.net/gml",
    }
    g = ann.geolocation_grid
    corners = [f"{lat:.6f},{lon:.6f}" for lat, lon in g.corners()]
    platform_number = h.mission_id[-1]
    rows = []
    for obj_id, rep_id, rel in files:
        path = safe_dir / rel
        mime = "application/octet-stream" if rel.endswith(".tiff") else "text/xml"
        rows.append(
            f'    <dataObject ID="{obj_id}" repID="{rep_id}">\n'
            f'      <byteStream mimeType="{mime}" size="{path.stat().st_size}">\n'
            f'        <fileLocation locatorType="URL" href="./{rel}"/>\n'
            f'        <checksum checksumName="MD5">{file_md5(path)}</checksum>\n'
            f"      </byteStream>\n    </dataObject>"
        )
    pointers = "\n".join(
        f'      <xfdu:contentUnit unitType="{"Measurement Data Unit" if rep == "s1Level1MeasurementSchema" else "Metadata Unit"}" repID="{rep}">\n'
        f'        <dataObjectPointer dataObjectID="{oid}"/>\n      </xfdu:contentUnit>'
        for oid, rep, _ in files
    )
    pols = "".join(
        f"            <s1sarl1:transmitterReceiverPolarisation>{p}</s1sarl1:transmitterReceiverPolarisation>\n"
        for p in ("VV", "VH")
    )
    ns_decl = " ".join(f'xmlns:{k}="{v}"' for k, v in ns.items())
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU {ns_decl} version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/standard/iwdp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 IW Level-1 GRD Product" dmdID="acquisitionPeriod platform generalProductInformation measurementOrbitReference measurementFrameSet" pdiID="processing">
{pointers}
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">
        <xmlData>
          <safe:processing name="GRD Post Processing" start="{fmt_time(h.stop_time)}" stop="{fmt_time(h.stop_time)}">
            <safe:facility country="None" name="sardem simulator" organisation="sardem" site="offline">
              <safe:software name="Sentinel-1 IPF" version="{IPF_VERSION}"/>
            </safe:facility>
          </safe:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:nssdcIdentifier>{"2014-016A" if platform_number == "A" else "2016-025A"}</safe:nssdcIdentifier>
            <safe:familyName>SENTINEL-1</safe:familyName>
            <safe:number>{platform_number}</safe:number>
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
              <safe:extension>
                <s1sarl1:instrumentMode>
                  <s1sarl1:mode>IW</s1sarl1:mode>
                  <s1sarl1:swath>IW</s1sarl1:swath>
                </s1sarl1:instrumentMode>
              </safe:extension>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference">
        <xmlData>
          <safe:orbitReference>
            <safe:orbitNumber type="start">{h.absolute_orbit}</safe:orbitNumber>
            <safe:orbitNumber type="stop">{h.absolute_orbit}</safe:orbitNumber>
            <safe:relativeOrbitNumber type="start">{relative_orbit}</safe:relativeOrbitNumber>
            <safe:relativeOrbitNumber type="stop">{relative_orbit}</safe:relativeOrbitNumber>
            <safe:cycleNumber>{(h.absolute_orbit - 73) // 175 + 1}</safe:cycleNumber>
            <safe:phaseIdentifier>1</safe:phaseIdentifier>
            <safe:extension>
              <s1:orbitProperties>
                <s1:pass>{ann.pass_direction.upper()}</s1:pass>
                <s1:ascendingNodeTime>{fmt_time(ann.image.ascending_node_time)}</s1:ascendingNodeTime>
              </s1:orbitProperties>
            </safe:extension>
          </safe:orbitReference>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information">
        <xmlData>
          <s1sarl1:standAloneProductInformation>
            <s1sarl1:instrumentConfigurationID>1</s1sarl1:instrumentConfigurationID>
            <s1sarl1:missionDataTakeID>{h.mission_data_take_id}</s1sarl1:missionDataTakeID>
{pols}            <s1sarl1:productClass>S</s1sarl1:productClass>
            <s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>
            <s1sarl1:productComposition>Assembled</s1sarl1:productComposition>
            <s1sarl1:productType>GRD</s1sarl1:productType>
            <s1sarl1:productTimelinessCategory>Fast-24h</s1sarl1:productTimelinessCategory>
            <s1sarl1:sliceProductFlag>false</s1sarl1:sliceProductFlag>
          </s1sarl1:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period">
        <xmlData>
          <safe:acquisitionPeriod>
            <safe:startTime>{fmt_time(h.start_time)}</safe:startTime>
            <safe:stopTime>{fmt_time(h.stop_time)}</safe:stopTime>
          </safe:acquisitionPeriod>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Frame Set">
        <xmlData>
          <safe:frameSet>
            <safe:frame>
              <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">
                <gml:coordinates>{" ".join(corners)}</gml:coordinates>
              </safe:footPrint>
            </safe:frame>
          </safe:frameSet>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="s1Level1ProductSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="XML Schema" locatorType="URL" href="./support/s1-level-1-product.xsd"/>
    </metadataObject>
    <metadataObject ID="s1Level1NoiseSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="XML Schema" locatorType="URL" href="./support/s1-level-1-noise.xsd"/>
    </metadataObject>
    <metadataObject ID="s1Level1CalibrationSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="XML Schema" locatorType="URL" href="./support/s1-level-1-calibration.xsd"/>
    </metadataObject>
    <metadataObject ID="s1Level1MeasurementSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="SDF" locatorType="URL" href="./support/s1-level-1-measurement.xsd"/>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
{chr(10).join(rows)}
  </dataObjectSection>
</xfdu:XFDU>
"""
    return text.encode()


def write_safe(directory: Path, design: ProductDesign, dn: dict[str, NDArray[np.uint16]], relative_orbit: int) -> Path:
    """Write a dual-polarisation GRD SAFE under ``directory``; returns the SAFE path (written atomically)."""
    pols = tuple(dn)
    names = ProductNames.of(design.annotation, pols)
    target = Path(directory) / names.safe
    with atomic_path(target) as safe:
        (safe / "annotation" / "calibration").mkdir(parents=True)
        (safe / "measurement").mkdir()
        annotations, measurements = [], []
        for pol in pols:
            d = design.for_polarisation(pol)
            stem = names.stem[pol]
            oid = stem.replace("-", "")
            (safe / "annotation" / f"{stem}.xml").write_bytes(annotation_xml(d, pol))
            (safe / "annotation" / "calibration" / f"calibration-{stem}.xml").write_bytes(calibration_xml(d, pol))
            (safe / "annotation" / "calibration" / f"noise-{stem}.xml").write_bytes(noise_xml(d, pol))
            write_measurement(safe / "measurement" / f"{stem}.tiff", dn[pol], d.annotation)
            annotations += [
                (f"product{oid}", "s1Level1ProductSchema", f"annotation/{stem}.xml"),
                (f"noise{oid}", "s1Level1NoiseSchema", f"annotation/calibration/noise-{stem}.xml"),
                (f"calibration{oid}", "s1Level1CalibrationSchema", f"annotation/calibration/calibration-{stem}.xml"),
            ]
            measurements.append((oid, "s1Level1MeasurementSchema", f"measurement/{stem}.tiff"))
        (safe / "manifest.safe").write_bytes(
            manifest_xml(safe, design, relative_orbit, annotations + measurements)
        )
    return target
