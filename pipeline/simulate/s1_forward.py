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
  zero-Doppler terrain profiles, one per image line (:func:`profile_flags`).

Power = sigma0(cover, local incidence) x area, summed (layover) into the
image by bilinear splatting and normalised by the ground-range pixel area,
which gives the ellipsoid-referenced sigma0 that ESA's products calibrate to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj
from numpy.typing import NDArray
from scipy import ndimage

from ..sar.lattice import RadarLattice, map_grid_ecef
from ..sar.product import RadarGeometry
from ..sar.radiometry import splat
from ..sar.surface import surface_normals

SHADOW_BIT = 1
LAYOVER_BIT = 2
ACTIVE_SHADOW_BIT = 4
ACTIVE_LAYOVER_BIT = 8


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

    flags = profile_flags(lattice, easting_m, northing_m, height_m, line, cross_track, float(height_m.min()))
    return FacetGeometry(
        line=line,
        pixel=pixel,
        slant_range_m=slant,
        cos_local_incidence=cos_local,
        area_m2=area,
        shadow=(flags & (SHADOW_BIT | ACTIVE_SHADOW_BIT)) > 0,
        layover=(flags & (LAYOVER_BIT | ACTIVE_LAYOVER_BIT)) > 0,
        active_shadow=(flags & ACTIVE_SHADOW_BIT) > 0,
        active_layover=(flags & ACTIVE_LAYOVER_BIT) > 0,
    )


def _fit_inverse(lattice: "RadarLattice", easting_m: NDArray, northing_m: NDArray, h_ref: float, degree: int = 3):
    """Bivariate polynomials E(line, cross), N(line, cross) inverting the lattice at height ``h_ref``."""
    e = np.linspace(easting_m.min(), easting_m.max(), 80)
    n = np.linspace(northing_m.min(), northing_m.max(), 80)
    ee, nn = np.meshgrid(e, n)
    hh = np.full_like(ee, h_ref)
    rc = lattice.radar_coordinates(ee, nn, hh)
    li, ct = rc.line.ravel(), rc.pixel.ravel()
    l0, ls = li.mean(), li.std()
    c0, cs = ct.mean(), ct.std()
    u, v = (li - l0) / ls, (ct - c0) / cs
    terms = [u**i * v**j for i in range(degree + 1) for j in range(degree + 1 - i)]
    a = np.stack(terms, axis=1)
    ce, *_ = np.linalg.lstsq(a, ee.ravel(), rcond=None)
    cn, *_ = np.linalg.lstsq(a, nn.ravel(), rcond=None)

    def inverse(line: NDArray, cross: NDArray) -> tuple[NDArray, NDArray]:
        uu, vv = (line - l0) / ls, (cross - c0) / cs
        t = [uu**i * vv**j for i in range(degree + 1) for j in range(degree + 1 - i)]
        return sum(c * x for c, x in zip(ce, t)), sum(c * x for c, x in zip(cn, t))

    residual = np.hypot(*(np.subtract(inverse(li, ct), (ee.ravel(), nn.ravel()))))
    return inverse, float(residual.max())


def profile_flags(
    lattice: "RadarLattice",
    easting_m: NDArray,
    northing_m: NDArray,
    height_m: NDArray,
    facet_line: NDArray,
    facet_cross: NDArray,
    h_ref: float,
    oversampling: int = 2,
    block_lines: int = 128,
) -> NDArray[np.uint8]:
    """Shadow and layover bits of every facet from exact zero-Doppler profiles.

    For every image line, the terrain is sampled along the line's
    zero-Doppler ground track (a true 1-D profile, ``oversampling`` samples
    per facet spacing in cross-track), then scanned from near to far range:

    - shadow: elevation angle at the satellite <= running maximum of nearer samples;
      active where it decreases along the profile (the slope faces away);
    - layover: slant range < running maximum of nearer samples, or > running
      minimum of farther ones; active where it decreases along the profile.

    Each facet takes the bits of its nearest profile sample.
    """
    inverse, residual = _fit_inverse(lattice, easting_m, northing_m, h_ref)
    if residual > 2.0:  # record-to-record srgr steps (< 0.1 px) are not polynomial
        raise RuntimeError(f"zero-Doppler profile mapping is inaccurate ({residual:.2f} m)")
    dx = float(easting_m[1] - easting_m[0])
    dy = float(northing_m[0] - northing_m[1])
    # cross-track sample spacing in pixel units
    pixel_per_m = (facet_cross.max() - facet_cross.min()) / max(
        np.hypot(easting_m.max() - easting_m.min(), northing_m.max() - northing_m.min()), 1.0
    )
    step = dx * pixel_per_m / oversampling
    c_start = float(facet_cross.min()) - 2 * step
    n_samples = int(np.ceil((facet_cross.max() + 2 * step - c_start) / step)) + 1
    cross = c_start + step * np.arange(n_samples)
    l_start = int(np.floor(facet_line.min())) - 1
    l_stop = int(np.ceil(facet_line.max())) + 2
    lines = np.arange(l_start, l_stop)
    flags_profile = np.zeros((lines.size, n_samples), np.uint8)
    for b in range(0, lines.size, block_lines):
        ll, cc = np.meshgrid(lines[b : b + block_lines].astype(float), cross, indexing="ij")
        e, n = inverse(ll, cc)
        col = (e - easting_m[0]) / dx
        row = (northing_m[0] - n) / dy
        inside = (col >= 0) & (col <= easting_m.size - 1) & (row >= 0) & (row <= northing_m.size - 1)
        h = ndimage.map_coordinates(height_m, [row, col], order=1, mode="nearest")
        el = lattice.interpolate("elevation_deg", e, n, h)
        r = lattice.interpolate("slant_range_m", e, n, h)
        near_el = np.maximum.accumulate(el, axis=1)
        near_r = np.maximum.accumulate(r, axis=1)
        far_r = np.minimum.accumulate(r[:, ::-1], axis=1)[:, ::-1]
        shadow = np.zeros(el.shape, bool)
        shadow[:, 1:] = el[:, 1:] <= near_el[:, :-1] + 1e-9
        layover = np.zeros(r.shape, bool)
        layover[:, 1:] |= r[:, 1:] < near_r[:, :-1] - 1e-6
        layover[:, :-1] |= r[:, :-1] > far_r[:, 1:] + 1e-6
        active_shadow = np.zeros(el.shape, bool)
        active_shadow[:, 1:] = np.diff(el, axis=1) < 0
        active_layover = np.zeros(r.shape, bool)
        active_layover[:, 1:] = np.diff(r, axis=1) < 0
        f = (
            shadow * SHADOW_BIT
            | layover * LAYOVER_BIT
            | active_shadow * ACTIVE_SHADOW_BIT
            | active_layover * ACTIVE_LAYOVER_BIT
        ).astype(np.uint8)
        f[~inside] = 0
        flags_profile[b : b + block_lines] = f
    i = np.clip(np.round(facet_line).astype(np.int64) - l_start, 0, lines.size - 1)
    j = np.clip(np.round((facet_cross - c_start) / step).astype(np.int64), 0, n_samples - 1)
    return flags_profile[i, j]


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
