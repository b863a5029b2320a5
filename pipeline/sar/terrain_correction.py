"""Terrain correction of a GRD product onto a map grid (orchestration: reads, numerics, writes).

Backward geocoding: for every output pixel, its ellipsoidal height (DEM) gives
its ECEF position; the zero-Doppler time and slant range come from the exact
range-Doppler solution on a lattice (:mod:`pipeline.sar.lattice`), then
(line, pixel) from the product's timing and slant-to-ground-range records;
the calibrated, noise-removed power (linear) is interpolated there. Work is
done in output tiles: each reads only the measurement window it needs, so
memory is bounded by the tile size whatever the AOI size (terrain
flattening adds one float32 accumulator of the AOI's radar window).

Outputs (float32 GeoTIFFs on the grid, NaN outside the swath):

- backscatter: one band per polarisation, dB (floored), the chosen quantity
  (sigma0 by default, beta0, gamma0 = sigma0 / cos(theta_e), or gamma0_T
  after Small 2011);
- geometry: local incidence angle (deg), ellipsoid incidence angle (deg),
  radar line and pixel (zero-based) of each map pixel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from numpy.typing import NDArray
from rasterio.windows import Window

from ..geodesy import ellipsoid_normal
from ..grid import MapGrid
from ..io.atomic import atomic_path
from ..io.rasters import band_range
from .annotation import parse_annotation, parse_calibration, parse_noise
from .calibration import calibrate, interpolate_lut, noise_power
from .lattice import RadarLattice, map_grid_ecef
from .orbit_file import parse_eof
from .product import RadarGeometry
from .radiometry import flattening_area, sample_bicubic, sample_bilinear, to_db
from .safe import SafeError, item_orbit_file, open_xml, product_files
from .surface import surface_normals

log = logging.getLogger(__name__)

QUANTITIES = ("sigma0", "beta0", "gamma0", "gamma0_t")


class TerrainCorrectionError(ValueError):
    """The product cannot be terrain-corrected onto the grid (names the file and the reason)."""


@dataclass(frozen=True)
class TerrainCorrectionParams:
    """Parameters of the terrain correction (the rule's ``params``)."""

    polarisations: tuple[str, ...] = ("VV", "VH")
    quantity: str = "sigma0"
    noise_removal: bool = True
    resampling: str = "bilinear"
    db_floor: float = -35.0
    tile_size: int = 512
    flat_area_threshold: float = 0.05
    skip_outside: bool = False  # AOI outside the swath: write no-data outputs tagged with the reason
    orbit_file: str | None = None  # AUX_POEORB/RESORB .EOF; None: the annotation's state vectors

    def __post_init__(self) -> None:
        if self.quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {QUANTITIES}, not {self.quantity!r}")
        if self.resampling not in ("bilinear", "bicubic"):
            raise ValueError(f"resampling must be 'bilinear' or 'bicubic', not {self.resampling!r}")


@dataclass(frozen=True)
class _Pol:
    files: object
    calibration_lut: object
    noise: object
    dataset: rasterio.io.DatasetReader


def _tiles(grid: MapGrid, size: int):
    for r in range(0, grid.height, size):
        for c in range(0, grid.width, size):
            yield r, c, min(size, grid.height - r), min(size, grid.width - c)


def _block_geometry(lattice: RadarLattice, grid: MapGrid, dem: rasterio.io.DatasetReader, r: int, c: int, h: int, w: int):
    """Radar coordinates, local and ellipsoid incidence cosines and projected area of one output tile.

    The tile is taken with a one-pixel margin for the surface normals (central differences).
    """
    r0, c0 = max(r - 1, 0), max(c - 1, 0)
    r1, c1 = min(r + h + 1, grid.height), min(c + w + 1, grid.width)
    height = dem.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float64)
    ecef, lat, lon = map_grid_ecef(f"EPSG:{grid.epsg}", grid.easting[c0:c1], grid.northing[r0:r1], height)
    normal, area = surface_normals(ecef, grid.resolution, grid.resolution)
    inner = (slice(r - r0, r - r0 + h), slice(c - c0, c - c0 + w))
    ee, nn = np.meshgrid(grid.easting[c:c + w], grid.northing[r:r + h])
    g = lattice.geometry_at(ee, nn, height[inner])
    los = g["los"]
    cos_local = np.einsum("...i,...i->...", normal[inner], los)
    cos_ell = np.einsum("...i,...i->...", ellipsoid_normal(lat[inner], lon[inner]), los)
    projected = np.clip(cos_local, 0.0, None) * area[inner]
    return g["line"], g["pixel"], cos_local, cos_ell, projected


def terrain_correct(
    safe: str | Path,
    dem_path: str | Path,
    out_path: str | Path,
    geometry_path: str | Path,
    params: TerrainCorrectionParams = TerrainCorrectionParams(),
) -> None:
    """Terrain-correct one GRD product onto the grid of ``dem_path`` (ellipsoidal heights, GeoTIFF)."""
    with rasterio.Env(GDAL_CACHEMAX=256):  # MB: the block cache would otherwise grow with the AOI
        _terrain_correct(Path(safe), dem_path, out_path, geometry_path, params)


def _terrain_correct(safe: Path, dem_path, out_path, geometry_path, params: TerrainCorrectionParams) -> None:
    files = product_files(safe)
    for pol in params.polarisations:
        if pol not in files:
            raise SafeError(f"{safe}: polarisation {pol} not in the product (has {', '.join(sorted(files))})")
    dem = rasterio.open(dem_path)  # read tile by tile: memory does not grow with the AOI
    t = dem.transform
    grid = MapGrid(dem.crs.to_epsg(), t.c, t.f, t.a, dem.width, dem.height)
    h_min, h_max = band_range(dem)
    first = files[params.polarisations[0]]
    with open_xml(first.annotation) as fh:
        annotation = parse_annotation(fh, first.annotation)
    orbit_file = params.orbit_file or item_orbit_file(safe)  # a local item may name a precise orbit
    orbit = parse_eof(orbit_file, annotation.epoch) if orbit_file else None
    try:
        geometry = RadarGeometry(annotation, orbit)
    except ValueError as exc:
        raise TerrainCorrectionError(f"{orbit_file}: {exc} ({safe.name})") from exc
    image = annotation.image
    lattice = RadarLattice(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, (h_min, h_max))
    # the AOI must overlap the swath: check a coarse sample of its pixels
    rows = np.linspace(0, grid.height - 1, 17).round().astype(int)
    cols = np.linspace(0, grid.width - 1, 17).round().astype(int)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    probe_h = np.array([[dem.read(1, window=Window(int(c), int(r), 1, 1))[0, 0] for c in cols] for r in rows])
    probe = lattice.radar_coordinates(grid.easting[cc], grid.northing[rr], probe_h.astype(np.float64))
    inside = ((probe.line >= 0) & (probe.line < image.number_of_lines)
              & (probe.pixel >= 0) & (probe.pixel < image.number_of_samples))
    if not inside.any():
        reason = (
            f"{safe}: the AOI {grid.bounds} (EPSG:{grid.epsg}) is outside the swath: it falls at lines "
            f"{probe.line.min():.0f}..{probe.line.max():.0f}, pixels {probe.pixel.min():.0f}..{probe.pixel.max():.0f} "
            f"of a {image.number_of_lines} x {image.number_of_samples} image"
        )
        if not params.skip_outside:
            raise TerrainCorrectionError(reason)
        log.warning("skipping: %s", reason)
        _write_no_data(grid, out_path, geometry_path, len(params.polarisations), reason)
        dem.close()
        return
    pols = {}
    for pol in params.polarisations:
        f = files[pol]
        with open_xml(f.calibration) as fh:
            cal = parse_calibration(fh, f.calibration)
        with open_xml(f.noise) as fh:
            noise = parse_noise(fh, f.noise)
        lut = {"sigma0": cal.sigma_nought, "gamma0": cal.sigma_nought, "gamma0_t": cal.beta_nought,
               "beta0": cal.beta_nought}[params.quantity]
        try:
            ds = rasterio.open(f.measurement)
        except rasterio.errors.RasterioIOError as exc:
            raise SafeError(f"{f.measurement}: unreadable measurement ({exc})") from exc
        if (ds.height, ds.width) != (image.number_of_lines, image.number_of_samples):
            raise SafeError(f"{f.measurement}: {ds.height} x {ds.width} pixels, the annotation says "
                            f"{image.number_of_lines} x {image.number_of_samples}")
        pols[pol] = _Pol(f, lut, noise if params.noise_removal else None, ds)

    area_sum = window0 = None
    if params.quantity == "gamma0_t":
        area_sum, window0 = _flattening_pass(lattice, grid, dem, params, image)
    pixel_area = image.range_pixel_spacing_m * image.azimuth_pixel_spacing_m

    profile = dict(driver="GTiff", width=grid.width, height=grid.height, dtype="float32", nodata=np.nan,
                   crs=f"EPSG:{grid.epsg}", transform=grid.transform, tiled=True, blockxsize=256, blockysize=256,
                   BIGTIFF="IF_SAFER")  # uncompressed scratch: compressed once, into the COG
    with atomic_path(out_path) as tmp_out, atomic_path(geometry_path) as tmp_geo:
        raw_out, raw_geo = tmp_out.with_suffix(".raw.tif"), tmp_geo.with_suffix(".raw.tif")
        with rasterio.open(raw_out, "w", count=len(pols), **profile) as dst, \
                rasterio.open(raw_geo, "w", count=4, **profile) as gdst:
            for r, c, h, w in _tiles(grid, params.tile_size):
                line, pixel, cos_local, cos_ell, _ = _block_geometry(lattice, grid, dem, r, c, h, w)
                win = Window(c, r, w, h)
                gdst.write(np.degrees(np.arccos(np.clip(cos_local, -1, 1))).astype(np.float32), 1, window=win)
                gdst.write(np.degrees(np.arccos(np.clip(cos_ell, -1, 1))).astype(np.float32), 2, window=win)
                gdst.write(line.astype(np.float32), 3, window=win)
                gdst.write(pixel.astype(np.float32), 4, window=win)
                for band, (pol, p) in enumerate(pols.items(), start=1):
                    power = _sample_calibrated(p, line, pixel, image, params.resampling)
                    if params.quantity == "gamma0":
                        power = power / np.maximum(cos_ell, 1e-6)
                    elif params.quantity == "gamma0_t":
                        # gamma0_T = beta0 A_beta / A_gamma, A_beta = pixel area x sin(theta_e) (slant plane);
                        # bins under a fraction of the flat-terrain area (pixel area x cos(theta_e)) are shadow
                        area = sample_bilinear(area_sum, line - window0[0], pixel - window0[1])
                        flat = params.flat_area_threshold * pixel_area * np.clip(cos_ell, 0.05, 1.0)
                        power = power * pixel_area * _sin_from_cos(cos_ell) / np.where(area > flat, area, np.nan)
                    dst.write(to_db(power, params.db_floor), band, window=win)
            for band, pol in enumerate(pols, start=1):
                dst.set_band_description(band, pol)
            dst.update_tags(units="dB", quantity=params.quantity, product=safe.name,
                            orbit=Path(orbit_file).name if orbit_file else "annotation",
                            noise_removal=str(params.noise_removal), resampling=params.resampling,
                            db_floor=str(params.db_floor), geocoding="range-Doppler, backward, DEM ellipsoidal heights")
            for band, name in enumerate(("local_incidence_deg", "ellipsoid_incidence_deg", "radar_line", "radar_pixel"), 1):
                gdst.set_band_description(band, name)
            gdst.update_tags(product=safe.name, line_pixel="zero-based, as in the annotation's geolocation grid")
        cog = dict(driver="COG", compress="deflate", predictor="3", level=6, num_threads="ALL_CPUS", bigtiff="IF_SAFER")
        rasterio.shutil.copy(raw_out, tmp_out, **cog)
        rasterio.shutil.copy(raw_geo, tmp_geo, **cog)
        raw_out.unlink()
        raw_geo.unlink()
    for p in pols.values():
        p.dataset.close()
    dem.close()


def _write_no_data(grid: MapGrid, out_path, geometry_path, bands: int, reason: str) -> None:
    """All-NaN outputs tagged ``skipped`` (so the run goes on and later stages can report the scene)."""
    from ..io.rasters import write_geotiff

    empty = np.full((grid.height, grid.width), np.nan, np.float32)
    with atomic_path(out_path) as tmp:
        write_geotiff(tmp, np.stack([empty] * bands), grid, np.nan, {"skipped": reason})
    with atomic_path(geometry_path) as tmp:
        write_geotiff(tmp, np.stack([empty] * 4), grid, np.nan, {"skipped": reason})


def _sin_from_cos(cos: NDArray) -> NDArray:
    return np.sqrt(np.clip(1.0 - cos**2, 0.0, 1.0))


def _sample_calibrated(p: _Pol, line: NDArray, pixel: NDArray, image, resampling: str) -> NDArray[np.float32]:
    """Read the radar window around (line, pixel), calibrate it, interpolate the linear power there."""
    valid = np.isfinite(line) & np.isfinite(pixel)
    out = np.full(line.shape, np.nan, np.float32)
    if not valid.any():
        return out
    l0 = max(int(np.floor(line[valid].min())) - 2, 0)
    p0 = max(int(np.floor(pixel[valid].min())) - 2, 0)
    l1 = min(int(np.ceil(line[valid].max())) + 3, image.number_of_lines)
    p1 = min(int(np.ceil(pixel[valid].max())) + 3, image.number_of_samples)
    if l1 <= l0 or p1 <= p0:
        return out
    try:
        dn = p.dataset.read(1, window=Window(p0, l0, p1 - p0, l1 - l0))
    except rasterio.errors.RasterioIOError as exc:
        raise SafeError(f"{p.files.measurement}: cannot read lines {l0}-{l1}, pixels {p0}-{p1} ({exc})") from exc
    lines, pixels = np.arange(l0, l1), np.arange(p0, p1)
    lut = interpolate_lut(p.calibration_lut, lines, pixels)
    noise = noise_power(p.noise.range_vectors, p.noise.azimuth_blocks, lines, pixels) if p.noise else None
    power, _ = calibrate(dn, lut, noise)
    sample = sample_bicubic if resampling == "bicubic" else sample_bilinear
    return sample(power, line - l0, pixel - p0)


def _flattening_pass(lattice: RadarLattice, grid: MapGrid, dem: rasterio.io.DatasetReader,
                     params: TerrainCorrectionParams, image):
    """Sum of projected facet areas per radar pixel over the AOI's radar window (Small 2011)."""
    bounds = []
    for r, c, h, w in _tiles(grid, params.tile_size):
        line, pixel, *_ = _block_geometry(lattice, grid, dem, r, c, h, w)
        bounds.append((np.nanmin(line), np.nanmax(line), np.nanmin(pixel), np.nanmax(pixel)))
    b = np.array(bounds)
    l0, p0 = int(np.floor(b[:, 0].min())) - 2, int(np.floor(b[:, 2].min())) - 2
    shape = (int(np.ceil(b[:, 1].max())) + 3 - l0, int(np.ceil(b[:, 3].max())) + 3 - p0)
    acc = np.zeros(shape, np.float64)
    for r, c, h, w in _tiles(grid, params.tile_size):
        line, pixel, _, _, projected = _block_geometry(lattice, grid, dem, r, c, h, w)
        acc += flattening_area(line, pixel, projected, shape, (l0, p0))
    return acc.astype(np.float32), (l0, p0)
