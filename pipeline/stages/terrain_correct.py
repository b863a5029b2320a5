"""Stage ``terrain_correct``: calibrate, remove noise, terrain-correct and log-compress one GRD product.

Reads the product (SAFE directory, SAFE zip or local STAC item) and the ellipsoidal DEM on the AOI
grid, works in output tiles (:mod:`pipeline.sar.backscatter`), each reading only the DEM and
measurement windows it needs, so memory is bounded by the tile size and the grid's width, whatever the
AOI's height (terrain flattening adds a float64 accumulator of the AOI's radar window and the geometry
of the tiles that wait for it: :func:`_flattened_tiles`).

Outputs (float32 COGs on the grid, NaN outside the swath):

- backscatter: one band per polarisation, dB (floored), the chosen quantity
  (sigma0 by default, beta0, gamma0 = sigma0 / cos(theta_e), or gamma0_T after Small 2011);
- geometry (optional, on demand: no later stage reads it): local incidence angle (deg), ellipsoid
  incidence angle (deg), radar line and pixel (zero-based) of each map pixel.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.windows import Window

from pipeline.config import validate
from pipeline.core.grid import MapGrid, RowCache
from pipeline.errors import SardemError
from pipeline.io.atomic import atomic_path
from pipeline.io.checksums import verify_cached
from pipeline.io.rasters import band_range, cog_writer, grid_of, stage_env, write_geotiff
from pipeline.sar import backscatter as bs
from pipeline.sar.annotation import parse_annotation, parse_calibration, parse_noise
from pipeline.sar.facets import SurfaceNodes, incidence_deg, radar_extent, radar_extents, radar_tables
from pipeline.sar.lattice import RadarLattice
from pipeline.sar.orbit_file import parse_eof
from pipeline.sar.product import RadarGeometry
from pipeline.sar.radiometry import sample_bilinear, to_db
from pipeline.sar.safe import SafeError, item_orbit_file, open_xml, product_files

log = logging.getLogger(__name__)

QUANTITIES = bs.QUANTITIES
INCIDENCE_STEP = 4  # pixels between those whose ellipsoid incidence makes the mean-incidence tag
#: radar lines (and pixels) between a tile and those still to come for its flattening area to be complete:
#: 2 for the accumulation's and the sampling's bilinear footprints, 2 for the prediction from the tiles' edges
REACH_MARGIN = 4


class TerrainCorrectionError(SardemError, ValueError):
    """The product cannot be terrain-corrected onto the grid (names the file and the reason)."""


@dataclass(frozen=True)
class TerrainCorrectionParams:
    """What changes the result of the terrain correction: the config's ``sar`` section without its
    performance knob ``tile_size``. Build it with :meth:`from_dict` (defaults: the schema's)."""

    polarisations: tuple[str, ...]
    quantity: str
    noise_removal: bool
    resampling: str
    db_floor: float
    skip_scenes_outside_aoi: bool  # AOI outside the swath: write no-data outputs tagged with the reason

    def __post_init__(self) -> None:
        if self.quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {QUANTITIES}, not {self.quantity!r}")
        if self.resampling not in ("bilinear", "bicubic"):
            raise ValueError(f"resampling must be 'bilinear' or 'bicubic', not {self.resampling!r}")

    @classmethod
    def from_dict(cls, sar: dict[str, Any]) -> TerrainCorrectionParams:
        """From (part of) the config's ``sar`` section, validated and completed with the schema's defaults."""
        s = validate({"sar": sar})["sar"]
        return cls(tuple(s["polarisations"]), s["quantity"], bool(s["noise_removal"]), s["resampling"],
                   float(s["db_floor"]), bool(s["skip_scenes_outside_aoi"]))

    def as_dict(self) -> dict[str, Any]:
        return {"polarisations": list(self.polarisations), "quantity": self.quantity,
                "noise_removal": self.noise_removal, "resampling": self.resampling, "db_floor": self.db_floor,
                "skip_scenes_outside_aoi": self.skip_scenes_outside_aoi}


@dataclass(frozen=True)
class _Pol:
    files: Any
    calibration_lut: Any
    noise: Any
    dataset: rasterio.io.DatasetReader


def terrain_correct(
    safe: str | Path,
    dem_path: str | Path,
    out_path: str | Path | None,
    geometry_path: str | Path | None = None,
    params: TerrainCorrectionParams | None = None,
    *,
    orbit_file: str | Path | None = None,
    tile_size: int = 512,
) -> None:
    """Terrain-correct one GRD product onto the grid of ``dem_path`` (ellipsoidal heights, GeoTIFF).

    Writes the backscatter to ``out_path`` and the geometry layers to ``geometry_path``; either may be
    None (not written), not both. ``orbit_file``: an AUX_POEORB/RESORB .EOF (default: the one a local
    item names, else the annotation's state vectors). ``tile_size`` (pixels) bounds memory and does not
    change the result.
    """
    if out_path is None and geometry_path is None:
        raise ValueError("terrain_correct needs an output: out_path, geometry_path or both")
    params = params or TerrainCorrectionParams.from_dict({})
    t0 = time.perf_counter()
    log.info("terrain correction of %s on %s; parameters %s, tile size %d", safe, dem_path, params.as_dict(),
             tile_size)
    with stage_env(256), contextlib.ExitStack() as stack:  # MB: bounded block cache; decoding threads
        _terrain_correct(Path(safe), Path(dem_path), out_path, geometry_path, params,
                         str(orbit_file) if orbit_file else None, tile_size, stack)
    log.info("wrote %s in %.1f s", " and ".join(str(p) for p in (out_path, geometry_path) if p),
             time.perf_counter() - t0)


def _terrain_correct(safe: Path, dem_path: Path, out_path, geometry_path, params: TerrainCorrectionParams,
                     orbit_file: str | None, tile_size: int, stack: contextlib.ExitStack) -> None:
    files = product_files(safe)
    for pol in params.polarisations:
        if pol not in files:
            raise SafeError(f"{safe}: polarisation {pol} not in the product (has {', '.join(sorted(files))})")
    verify_cached([files[pol].measurement for pol in params.polarisations
                   if not str(files[pol].measurement).startswith("/vsi")])
    try:
        dem = stack.enter_context(rasterio.open(dem_path))  # read tile by tile: memory does not grow with the AOI
    except rasterio.errors.RasterioIOError as exc:
        raise TerrainCorrectionError(f"{dem_path}: cannot open the DEM ({exc})") from exc
    grid = grid_of(dem)
    h_min, h_max = band_range(dem)
    first = files[params.polarisations[0]]
    with open_xml(first.annotation) as fh:
        annotation = parse_annotation(fh, first.annotation)
    orbit_file = orbit_file or item_orbit_file(safe)  # a local item may name a precise orbit
    orbit = parse_eof(orbit_file, annotation.epoch) if orbit_file else None
    try:
        geometry = RadarGeometry(annotation, orbit)
    except ValueError as exc:
        raise TerrainCorrectionError(f"{orbit_file}: {exc} ({safe.name})") from exc
    image = annotation.image
    lattice = RadarLattice(geometry, f"EPSG:{grid.epsg}", grid.easting, grid.northing, (h_min, h_max))
    # the AOI must overlap the swath: check a coarse sample of its pixels (17 x 17 cell centres, their heights
    # by a decimated read: from the DEM's smallest overview, not a block decoded for each)
    rows = ((np.arange(17) + 0.5) * grid.height / 17).astype(int)
    cols = ((np.arange(17) + 0.5) * grid.width / 17).astype(int)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    probe_h = dem.read(1, out_shape=(17, 17)).astype(np.float64)
    probe = lattice.radar_coordinates(grid.easting[cc], grid.northing[rr], probe_h)
    inside = ((probe.line >= 0) & (probe.line < image.number_of_lines)
              & (probe.pixel >= 0) & (probe.pixel < image.number_of_samples))
    if not inside.any():
        reason = (
            f"{safe}: the AOI {grid.bounds} (EPSG:{grid.epsg}) is outside the swath: it falls at lines "
            f"{probe.line.min():.0f}..{probe.line.max():.0f}, pixels {probe.pixel.min():.0f}..{probe.pixel.max():.0f} "
            f"of a {image.number_of_lines} x {image.number_of_samples} image"
        )
        if not params.skip_scenes_outside_aoi:
            raise TerrainCorrectionError(reason)
        log.warning("skipping: %s", reason)
        _write_no_data(grid, out_path, geometry_path, len(params.polarisations), reason)
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
            ds = stack.enter_context(rasterio.open(f.measurement))
        except rasterio.errors.RasterioIOError as exc:
            raise SafeError(f"{f.measurement}: unreadable measurement ({exc})") from exc
        if (ds.height, ds.width) != (image.number_of_lines, image.number_of_samples):
            raise SafeError(f"{f.measurement}: {ds.height} x {ds.width} pixels, the annotation says "
                            f"{image.number_of_lines} x {image.number_of_samples}")
        pols[pol] = _Pol(f, lut, noise if params.noise_removal else None, ds)

    surface = SurfaceNodes.of(f"EPSG:{grid.epsg}", grid.easting, grid.northing)
    tables = radar_tables(lattice)

    # tiles go row by row: whole-width strips of DEM rows, each block decoded about once
    def strip(first: int, stop: int, out: NDArray | None = None) -> NDArray:
        return dem.read(1, window=Window(0, first, grid.width, stop - first), out=out)

    dem_rows = RowCache(strip, grid.height, ahead=tile_size, read_into=strip)

    def geometry_of(r: int, c: int, h: int, w: int) -> bs.TileGeometry:
        window = bs.margin_window(grid, r, c, h, w)
        r0, c0, r1, c1 = window
        height = dem_rows.get(r0, r1)[:, c0:c1]
        return bs.tile_geometry(tables, surface, grid, height, window, r, c, h, w)

    # sigma0 and beta0 need the ellipsoid incidence only for the tag's sampled mean (gamma0_T: geometry_of)
    ellipsoid_every = 1 if params.quantity == "gamma0" else INCIDENCE_STEP

    def radar_of(r: int, c: int, h: int, w: int) -> bs.TileRadar:
        return bs.tile_radar(tables, surface, grid, dem_rows.get(r, r + h)[:, c : c + w], r, c, h, w,
                             ellipsoid_every)

    tiles = list(bs.output_tiles(grid.height, grid.width, tile_size))
    if params.quantity == "gamma0_t" and out_path is not None:  # the tiles as their facets' area completes
        keep = (lambda g: g) if geometry_path is not None else bs.TileRadar.of
        computed = _flattened_tiles(tiles, geometry_of, keep, lattice, grid, (h_min, h_max))
    else:  # the facets (normals, local incidence) only where the geometry layers are written
        computed = ((tile, (geometry_of if geometry_path is not None else radar_of)(*tile), None) for tile in tiles)
    pixel_area = image.range_pixel_spacing_m * image.azimuth_pixel_spacing_m

    with contextlib.ExitStack() as outputs:
        dst = gdst = None
        if out_path is not None:
            dst = outputs.enter_context(cog_writer(outputs.enter_context(atomic_path(out_path)), grid, len(pols),
                                                   "float32", np.nan, predictor=False))  # speckle: see cog_options
        if geometry_path is not None:
            gdst = outputs.enter_context(cog_writer(outputs.enter_context(atomic_path(geometry_path)), grid, 4,
                                                    "float32", np.nan, overviews=False))
        step = max(1, len(tiles) // 10)
        incidence_sum, incidence_count = 0.0, 0
        for i, ((r, c, h, w), g, area) in enumerate(computed, start=1):
            win = Window(c, r, w, h)
            if gdst is not None:
                gdst.write(incidence_deg(g.cos_local), 1, window=win)
                gdst.write(incidence_deg(g.cos_ellipsoid), 2, window=win)
                gdst.write(g.line.astype(np.float32), 3, window=win)
                gdst.write(g.pixel.astype(np.float32), 4, window=win)
            if dst is not None:
                # the tag's mean ellipsoid incidence over the AOI: from every INCIDENCE_STEP-th row and column
                # of the grid (the same pixels whatever the tile size; all of them cost 7 % of a GTC job)
                sub = (slice(-r % INCIDENCE_STEP, None, INCIDENCE_STEP),
                       slice(-c % INCIDENCE_STEP, None, INCIDENCE_STEP))
                cos_sub = g.cos_ellipsoid[sub]
                inside = np.isfinite(g.line[sub]) & np.isfinite(cos_sub)
                incidence_sum += float(incidence_deg(cos_sub[inside]).astype(np.float64).sum())
                incidence_count += int(inside.sum())
                for band, p in enumerate(pols.values(), start=1):
                    power = _sample_calibrated(p, g, image, params.resampling)
                    if params.quantity == "gamma0":
                        power = bs.gamma0_from_sigma0(power, g.cos_ellipsoid)
                    elif params.quantity == "gamma0_t":
                        power = bs.gamma0_t_from_beta0(power, area, pixel_area, g.cos_ellipsoid)
                    dst.write(to_db(power, params.db_floor), band, window=win)
            if i % step == 0 or i == len(tiles):
                log.info("tile %d/%d", i, len(tiles))
        if dst is not None:
            for band, pol in enumerate(pols, start=1):
                dst.set_band_description(band, pol)
            dst.update_tags(units="dB", quantity=params.quantity, product=safe.name,
                            orbit=Path(orbit_file).name if orbit_file else "annotation",
                            noise_removal=str(params.noise_removal), resampling=params.resampling,
                            db_floor=str(params.db_floor), geocoding="range-Doppler, backward, DEM ellipsoidal heights",
                            # the viewing geometry over the AOI (registration QA predicts the image from it)
                            platform_heading_deg=f"{annotation.platform_heading_deg:.4f}", look_side="right",
                            incidence_angle_deg=f"{incidence_sum / max(incidence_count, 1):.4f}")
        if gdst is not None:
            for band, name in enumerate(("local_incidence_deg", "ellipsoid_incidence_deg", "radar_line", "radar_pixel"), 1):
                gdst.set_band_description(band, name)
            gdst.update_tags(product=safe.name, line_pixel="zero-based, as in the annotation's geolocation grid")


def _write_no_data(grid: MapGrid, out_path, geometry_path, bands: int, reason: str) -> None:
    """All-NaN outputs tagged ``skipped`` (so the run goes on and later stages can report the scene)."""
    empty = np.full((grid.height, grid.width), np.nan, np.float32)
    for path, count in ((out_path, bands), (geometry_path, 4)):
        if path is not None:
            with atomic_path(path) as tmp:
                write_geotiff(tmp, np.stack([empty] * count), grid, np.nan, {"skipped": reason})


def _sample_calibrated(p: _Pol, g: bs.TileGeometry, image, resampling: str) -> np.ndarray:
    """Read the radar window around the tile's (line, pixel), calibrate it, interpolate the linear power there."""
    out = np.full(g.line.shape, np.nan, np.float32)
    window = bs.radar_window(g.bounds, image.number_of_lines, image.number_of_samples)
    if window is None:
        return out
    l0, p0, l1, p1 = window
    try:
        dn = p.dataset.read(1, window=Window(p0, l0, p1 - p0, l1 - l0))
    except rasterio.errors.RasterioIOError as exc:
        raise SafeError(f"{p.files.measurement}: cannot read lines {l0}-{l1}, pixels {p0}-{p1} ({exc})") from exc
    return bs.calibrated_power_at(dn, window, p.calibration_lut, p.noise, g.line, g.pixel, resampling)


def _flattened_tiles(tiles, geometry_of, keep, lattice: RadarLattice, grid: MapGrid,
                     height_range_m: tuple[float, float]) -> Iterator[tuple[tuple[int, int, int, int], Any, NDArray]]:
    """Terrain flattening (Small 2011) in one geometry pass: (tile, ``keep(geometry)``, A_gamma at the tile's
    pixels) for every tile, in the order each tile's area is complete.

    Each tile's projected facet areas go into an accumulator of the AOI's radar window as soon as its
    geometry is computed; the tile then waits, keeping what ``keep`` takes of its geometry, until no tile
    still to come can reach both its radar lines and its pixels, and its area is sampled there. What a
    tile can reach comes from its edges at the DEM's extreme heights (:func:`radar_extents`: line and
    pixel are smooth in position and monotonic in height) with :data:`REACH_MARGIN` lines and pixels of
    margin. The tiles go row by row, so the DEM is read once, as for the other quantities; those waiting
    are the tiles of about one tile row whose radar window the next row's can still reach (at 100 Mpx,
    25 of 400 tiles of 512 px on a 10,000 px wide grid; lines alone, the pass's skew, kept 73). Two passes
    (the accumulator, then the geometry again for sampling) took a quarter longer: 15.4-17.0 against
    12.0-13.8 s at 100 Mpx, 2 cores, with 25 of the 400 tiles waiting at most (+180 MB).
    """
    l_min, l_max, p_min, p_max = radar_extent(lattice, grid.easting, grid.northing, height_range_m)
    origin, shape = bs.flattening_window([(l_min - 2, l_max + 2, p_min - 2, p_max + 2)])
    acc = np.zeros(shape, np.float64)
    reach = radar_extents(lattice, [(grid.easting[c : c + w], grid.northing[r : r + h]) for r, c, h, w in tiles],
                          height_range_m) + [-REACH_MARGIN, REACH_MARGIN, -REACH_MARGIN, REACH_MARGIN]
    waiting: list[tuple[tuple[int, int, int, int], Any, tuple[float, float, float, float]]] = []
    most_waiting = 0
    for k, tile in enumerate(tiles):
        g = geometry_of(*tile)
        bs.accumulate_flattening_area(acc, origin, g)
        kept = keep(g)  # its bounds None: no pixel in the image, nothing to wait for
        waiting.append((tile, kept, kept.bounds or (np.inf, -np.inf, np.inf, -np.inf)))
        most_waiting = max(most_waiting, len(waiting))
        later = reach[k + 1 :]
        still = []
        for w in waiting:
            l0, l1, p0, p1 = w[2]
            if ((later[:, 1] >= l0) & (later[:, 0] <= l1) & (later[:, 3] >= p0) & (later[:, 2] <= p1)).any():
                still.append(w)
            else:
                yield w[0], w[1], sample_bilinear(acc, w[1].line, w[1].pixel, origin)
        waiting = still
    log.info("terrain flattening: at most %d of %d tiles waited for their area", most_waiting, len(tiles))
