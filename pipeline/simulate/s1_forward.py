"""Forward model of a GRD image over a DEM: facets, visibility, layover and radar rendering.

Pure numerics. The terrain is a grid of surface elements ("facets", one per
DEM node of a map grid, rows north to south). For each facet:

- its zero-Doppler time, slant range and line of sight are solved exactly on
  the analytic orbit, and its GRD (line, pixel) follows from the product's
  definitions (:mod:`pipeline.simulate.radar_truth`, written apart from the
  pipeline's geocoding so that the truth checks it);
- its true area and normal come from ECEF central differences;
- shadow: a straight ray from the facet towards the antenna enters the
  terrain, or the facet faces away; layover: the facet's image cell also
  receives ground from elsewhere on its line (both in
  :mod:`pipeline.simulate.radar_truth`, independent of the pipeline's
  profile scan in :mod:`pipeline.sar.distortion`).

Power = sigma0(cover, local incidence) x area, summed (layover) into the
image by bilinear splatting and normalised by the ground-range pixel area,
which gives the ellipsoid-referenced sigma0 that ESA's products calibrate to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyproj
from numpy.typing import NDArray

from pipeline.sar.lattice import map_grid_ecef
from pipeline.sar.radiometry import splat
from pipeline.sar.surface import surface_normals
from pipeline.simulate.orbit_design import CircularOrbit
from pipeline.simulate.radar_truth import (
    image_coordinates,
    map_look,
    ray_shadow,
    shared_cell_layover,
    solve_zero_doppler,
)
from pipeline.simulate.s1_design import ProductDesign


@dataclass(frozen=True)
class FacetGeometry:
    """Per-facet geometry on the map grid (all (rows, cols)).

    ``truth_complete`` is False where the shadow ray left the grid before it rose above the
    highest terrain (the answer there could depend on terrain beyond the grid).
    """

    line: NDArray[np.float64]
    pixel: NDArray[np.float64]
    cos_local_incidence: NDArray[np.float32]
    area_m2: NDArray[np.float32]
    shadow: NDArray[np.bool_]
    layover: NDArray[np.bool_]
    active_shadow: NDArray[np.bool_]
    active_layover: NDArray[np.bool_]
    truth_complete: NDArray[np.bool_]

    @property
    def visible(self) -> NDArray[np.bool_]:
        return ~self.shadow & (self.cos_local_incidence > 0)


@dataclass(frozen=True)
class Surface:
    """The terrain surface of a map grid, whatever the orbit: ECEF nodes, their latitude and
    longitude, unit outward normals and true areas (all (rows, cols[, 3]))."""

    crs: pyproj.CRS
    easting_m: NDArray[np.float64]  # (cols,), increasing
    northing_m: NDArray[np.float64]  # (rows,), decreasing (rows north to south), same spacing
    height_m: NDArray[np.float64]  # ellipsoidal
    ecef_m: NDArray[np.float64]
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    normal: NDArray[np.float32]
    area_m2: NDArray[np.float32]

    @property
    def pixel_m(self) -> tuple[float, float]:
        """(dy, dx) node spacing (m)."""
        return float(self.northing_m[0] - self.northing_m[1]), float(self.easting_m[1] - self.easting_m[0])


def terrain_surface(crs: pyproj.CRS, easting_m: NDArray, northing_m: NDArray, height_m: NDArray) -> Surface:
    """:class:`Surface` of a map grid at ellipsoidal heights ``height_m`` (m)."""
    p, lat, lon = map_grid_ecef(crs, easting_m, northing_m, height_m)
    dx = float(easting_m[1] - easting_m[0])
    dy = float(northing_m[0] - northing_m[1])
    normal, area = surface_normals(p, dx, dy)
    return Surface(crs, np.asarray(easting_m, np.float64), np.asarray(northing_m, np.float64),
                   np.asarray(height_m, np.float64), p, lat, lon, normal.astype(np.float32), area)


def facet_geometry(orbit: CircularOrbit, design: ProductDesign, epoch: np.datetime64, surface: Surface) -> FacetGeometry:
    """Geometry, visibility and layover of the facets of a map grid (see the module docstring).

    Parameters
    ----------
    orbit : CircularOrbit
        The analytic orbit (t = 0 at ``epoch``).
    design : ProductDesign
        The product whose image the facets are rendered into.
    epoch : numpy.datetime64
        UTC of the orbit's t = 0.
    surface : Surface
        The grid's terrain (:func:`terrain_surface`, shared by every orbit).
    """
    dy, dx = surface.pixel_m
    height_m = surface.height_m
    zd = solve_zero_doppler(orbit, surface.ecef_m)
    line, pixel = image_coordinates(design, epoch, zd.time_s, zd.slant_range_m)
    cos_local = np.einsum("...i,...i->...", surface.normal, zd.line_of_sight.astype(np.float32))
    look = map_look(surface.crs, surface.lat_deg, surface.lon_deg, zd.line_of_sight)
    del zd
    occluded, complete = ray_shadow(height_m, dx, look)
    facing_away = cos_local <= 0  # active shadow: the facet's own surface hides it
    # the scene's mean horizontal direction away from the antenna
    away_e, away_n = -float(np.mean(look.east)), -float(np.mean(look.north))
    norm = np.hypot(away_e, away_n)
    layover = shared_cell_layover(line, pixel)
    # active layover: the ground rises away from the antenna faster than the ray to the antenna falls
    dh_drow, dh_dcol = np.gradient(np.asarray(height_m, np.float64), dy, dx)
    rise_away = (dh_dcol * away_e - dh_drow * away_n) / norm  # rows go south: d/dnorth = -d/drow
    del dh_drow, dh_dcol
    return FacetGeometry(
        line=line,
        pixel=pixel,
        cos_local_incidence=cos_local,
        area_m2=surface.area_m2,
        shadow=occluded | facing_away,
        layover=layover,
        active_shadow=facing_away,
        active_layover=layover & (rise_away * look.rise > 1.0),
        truth_complete=complete,
    )


def splat_oversampled(
    line: NDArray, pixel: NDArray, values: Sequence[NDArray], shape: tuple[int, int], oversampling: int
) -> list[NDArray[np.float64]]:
    """:func:`splat` of each array of ``values`` with each facet split into ``oversampling``^2
    sub-facets of equal power (one image per array; the sub-facet positions are computed once).

    Sub-facet positions follow the local gradients of (line, pixel) over the
    map grid; this smooths the moire of splatting one regular grid onto
    another rotated one.
    """
    if oversampling <= 1:
        return [splat(line, pixel, v, shape) for v in values]
    dl_dy, dl_dx = np.gradient(line)
    dp_dy, dp_dx = np.gradient(pixel)
    offsets = (np.arange(oversampling) + 0.5) / oversampling - 0.5
    out = [np.zeros(shape) for _ in values]
    parts = [np.asarray(v) / oversampling**2 for v in values]
    for oy in offsets:
        for ox in offsets:
            sub_line, sub_pixel = line + dl_dx * ox + dl_dy * oy, pixel + dp_dx * ox + dp_dy * oy
            for image, part in zip(out, parts):
                image += splat(sub_line, sub_pixel, part, shape)
    return out


def point_target_image(
    line: float, pixel: float, rcs_m2: float, shape: tuple[int, int], pixel_area_m2: float,
    sigma_px: float = 0.8, half_width: int = 5,
) -> tuple[tuple[slice, slice], NDArray[np.float64]]:
    """A point target's sigma0 contribution: RCS / pixel area spread by a Gaussian impulse response.

    Returns the window (slices) and the values to add there.
    """
    l0, p0 = int(round(line)), int(round(pixel))
    ls = np.arange(max(l0 - half_width, 0), min(l0 + half_width + 1, shape[0]))
    ps = np.arange(max(p0 - half_width, 0), min(p0 + half_width + 1, shape[1]))
    w = np.exp(-((ls[:, None] - line) ** 2 + (ps[None, :] - pixel) ** 2) / (2 * sigma_px**2))
    w /= w.sum()
    return (slice(ls[0], ls[-1] + 1), slice(ps[0], ps[-1] + 1)), rcs_m2 / pixel_area_m2 * w


def digital_numbers(
    sigma0_radar: NDArray,
    sigma_lut: NDArray,
    noise_dn2: NDArray,
    rng: np.random.Generator,
    enl: float = 4.4,
    deterministic: NDArray | None = None,
) -> NDArray[np.uint16]:
    """uint16 DN = sqrt((A_sigma^2 sigma0 + noise) * speckle + A_sigma^2 * point targets).

    Speckle is Gamma(enl, 1/enl) intensity noise (multi-looked GRD); point
    targets (``deterministic`` sigma0) are not speckled. 0 is kept for no data.
    """
    speckle = rng.gamma(enl, 1.0 / enl, size=sigma0_radar.shape)
    a2 = np.asarray(sigma_lut, dtype=np.float64) ** 2
    power = (a2 * sigma0_radar + noise_dn2) * speckle
    if deterministic is not None:
        power += a2 * deterministic
    dn = np.sqrt(power)
    return np.clip(np.round(dn), 1, 65535).astype(np.uint16)
