"""Foreshortening, layover and shadow maps after Meier et al. (1993).

Pure numerics. Definitions (right-looking radar, look angle theta from the ellipsoid normal):

- foreshortening: the terrain faces the radar (local incidence < ellipsoid incidence) but less
  steeply than the look angle: compressed in range, bright;
- active layover: the terrain faces the radar more steeply than the look angle, so slant range
  decreases along the ground away from the radar (the top is imaged before the foot);
- passive layover: ground before the foot and beyond the top whose returns share slant ranges
  with the active part (slant range below the maximum of nearer ground, or above the minimum of
  farther ground, on the same azimuth line);
- active shadow: the terrain faces away more steeply than 90 deg - theta (the elevation angle
  seen from the satellite decreases along the ground);
- passive shadow: ground hidden behind it (elevation angle at most the maximum of nearer ground).

Layover and shadow may coincide. Algorithm: as Meier et al. (1993), SNAP's SAR simulation and
isce3 (OPERA RTC-S1), one scan per azimuth line, here along exact zero-Doppler terrain profiles:
for every image line the DEM is sampled along the line's ground track (two samples per DEM
pixel across track), then running maxima/minima of the elevation angle and the slant range are
taken from near to far and far to near: O(N) per line, vectorised over blocks of lines, memory
bounded by the block. Each map pixel takes the flags of its nearest profile sample.
Differences to the references: isce3 flags 1 shadow, 2 layover, 3 both and sorts DEM points by
cross-track distance within an azimuth bin (which mixes neighbouring azimuths in rough terrain;
the exact profiles avoid that); SNAP uses 1 layover, 2 shadow; GAMMA 4 layover, 16 shadow; none
of them separates foreshortening, which Meier et al. and the seed paper evaluate.

Bit flags (uint8): 1 foreshortening, 2 active layover, 4 passive layover, 8 active shadow,
16 passive shadow. Evaluation regions (:func:`evaluation_regions`): shadow (any shadow bit),
else foreshortening (foreshortening or any layover bit), else non-distorted.
"""

from __future__ import annotations

import numpy as np
import pyproj
from numpy.typing import NDArray
from scipy import ndimage

from pipeline.sar.lattice import RadarLattice, map_grid_ecef
from pipeline.sar.product import RadarGeometry
from pipeline.sar.surface import surface_normals

FORESHORTENING = 1
ACTIVE_LAYOVER = 2
PASSIVE_LAYOVER = 4
ACTIVE_SHADOW = 8
PASSIVE_SHADOW = 16
LAYOVER = ACTIVE_LAYOVER | PASSIVE_LAYOVER
SHADOW = ACTIVE_SHADOW | PASSIVE_SHADOW

#: bits of :func:`profile_flags` (the scan's raw result)
PROFILE_SHADOW = 1
PROFILE_LAYOVER = 2
PROFILE_ACTIVE_SHADOW = 4
PROFILE_ACTIVE_LAYOVER = 8

REGION_NON_DISTORTED = 0
REGION_FORESHORTENING = 1
REGION_SHADOW = 2


def _fit_inverse(lattice: RadarLattice, easting_m: NDArray, northing_m: NDArray, h_ref: float, degree: int = 3):
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
    lattice: RadarLattice,
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
            shadow * PROFILE_SHADOW
            | layover * PROFILE_LAYOVER
            | active_shadow * PROFILE_ACTIVE_SHADOW
            | active_layover * PROFILE_ACTIVE_LAYOVER
        ).astype(np.uint8)
        f[~inside] = 0
        flags_profile[b : b + block_lines] = f
    i = np.clip(np.round(facet_line).astype(np.int64) - l_start, 0, lines.size - 1)
    j = np.clip(np.round((facet_cross - c_start) / step).astype(np.int64), 0, n_samples - 1)
    return flags_profile[i, j]




def encode_flags(profile_bits: NDArray[np.uint8], cos_local: NDArray, cos_ellipsoid: NDArray,
                 tolerance: float = 1e-6) -> NDArray[np.uint8]:
    """Map flags (see the module docstring) from the scan's bits and the incidence cosines."""
    active_layover = (profile_bits & PROFILE_ACTIVE_LAYOVER) > 0
    layover = ((profile_bits & PROFILE_LAYOVER) > 0) | active_layover
    active_shadow = (profile_bits & PROFILE_ACTIVE_SHADOW) > 0
    shadow = ((profile_bits & PROFILE_SHADOW) > 0) | active_shadow
    facing = np.asarray(cos_local) > np.asarray(cos_ellipsoid) + tolerance
    flags = np.zeros(profile_bits.shape, np.uint8)
    flags[facing & ~active_layover & ~shadow] |= FORESHORTENING
    flags[active_layover] |= ACTIVE_LAYOVER
    flags[layover & ~active_layover] |= PASSIVE_LAYOVER
    flags[active_shadow] |= ACTIVE_SHADOW
    flags[shadow & ~active_shadow] |= PASSIVE_SHADOW
    return flags


def evaluation_regions(flags: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """0 non-distorted, 1 foreshortening (incl. layover), 2 shadow (wins where both apply)."""
    regions = np.zeros(flags.shape, np.uint8)
    regions[(flags & (FORESHORTENING | LAYOVER)) > 0] = REGION_FORESHORTENING
    regions[(flags & SHADOW) > 0] = REGION_SHADOW
    return regions


def distortion_map(
    geometry: RadarGeometry, crs: pyproj.CRS | str, easting_m: NDArray, northing_m: NDArray, height_m: NDArray,
    tile_size: int = 512,
) -> dict[str, NDArray]:
    """Flags and geometry layers of a map grid (rows north to south) with ellipsoidal heights (m).

    Returns ``flags`` (uint8), ``local_incidence_deg``, ``ellipsoid_incidence_deg`` (float32).
    Work is done in map tiles and blocks of image lines; besides the inputs and outputs, memory
    holds two float32 arrays per map pixel (its radar line and cross-track position) and one
    uint8 per profile sample.
    """
    from pipeline.core.geodesy import ellipsoid_normal

    height_m = np.asarray(height_m, dtype=np.float32)
    rows, cols = height_m.shape
    dx = float(easting_m[1] - easting_m[0])
    dy = float(northing_m[0] - northing_m[1])
    h_min, h_max = float(height_m.min()), float(height_m.max())
    lattice = RadarLattice(geometry, crs, easting_m, northing_m, (h_min, h_max))
    tiles = [(r, c, min(tile_size, rows - r), min(tile_size, cols - c))
             for r in range(0, rows, tile_size) for c in range(0, cols, tile_size)]

    line = np.empty(height_m.shape, np.float32)
    cross = np.empty(height_m.shape, np.float32)
    for r, c, h, w in tiles:
        ee, nn = np.meshgrid(easting_m[c : c + w], northing_m[r : r + h])
        line[r : r + h, c : c + w] = lattice.radar_coordinates(ee, nn, height_m[r : r + h, c : c + w]).line
        cross[r : r + h, c : c + w] = lattice.radar_coordinates(ee, nn, np.full(ee.shape, h_min)).pixel
    bits = profile_flags(lattice, easting_m, northing_m, height_m, line, cross, h_min)
    del line, cross

    flags = np.empty(height_m.shape, np.uint8)
    local = np.empty(height_m.shape, np.float32)
    ellipsoid = np.empty(height_m.shape, np.float32)
    for r, c, h, w in tiles:
        r0, c0 = max(r - 1, 0), max(c - 1, 0)
        r1, c1 = min(r + h + 1, rows), min(c + w + 1, cols)
        ecef, lat, lon = map_grid_ecef(crs, easting_m[c0:c1], northing_m[r0:r1], height_m[r0:r1, c0:c1].astype(np.float64))
        normal, _ = surface_normals(ecef, dx, dy)
        inner = (slice(r - r0, r - r0 + h), slice(c - c0, c - c0 + w))
        ee, nn = np.meshgrid(easting_m[c : c + w], northing_m[r : r + h])
        los = lattice.line_of_sight(ee, nn, height_m[r : r + h, c : c + w])
        cos_local = np.einsum("...i,...i->...", normal[inner], los)
        cos_ell = np.einsum("...i,...i->...", ellipsoid_normal(lat[inner], lon[inner]), los)
        out = (slice(r, r + h), slice(c, c + w))
        flags[out] = encode_flags(bits[out], cos_local, cos_ell)
        local[out] = np.degrees(np.arccos(np.clip(cos_local, -1, 1)))
        ellipsoid[out] = np.degrees(np.arccos(np.clip(cos_ell, -1, 1)))
    return {"flags": flags, "local_incidence_deg": local, "ellipsoid_incidence_deg": ellipsoid}
