"""Small orchestration steps (files in, files out) that the rules and the CLI call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj

from .dem import dem_on_grid
from .grid import MapGrid
from .io.atomic import atomic_path
from .io.dem_tiles import read_mosaic
from .io.rasters import write_geotiff


def prepare_dem(tiles_dir: str | Path, grid: MapGrid, out_orthometric: str | Path, out_ellipsoidal: str | Path,
                geoid_grid: str | None = None, margin_deg: float = 0.01) -> None:
    """Mosaic the 1" tiles covering the grid, fill voids, resample to the grid; write EGM96 and WGS84 heights."""
    to_geo = pyproj.Transformer.from_crs(f"EPSG:{grid.epsg}", "EPSG:4326", always_xy=True)
    left, bottom, right, top = grid.bounds
    west, south, east, north = to_geo.transform_bounds(left, bottom, right, top, densify_pts=21)
    mosaic = read_mosaic(tiles_dir, west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg)
    ortho, ell = dem_on_grid(mosaic, grid, geoid_grid)
    tags = {"source": "SRTM 1 arc-second", "resampling": "bilinear after void filling"}
    with atomic_path(out_orthometric) as tmp:
        write_geotiff(tmp, ortho, grid, np.nan, {**tags, "vertical_datum": "EGM96 geoid", "units": "m"})
    with atomic_path(out_ellipsoidal) as tmp:
        write_geotiff(tmp, ell, grid, np.nan, {**tags, "vertical_datum": "WGS84 ellipsoid", "units": "m"})


def distortion_maps(safe: str | Path, tiles_dir: str | Path, grid: MapGrid, out_flags: str | Path,
                    out_geometry: str | Path, geoid_grid: str | None = None, margin_m: float = 3000.0) -> None:
    """Foreshortening/layover/shadow flags and geometry layers of one product on the AOI grid.

    The scan runs on the AOI plus ``margin_m`` of terrain (ridges outside the AOI shadow and lay
    over into it), then the result is cut to the AOI. Writes a uint8 flags COG and a float32 COG
    with local incidence, slope, aspect (deg) and the evaluation region.
    """
    from .sar.annotation import parse_annotation
    from .sar.distortion import distortion_map, evaluation_regions
    from .sar.product import RadarGeometry
    from .sar.orbit_file import parse_eof
    from .sar.safe import item_orbit_file, open_xml, product_files
    from .sar.surface import slope_aspect

    files = next(iter(product_files(safe).values()))
    with open_xml(files.annotation) as fh:
        annotation = parse_annotation(fh, files.annotation)
    orbit_file = item_orbit_file(safe)  # a local item may name a precise orbit
    geometry = RadarGeometry(annotation, parse_eof(orbit_file, annotation.epoch) if orbit_file else None)
    big = grid.expanded(margin_m)
    to_geo = pyproj.Transformer.from_crs(f"EPSG:{big.epsg}", "EPSG:4326", always_xy=True)
    west, south, east, north = to_geo.transform_bounds(*big.bounds, densify_pts=21)
    ortho, ell = dem_on_grid(read_mosaic(tiles_dir, west - 0.01, south - 0.01, east + 0.01, north + 0.01), big, geoid_grid)
    out = distortion_map(geometry, f"EPSG:{big.epsg}", big.easting, big.northing, ell)
    n = int(round((big.width - grid.width) / 2))
    crop = (slice(n, n + grid.height), slice(n, n + grid.width))
    slope, aspect = slope_aspect(ortho, (big.resolution, big.resolution))
    flags = out["flags"][crop]
    layers = np.stack([out["local_incidence_deg"][crop], slope[crop].astype(np.float32),
                       aspect[crop].astype(np.float32), evaluation_regions(flags).astype(np.float32)])
    tags = {"product": Path(safe).name, "definitions": "pipeline.sar.distortion (Meier et al. 1993)",
            "orbit": Path(orbit_file).name if orbit_file else "annotation"}
    with atomic_path(out_flags) as tmp:
        write_geotiff(tmp, flags, grid, None, {**tags, "bits": "1 foreshortening, 2 active layover, "
                      "4 passive layover, 8 active shadow, 16 passive shadow"}, ["flags"])
    with atomic_path(out_geometry) as tmp:
        write_geotiff(tmp, layers, grid, np.nan, {**tags, "region": "0 non-distorted, 1 foreshortening "
                      "(incl. layover), 2 shadow"}, ["local_incidence_deg", "slope_deg", "aspect_deg", "region"])


def mosaic_slices(backscatter: list[str | Path], flags: list[str | Path], out_backscatter: str | Path,
                  out_flags: str | Path) -> None:
    """One pass's terrain-corrected slices on the AOI grid as one image: each pixel, in every band,
    from the first slice (in the given order, by time) whose backscatter is valid there; its
    distortion flags come from the same slice. Tagged ``skipped`` only when every slice was.
    """
    import rasterio

    if len(backscatter) != len(flags) or not backscatter:
        raise ValueError("give one flags file per backscatter file, at least one")
    reasons, out, out_f, grid, names, tags = [], None, None, None, None, {}
    for bs_path, fl_path in zip(backscatter, flags):
        with rasterio.open(bs_path) as src:
            data = src.read()
            t = src.transform
            grid = MapGrid(src.crs.to_epsg(), t.c, t.f, t.a, src.width, src.height)
            names = list(src.descriptions)
            tags = src.tags()
            if tags.get("skipped"):
                reasons.append(f"{Path(bs_path).name}: {tags['skipped']}")
        with rasterio.open(fl_path) as src:
            fl = src.read(1)
        if out is None:
            out, out_f = np.full_like(data, np.nan), np.zeros_like(fl)
        take = np.isnan(out[0]) & np.isfinite(data).all(axis=0)
        out[:, take] = data[:, take]
        out_f[take] = fl[take]
    tags = {k: v for k, v in tags.items() if k not in ("skipped", "product")}
    tags["slices"] = ",".join(Path(p).name.removesuffix("_backscatter.tif") for p in backscatter)
    if len(reasons) == len(backscatter):
        tags["skipped"] = "; ".join(reasons)
    with atomic_path(out_backscatter) as tmp:
        write_geotiff(tmp, out, grid, np.nan, tags, names)
    with atomic_path(out_flags) as tmp:
        write_geotiff(tmp, out_f, grid, None, {"slices": tags["slices"]}, ["flags"])
