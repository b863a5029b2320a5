"""Quicklooks of a simulated world's products, read back through the product readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from pipeline.io import quicklook as q
from pipeline.dem.hgt import hgt_vsi_path
from pipeline.optical.metadata import parse_product_metadata
from pipeline.optical.reflectance import dn_to_reflectance
from pipeline.sar.annotation import parse_calibration, parse_noise
from pipeline.sar.calibration import calibrate, interpolate_lut, noise_power


def calibrated_sigma0_db(safe: Path, pol: str) -> np.ndarray:
    """sigma0 (dB) of a whole GRD measurement, noise removed (small products only: reads all of it)."""
    with rasterio.open(next(safe.glob(f"measurement/*-{pol.lower()}-*.tiff"))) as src:
        dn = src.read(1)
    cal = parse_calibration(next(safe.glob(f"annotation/calibration/calibration-*-{pol.lower()}-*.xml")))
    noise = parse_noise(next(safe.glob(f"annotation/calibration/noise-*-{pol.lower()}-*.xml")))
    lines, pixels = np.arange(dn.shape[0]), np.arange(dn.shape[1])
    s0, _ = calibrate(dn, interpolate_lut(cal.sigma_nought, lines, pixels),
                      noise_power(noise.range_vectors, noise.azimuth_blocks, lines, pixels))
    return 10 * np.log10(s0)


def world_quicklooks(root: str | Path, out_dir: str | Path, date_index: int = 0, max_size: int = 900) -> list[Path]:
    """SAR [VV, VH, 0] (``simulated_s1_vv_vh_<pass>.png``, radar geometry), DEM hillshade, optical RGB and
    SCL PNGs of one date of a simulated world."""
    root, out_dir = Path(root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = json.loads((root / "truth" / "world.json").read_text())
    s1 = root / "sentinel1" / f"{truth['sentinel1'][date_index]['id']}.SAFE"
    s2 = root / "sentinel2" / f"{truth['sentinel2'][date_index]['id']}.SAFE"
    written = []
    sar = q.sar_rgb(calibrated_sigma0_db(s1, "VV"), calibrated_sigma0_db(s1, "VH"))
    pass_direction = truth["sentinel1"][date_index].get("pass", "descending")
    written.append(q.save_png(out_dir / f"simulated_s1_vv_vh_{pass_direction}.png", sar, max_size))

    tile = truth["tile"]
    grid = truth["world_grid"]
    with rasterio.open(hgt_vsi_path(root / "dem" / f"{tile}.SRTMGL1.hgt.zip")) as src:
        from rasterio.warp import transform_bounds
        from rasterio.windows import from_bounds

        left, top, res = grid["left"], grid["top"], grid["resolution"]
        bounds = (left, top - grid["height"] * res, left + grid["width"] * res, top)
        window = from_bounds(*transform_bounds(f"EPSG:{grid['epsg']}", src.crs, *bounds), src.transform)
        dem = src.read(1, window=window.round_offsets().round_lengths()).astype(np.float64)
    dem[dem == -32768] = np.nan
    lat = float(np.radians(np.mean(transform_bounds(f"EPSG:{grid['epsg']}", "EPSG:4326", *bounds)[1::2])))
    arcsec_m = 6_371_000.0 * np.pi / 180 / 3600  # 1 arc-second of latitude, about 30.9 m
    shade = q.hillshade(np.nan_to_num(dem, nan=np.nanmean(dem)), (arcsec_m, arcsec_m * np.cos(lat)))
    written.append(q.save_png(out_dir / "simulated_srtm_hillshade.png", shade, max_size))

    meta = parse_product_metadata(s2 / "MTD_MSIL2A.xml")
    bands = {}
    for band in ("B04", "B03", "B02"):
        with rasterio.open(next(s2.glob(f"GRANULE/*/IMG_DATA/R10m/*_{band}_10m.tif"))) as src:
            bands[band] = dn_to_reflectance(src.read(1), meta.offset(band), meta.quantification_value)
    rgb = np.dstack([q.stretch(bands[b], 0.0, 0.25) for b in ("B04", "B03", "B02")])
    written.append(q.save_png(out_dir / "simulated_s2_rgb.png", rgb, max_size))
    with rasterio.open(next(s2.glob("GRANULE/*/IMG_DATA/R20m/*_SCL_20m.tif"))) as src:
        scl = src.read(1)
    written.append(q.save_png(out_dir / "simulated_s2_scl.png", q.scl_rgb(scl), max_size))
    return written
