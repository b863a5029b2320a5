"""Writer of simulated Sentinel-2 L2A products (COG bands, SCL, product and tile metadata).

Layout (the SAFE tree, with cloud-optimised GeoTIFFs where ESA ships JPEG2000,
as the STAC catalogs serve them)::

    S2A_MSIL2A_<start>_N0500_R<orbit>_T<tile>_<generation>.SAFE/
        MTD_MSIL2A.xml
        GRANULE/L2A_T<tile>_A<abs>_<start>/MTD_TL.xml
        GRANULE/L2A_T<tile>_A<abs>_<start>/IMG_DATA/R10m/T<tile>_<start>_B0{2,3,4}_10m.tif
        GRANULE/L2A_T<tile>_A<abs>_<start>/IMG_DATA/R20m/T<tile>_<start>_SCL_20m.tif

The metadata follows the element names of real baseline 05.09 products
(shared/fixtures/s2-l2a-real) for everything the reader uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.crs import CRS

from pipeline.core.grid import MapGrid
from pipeline.optical.reflectance import reflectance_to_dn
from pipeline.simulate.s2_forward import BANDS, SCL, OpticalScene, scl_to_20m
from pipeline.io.atomic import atomic_path

PROCESSING_BASELINE = "05.00"
BOA_ADD_OFFSET = -1000.0
QUANTIFICATION = 10000.0
BAND_IDS = {"B02": 1, "B03": 2, "B04": 3}


@dataclass(frozen=True)
class S2ProductInfo:
    spacecraft: str  # 'Sentinel-2A'
    sensing_time: np.datetime64
    relative_orbit: int
    absolute_orbit: int
    tile: str  # MGRS, e.g. '32TLR'

    @property
    def unit(self) -> str:
        return "S2A" if self.spacecraft.endswith("A") else "S2B"

    @property
    def stamp(self) -> str:
        return np.datetime64(self.sensing_time, "s").astype(object).strftime("%Y%m%dT%H%M%S")

    @property
    def safe_name(self) -> str:
        return f"{self.unit}_MSIL2A_{self.stamp}_N{PROCESSING_BASELINE.replace('.', '')}_R{self.relative_orbit:03d}_T{self.tile}_{self.stamp}.SAFE"

    @property
    def granule(self) -> str:
        return f"L2A_T{self.tile}_A{self.absolute_orbit:06d}_{self.stamp}"


def _iso(t: np.datetime64, unit: str = "ms") -> str:
    return str(np.datetime_as_string(np.datetime64(t, unit), unit=unit)) + "Z"


def write_cog(path: Path, data: NDArray, grid: MapGrid, nodata: int | None, tags: dict[str, str]) -> None:
    """A single-band cloud-optimised GeoTIFF on ``grid``."""
    profile = dict(driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                   crs=CRS.from_epsg(grid.epsg), transform=grid.transform, nodata=nodata, compress="deflate",
                   blocksize=256, overview_resampling="nearest")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**tags)


def product_metadata_xml(info: S2ProductInfo, cloud_percent: float, snow_percent: float) -> bytes:
    offsets = "\n".join(
        f'        <BOA_ADD_OFFSET band_id="{i}">{int(BOA_ADD_OFFSET)}</BOA_ADD_OFFSET>' for i in range(13)
    )
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{_iso(info.sensing_time)}</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>{_iso(info.sensing_time)}</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{info.safe_name}</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{PROCESSING_BASELINE}</PROCESSING_BASELINE>
      <GENERATION_TIME>{_iso(info.sensing_time, "us")}</GENERATION_TIME>
      <Datatake datatakeIdentifier="G{info.unit}_{info.stamp}_{info.absolute_orbit:06d}_N{PROCESSING_BASELINE}">
        <SPACECRAFT_NAME>{info.spacecraft}</SPACECRAFT_NAME>
        <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
        <DATATAKE_SENSING_START>{_iso(info.sensing_time)}</DATATAKE_SENSING_START>
        <SENSING_ORBIT_NUMBER>{info.relative_orbit}</SENSING_ORBIT_NUMBER>
        <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
      </Datatake>
      <Product_Organisation>
        <Granule_List>
          <Granule datastripIdentifier="S2_SIMULATED" granuleIdentifier="{info.granule}" imageFormat="GeoTIFF">
            <IMAGE_FILE>GRANULE/{info.granule}/IMG_DATA/R10m/T{info.tile}_{info.stamp}_B02_10m</IMAGE_FILE>
            <IMAGE_FILE>GRANULE/{info.granule}/IMG_DATA/R10m/T{info.tile}_{info.stamp}_B03_10m</IMAGE_FILE>
            <IMAGE_FILE>GRANULE/{info.granule}/IMG_DATA/R10m/T{info.tile}_{info.stamp}_B04_10m</IMAGE_FILE>
            <IMAGE_FILE>GRANULE/{info.granule}/IMG_DATA/R20m/T{info.tile}_{info.stamp}_SCL_20m</IMAGE_FILE>
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">{int(QUANTIFICATION)}</BOA_QUANTIFICATION_VALUE>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
        <WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      <BOA_ADD_OFFSET_VALUES_LIST>
{offsets}
      </BOA_ADD_OFFSET_VALUES_LIST>
    </Product_Image_Characteristics>
  </n1:General_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>{cloud_percent:.6f}</Cloud_Coverage_Assessment>
    <Image_Content_QI>
      <SNOW_ICE_PERCENTAGE>{snow_percent:.6f}</SNOW_ICE_PERCENTAGE>
    </Image_Content_QI>
  </n1:Quality_Indicators_Info>
</n1:Level-2A_User_Product>
""".encode()


def tile_metadata_xml(info: S2ProductInfo, grid: MapGrid, sun_zenith: float, sun_azimuth: float) -> bytes:
    sizes = "".join(
        f'      <Size resolution="{r}">\n        <NROWS>{int(grid.height * 10 / r)}</NROWS>\n'
        f"        <NCOLS>{int(grid.width * 10 / r)}</NCOLS>\n      </Size>\n"
        for r in (10, 20)
    )
    positions = "".join(
        f'      <Geoposition resolution="{r}">\n        <ULX>{grid.left:.0f}</ULX>\n        <ULY>{grid.top:.0f}</ULY>\n'
        f"        <XDIM>{r}</XDIM>\n        <YDIM>-{r}</YDIM>\n      </Geoposition>\n"
        for r in (10, 20)
    )
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-2A_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd">
  <n1:General_Info>
    <TILE_ID metadataLevel="Brief">{info.unit}_OPER_MSI_L2A_TL_SIMU_{info.stamp}_A{info.absolute_orbit:06d}_T{info.tile}_N{PROCESSING_BASELINE}</TILE_ID>
    <SENSING_TIME metadataLevel="Standard">{_iso(info.sensing_time, "us")}</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Tile_Geocoding metadataLevel="Brief">
      <HORIZONTAL_CS_NAME>WGS84 / UTM zone {grid.epsg % 100}N</HORIZONTAL_CS_NAME>
      <HORIZONTAL_CS_CODE>EPSG:{grid.epsg}</HORIZONTAL_CS_CODE>
{sizes}{positions}    </Tile_Geocoding>
    <Tile_Angles metadataLevel="Standard">
      <Mean_Sun_Angle>
        <ZENITH_ANGLE unit="deg">{sun_zenith:.10f}</ZENITH_ANGLE>
        <AZIMUTH_ANGLE unit="deg">{sun_azimuth:.10f}</AZIMUTH_ANGLE>
      </Mean_Sun_Angle>
    </Tile_Angles>
  </n1:Geometric_Info>
</n1:Level-2A_Tile_ID>
""".encode()


def write_l2a_product(directory: Path, info: S2ProductInfo, scene: OpticalScene, grid: MapGrid) -> Path:
    """Write one L2A product atomically; the metadata's cloud cover is measured on the written SCL."""
    if grid.width % 2 or grid.height % 2:
        raise ValueError("the 10 m grid needs an even size for the 20 m SCL")
    scl20 = scl_to_20m(scene.scl)
    cloudy = np.isin(scl20, (SCL.CLOUD_MEDIUM, SCL.CLOUD_HIGH, SCL.THIN_CIRRUS))
    valid = scl20 != SCL.NO_DATA
    cloud_percent = float(100.0 * cloudy[valid].mean())
    snow_percent = float(100.0 * (scl20[valid] == SCL.SNOW).mean())
    target = Path(directory) / info.safe_name
    with atomic_path(target) as safe:
        img = safe / "GRANULE" / info.granule / "IMG_DATA"
        (img / "R10m").mkdir(parents=True)
        (img / "R20m").mkdir(parents=True)
        for k, band in enumerate(BANDS):
            dn = reflectance_to_dn(scene.reflectance[k], BOA_ADD_OFFSET, QUANTIFICATION)
            write_cog(img / "R10m" / f"T{info.tile}_{info.stamp}_{band}_10m.tif", dn, grid, 0,
                      {"BAND": band, "BOA_ADD_OFFSET": str(BOA_ADD_OFFSET), "QUANTIFICATION_VALUE": str(QUANTIFICATION)})
        write_cog(img / "R20m" / f"T{info.tile}_{info.stamp}_SCL_20m.tif", scl20, grid.resampled(20.0), 0,
                  {"BAND": "SCL"})
        (safe / "MTD_MSIL2A.xml").write_bytes(product_metadata_xml(info, cloud_percent, snow_percent))
        (safe / "GRANULE" / info.granule / "MTD_TL.xml").write_bytes(
            tile_metadata_xml(info, grid, scene.sun_zenith_deg, scene.sun_azimuth_deg)
        )
    return target


def band_paths(safe: Path) -> dict[str, Path]:
    """Paths of B02, B03, B04 and SCL inside a product written by :func:`write_l2a_product`."""
    out = {}
    for p in sorted(Path(safe).glob("GRANULE/*/IMG_DATA/R*/*.tif")):
        out[p.stem.split("_")[-2]] = p
    return out
