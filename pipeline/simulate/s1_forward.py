"""Forward model of a GRD image over a DEM: facets, visibility, layover and radar rendering.

Pure numerics. The terrain is a grid of surface elements ("facets", one per
DEM node of a map grid, rows north to south). For each facet:

- its exact zero-Doppler radar coordinates (line, pixel), slant range and
  line of sight come from :class:`~pipeline.sar.product.RadarGeometry`
  evaluated on a coarse 3-D lattice (easting, northing, height) and
  interpolated trilinearly (errors below 0.01 px: the mapping is smooth on
  the lattice scale);
- its true area and normal come from ECEF central differences;
- shadow (hidden from the radar) and layover (sharing slant ranges with
  other ground of the same azimuth line) follow the isce3 rules on exact
  zero-Doppler terrain profiles, one per image line
  (:func:`pipeline.sar.distortion.profile_flags`, the same definition as the pipeline's maps).

Power = sigma0(cover, local incidence) x area, summed (layover) into the
image by bilinear splatting and normalised by the ground-range pixel area,
which gives the ellipsoid-referenced sigma0 that ESA's products calibrate to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj
from numpy.typing import NDArray

from pipeline.sar.distortion import (
    PROFILE_ACTIVE_LAYOVER,
    PROFILE_ACTIVE_SHADOW,
    PROFILE_LAYOVER,
    PROFILE_SHADOW,
    profile_flags,
)
from pipeline.sar.lattice import RadarLattice, map_grid_ecef
from pipeline.sar.product import RadarGeometry
from pipeline.sar.radiometry import splat
from pipeline.sar.surface import surface_normals


@dataclass(frozen=True)
class FacetGeometry:
    """Per-facet geometry on the map grid (all (rows, cols))."""

    line: NDArray[np.float64]
    pixel: NDArray[np.float64]
    slant_range_m: NDArray[np.float64]
    cos_local_incidence: NDArray[np.float32]
    area_m2: NDArray[np.float32]
    shadow: NDArray[np.bool_]
    layover: NDArray[np.bool_]
    active_shadow: NDArray[np.bool_]
    active_layover: NDArray[np.bool_]

    @property
    def visible(self) -> NDArray[np.bool_]:
        return ~self.shadow & (self.cos_local_incidence > 0)


def facet_geometry(
    geometry: RadarGeometry,
    crs: pyproj.CRS,
    easting_m: NDArray,
    northing_m: NDArray,
    height_m: NDArray,
    lattice_step_m: float = 250.0,
) -> FacetGeometry:
    """Geometry, visibility and layover of the facets of a map grid (see the module docstring).

    Parameters
    ----------
    geometry : RadarGeometry
        The product's geometry.
    crs : pyproj.CRS
        Projected CRS of the grid (metres).
    easting_m : (cols,) array
        Node eastings, increasing.
    northing_m : (rows,) array
        Node northings, decreasing (rows north to south).
    height_m : (rows, cols) array
        Ellipsoidal heights (m) of the nodes.
    """
    dx = float(easting_m[1] - easting_m[0])
    dy = float(northing_m[0] - northing_m[1])
    p, _, _ = map_grid_ecef(crs, easting_m, northing_m, height_m)
    normal, area = surface_normals(p, dx, dy)
    del p

    lattice = RadarLattice(geometry, crs, easting_m, northing_m, (float(height_m.min()), float(height_m.max())),
                           lattice_step_m)
    ee, nn = np.meshgrid(easting_m, northing_m)
    rc = lattice.radar_coordinates(ee, nn, height_m)
    line, pixel, slant = rc.line, rc.pixel, rc.slant_range_m
    cos_local = np.einsum("...i,...i->...", normal, lattice.line_of_sight(ee, nn, height_m)).astype(np.float32)
    # cross-track order: ground range of the facet's horizontal position at a fixed height
    cross_track = lattice.radar_coordinates(ee, nn, np.full_like(height_m, float(height_m.min()))).pixel
    del normal

    bits = profile_flags(lattice, easting_m, northing_m, height_m, line, cross_track, float(height_m.min()))
    return FacetGeometry(
        line=line,
        pixel=pixel,
        slant_range_m=slant,
        cos_local_incidence=cos_local,
        area_m2=area,
        shadow=(bits & (PROFILE_SHADOW | PROFILE_ACTIVE_SHADOW)) > 0,
        layover=(bits & (PROFILE_LAYOVER | PROFILE_ACTIVE_LAYOVER)) > 0,
        active_shadow=(bits & PROFILE_ACTIVE_SHADOW) > 0,
        active_layover=(bits & PROFILE_ACTIVE_LAYOVER) > 0,
    )


def splat_oversampled(
    line: NDArray, pixel: NDArray, values: NDArray, shape: tuple[int, int], oversampling: int
) -> NDArray[np.float64]:
    """:func:`splat` with each facet split into ``oversampling``^2 sub-facets of equal power.

    Sub-facet positions follow the local gradients of (line, pixel) over the
    map grid; this smooths the moire of splatting one regular grid onto
    another rotated one.
    """
    if oversampling <= 1:
        return splat(line, pixel, values, shape)
    dl_dy, dl_dx = np.gradient(line)
    dp_dy, dp_dx = np.gradient(pixel)
    offsets = (np.arange(oversampling) + 0.5) / oversampling - 0.5
    out = np.zeros(shape)
    part = np.asarray(values) / oversampling**2
    for oy in offsets:
        for ox in offsets:
            out += splat(line + dl_dx * ox + dl_dy * oy, pixel + dp_dx * ox + dp_dy * oy, part, shape)
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
