"""Orchestration: build the simulated world and write all its products, truth and STAC catalog.

Layout under the output directory::

    catalog.json, sentinel-1-grd/..., sentinel-2-l2a/...   static STAC catalog
    sentinel1/<S1 product>.SAFE                            GRD products
    sentinel2/<S2 product>.SAFE                            L2A products (COGs)
    dem/N45E006.SRTMGL1.hgt.zip                            SRTM 1" tile(s), as ESA's mirror serves them
    truth/                                                 what the simulator knows (not part of any product)
        world.json                 spec, grids, corner reflectors (map and radar positions)
        landcover.tif              classes on the world grid (10 m, UTM)
        <S1 id>_distortion.tif     bits 2/4 active/passive layover, 8/16 active/passive shadow (world grid),
                                   64 shadow undetermined, 128 outside the product's image
        <S1 id>_sigma0_{vv,vh}.tif noise-free, speckle-free sigma0 in radar geometry (linear)
        <S2 id>_reflectance.tif    surface reflectance B02, B03, B04 before quantisation
        <S2 id>_snow.tif           seasonal snow mask
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
from tqdm import tqdm

from pipeline.io.atomic import atomic_path
from pipeline.dem.hgt import hgt_zip_name
from pipeline.simulate.writers.hgt import write_hgt_zip
from pipeline.io.rasters import write_geotiff
from pipeline.simulate.writers.s1_safe import ProductNames, write_safe
from pipeline.simulate.writers.s2_product import PROCESSING_BASELINE, S2ProductInfo, band_paths, write_l2a_product
from pipeline.simulate.writers.stac_catalog import sentinel1_item, sentinel2_item, write_catalog
from pipeline.optical.metadata import parse_product_metadata
from pipeline.sar.distortion import ACTIVE_LAYOVER, ACTIVE_SHADOW, PASSIVE_LAYOVER, PASSIVE_SHADOW
from pipeline.simulate import landcover, scene
from pipeline.simulate.s1_forward import FacetGeometry
from pipeline.simulate.world import WorldSpec, aoi_grid

#: bit of the truth's distortion raster: the shadow ray left the simulated grid before clearing the terrain
TRUTH_INCOMPLETE = 64
#: bit of the truth's distortion raster: the ground is imaged outside the product's image (no data there, and
#: the ground it would share an image cell with may lie beyond the simulated grid)
TRUTH_OUTSIDE_IMAGE = 128

log = logging.getLogger(__name__)


def _grid_dict(grid) -> dict[str, Any]:
    return {"epsg": grid.epsg, "left": grid.left, "top": grid.top, "resolution": grid.resolution,
            "width": grid.width, "height": grid.height}


def simulate(
    sim_config: dict[str, Any], out_dir: str | Path, geoid_grid: str | None = None, threads: int = 1
) -> Path:
    """Simulate the world of ``sim_config`` into ``out_dir`` (replaced atomically), ``threads`` dates at a time.
    Returns catalog.json."""
    spec = WorldSpec.from_config(sim_config)
    t0 = time.perf_counter()
    log.info("building the world (terrain, land cover, radar facets) for tile %s", spec.tile)
    world = scene.build_world(spec, geoid_grid)
    log.info("world ready in %.1f s: grid %d x %d at %g m", time.perf_counter() - t0, world.grid.width,
             world.grid.height, world.grid.resolution)
    return write_world(world, out_dir, threads)


def write_world(world: scene.World, out_dir: str | Path, threads: int = 1) -> Path:
    """Simulate every date of ``world`` and write products, truth and catalog into ``out_dir`` (atomically);
    ``threads`` dates at a time (the bytes do not depend on it)."""
    spec = world.spec
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    with atomic_path(out_dir) as root:
        root.mkdir(parents=True)
        truth = root / "truth"
        truth.mkdir()
        (root / "dem").mkdir()
        write_hgt_zip(root / "dem" / hgt_zip_name(spec.tile), spec.tile, world.hgt_heights)
        write_geotiff(truth / "landcover.tif", world.cover, world.grid, 255,
                      {"classes": json.dumps(landcover.COVER_NAMES)})
        to_geo = pyproj.Transformer.from_crs(f"EPSG:{world.grid.epsg}", "EPSG:4326", always_xy=True)
        left, bottom, right, top = world.grid.bounds
        footprint = [to_geo.transform(x, y) for x, y in ((left, bottom), (right, bottom), (right, top), (left, top))]
        # dates are independent (each draws from its own seeded generator), so they run side by side; the
        # compiled kernels, NumPy and GDAL release the GIL for most of the work; results keep the date order
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            done = pool.map(lambda i: _write_date(world, i, root, footprint), range(len(spec.dates)))
            dates = list(tqdm(done, total=len(spec.dates), desc="simulated dates", unit="date"))
        s1_items, s2_items, s1_truth, s2_truth = (list(column) for column in zip(*dates))

        world_json = {
            "tile": spec.tile,
            "seed": spec.seed,
            "aoi_grid": _grid_dict(aoi_grid(spec)),
            "world_grid": _grid_dict(world.grid),
            "reference_height_m": world.reference_height_m,
            "geoid": "EGM96 (heights in the HGT are orthometric)",
            "reflectors": [cr.__dict__ for cr in world.reflectors],
            "sentinel1": s1_truth,
            "sentinel2": s2_truth,
        }
        (truth / "world.json").write_text(json.dumps(world_json, indent=2))
        write_catalog(root, s1_items, s2_items, f"Simulated Alpine world {spec.tile}, seed {spec.seed}")
    log.info("simulated %d dates in %.1f s into %s", len(spec.dates), time.perf_counter() - t0, out_dir)
    return out_dir / "catalog.json"


def truth_flags(f: FacetGeometry, image_shape: tuple[int, int]) -> np.ndarray:
    """The truth's distortion raster (uint8 bits of :mod:`pipeline.sar.distortion`, plus
    :data:`TRUTH_INCOMPLETE` and :data:`TRUTH_OUTSIDE_IMAGE`) of one date's facets; ``image_shape``:
    (lines, pixels) of the product's image."""
    lines, pixels = image_shape
    outside = (f.line < -0.5) | (f.line > lines - 0.5) | (f.pixel < -0.5) | (f.pixel > pixels - 0.5)
    return (
        f.active_layover * ACTIVE_LAYOVER | (f.layover & ~f.active_layover) * PASSIVE_LAYOVER
        | f.active_shadow * ACTIVE_SHADOW | (f.shadow & ~f.active_shadow) * PASSIVE_SHADOW
        | ~f.truth_complete * TRUTH_INCOMPLETE | outside * TRUTH_OUTSIDE_IMAGE
    ).astype(np.uint8)


def _write_date(
    world: scene.World, i: int, root: Path, footprint: list[tuple[float, float]]
) -> tuple[dict, dict, dict, dict]:
    """Simulate and write date ``i``: its Sentinel-1 SAFE and Sentinel-2 product, their truth rasters; return
    the two STAC items and the two truth records."""
    spec = world.spec
    date = spec.dates[i]
    truth = root / "truth"
    s1 = scene.simulate_sentinel1(world, i)
    safe = write_safe(root / "sentinel1", s1.design, s1.dn, s1.acquisition.relative_orbit)
    pid = safe.name.removesuffix(".SAFE")
    names = ProductNames.of(s1.design.annotation, tuple(s1.dn))
    files = {
        pol: {
            "measurement": safe / "measurement" / f"{names.stem[pol]}.tiff",
            "product": safe / "annotation" / f"{names.stem[pol]}.xml",
            "calibration": safe / "annotation" / "calibration" / f"calibration-{names.stem[pol]}.xml",
            "noise": safe / "annotation" / "calibration" / f"noise-{names.stem[pol]}.xml",
        }
        for pol in s1.dn
    }
    s1_item = sentinel1_item(safe, s1.design.annotation, s1.acquisition.relative_orbit, files)
    image = s1.design.annotation.image
    write_geotiff(truth / f"{pid}_distortion.tif",
                  truth_flags(s1.facets, (image.number_of_lines, image.number_of_samples)), world.grid, None,
                  {"bits": "2 active layover, 4 passive layover, 8 active shadow, 16 passive shadow "
                           "(as pipeline.sar.distortion; foreshortening is not part of the truth), "
                           "64 shadow undetermined (the ray to the antenna leaves the simulated grid), "
                           "128 imaged outside the product's image",
                   "method": "forward model: ray casting to the antenna, shared image cells "
                             "(pipeline.simulate.radar_truth)"})
    for pol, sigma0 in s1.sigma0_true.items():
        write_geotiff(truth / f"{pid}_sigma0_{pol.lower()}.tif", sigma0, None, None,
                      {"units": "linear sigma0 (ellipsoid-referenced), radar geometry"})
    s1_record = {
        "id": pid, "time": str(date.s1_time), "pass": date.pass_direction,
        "baseline_m": {"perpendicular": s1.baseline_m[0], "parallel": s1.baseline_m[1]},
        "snow": {"line_m": date.snow_line_m, "wet": date.wet_snow},
        "distortion_fractions": {"shadow": float(s1.facets.shadow.mean()),
                                 "layover": float(s1.facets.layover.mean())},
        "reflectors": [{"name": cr.name, "line": l, "pixel": p} for cr, (l, p) in zip(world.reflectors, s1.reflector_radar)],
    }

    del s1  # its facets and images are written: free them before the optical scene is made
    s2 = scene.simulate_sentinel2(world, i)
    info = S2ProductInfo("Sentinel-2A" if i % 2 == 0 else "Sentinel-2B", date.s2_time, 108,
                         24000 + 30 * i, scene.s2_tile_name(spec))
    s2safe = write_l2a_product(root / "sentinel2", info, s2, world.grid)
    meta = parse_product_metadata(s2safe / "MTD_MSIL2A.xml")
    bands = band_paths(s2safe)
    s2_item = sentinel2_item(
        s2safe, date.s2_time, footprint, world.grid.epsg, info.tile, info.relative_orbit,
        meta.cloud_cover_percent, meta.snow_ice_percent, PROCESSING_BASELINE, bands,
        s2safe / "MTD_MSIL2A.xml", next(s2safe.glob("GRANULE/*/MTD_TL.xml")), info.spacecraft,
    )
    s2id = s2safe.name.removesuffix(".SAFE")
    write_geotiff(truth / f"{s2id}_reflectance.tif", s2.reflectance, world.grid, None,
                  {"units": "surface reflectance"}, ["B02", "B03", "B04"])
    snow = landcover.seasonal_snow(world.height_m, world.slope_deg, world.aspect_deg, world.snow_noise,
                                   date.snow_line_m)
    write_geotiff(truth / f"{s2id}_snow.tif", snow.astype(np.uint8), world.grid, None)
    s2_record = {"id": s2id, "time": str(date.s2_time), "sun_zenith_deg": s2.sun_zenith_deg,
                 "sun_azimuth_deg": s2.sun_azimuth_deg, "cloud_percent_10m": s2.cloud_percent}
    return s1_item, s2_item, s1_record, s2_record
