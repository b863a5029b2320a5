"""Synthetic Alpine relief: ridged multifractal mountains with carved valleys, lakes and voids.

Pure numerics. Heights are orthometric (over EGM96, like SRTM), metres, on
the 1 arc-second grid of an SRTM tile: 3601 x 3601 nodes, rows north to
south, node (0, 0) at the tile's north-west corner (pixel-centre
registration on whole arc-seconds).

The relief is the sum of octaves of value noise (random lattices upsampled
with cubic splines) combined as Musgrave's ridged multifractal: each octave
contributes ``(1 - |n|)^2`` weighted by the previous octave, which makes
sharp crests and smooth valleys. Two valley networks (the zero sets of
domain-warped noise fields, so they are connected and meander at several
scales) carve U-shaped valleys whose floors lie between 300 and 800 m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline.sar.surface import slope_aspect  # noqa: F401  (re-exported for the simulator)
from pipeline.simulate.erosion import fill_pits, stream_power_erosion

ARCSEC_DEG = 1.0 / 3600.0
TILE_SIZE = 3601
METRES_PER_DEG_LAT = 111_132.0


@dataclass(frozen=True)
class TerrainParameters:
    """Shape of the relief; lengths in metres, heights in metres over EGM96."""

    valley_floor_min_m: float = 300.0
    valley_floor_max_m: float = 800.0
    peak_height_m: float = 3800.0
    coarse_step: int = 3
    billow_octaves: int = 2
    erosion_iterations: int = 25
    erosion_k_dt: float = 0.004
    channel_smoothing: float = 0.8
    detail_wavelength_m: float = 700.0
    detail_amplitude_m: float = 120.0
    ridge_wavelength_m: float = 12_000.0
    octaves: int = 6
    lacunarity: float = 2.0
    gain: float = 1.2
    roughness: float = 0.9
    sharpness: float = 1.5
    #: displacement (a fraction of the billow wavelength) of the valley networks' domain warp
    valley_meander: float = 0.35
    #: half-width, in units of the billow noise, of the rounded bottom of the valley networks
    valley_rounding: float = 0.1
    peakiness: float = 1.8
    lakes: int = 4
    lake_radius_m: tuple[float, float] = (250.0, 600.0)
    lake_depth_m: tuple[float, float] = (8.0, 25.0)
    voids: int = 12


def value_noise(
    rng: np.random.Generator, shape: tuple[int, int], pixel_m: tuple[float, float], wavelength_m: float
) -> NDArray[np.float32]:
    """Smooth noise in [-1, 1] of the given wavelength on a (rows, cols) grid with (dy, dx) pixels."""
    dy, dx = pixel_m
    rows = int(np.ceil(shape[0] * dy / wavelength_m)) + 4
    cols = int(np.ceil(shape[1] * dx / wavelength_m)) + 4
    lattice = rng.uniform(-1.0, 1.0, size=(rows, cols)).astype(np.float32)
    r = np.arange(shape[0]) * dy / wavelength_m + 1.5
    c = np.arange(shape[1]) * dx / wavelength_m + 1.5
    along_rows = _interp_cols(lattice.T, r).T  # (shape[0], cols)
    return unit_range(_interp_cols(along_rows, c))


def unit_range(field: NDArray) -> NDArray[np.float32]:
    """A zero-mean random field scaled to a standard deviation of 0.4 and clipped to [-1, 1] (the
    distribution of :func:`value_noise`, which thresholds on such fields assume)."""
    return np.clip(field / (2.5 * field.std() + 1e-12), -1.0, 1.0).astype(np.float32)


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    pixel_m: tuple[float, float],
    largest_m: float,
    octaves: int,
    persistence: float = 0.5,
) -> NDArray[np.float32]:
    """Fractional Brownian motion in about [-1, 1]: ``octaves`` of :func:`value_noise`, wavelengths
    halving from ``largest_m`` (m), amplitudes multiplied by ``persistence`` from one octave to the
    next, the sum divided by the amplitudes' sum. Level sets of it are ragged at every octave's scale
    (the higher the persistence, the more)."""
    out = np.zeros(shape, np.float32)
    total = 0.0
    for k in range(octaves):
        amp = persistence**k
        out += amp * value_noise(rng, shape, pixel_m, largest_m / 2**k)
        total += amp
    return out / total


def billow(n: NDArray, rounding: float) -> NDArray[np.float32]:
    """Billow profile of noise ``n`` in [-1, 1]: 0 on the zero lines, 1 at |n| = 1, rising like
    sqrt(|n|) away from them but with a rounded bottom of half-width ``rounding`` (in units of n): its
    slope stays finite, at most 1 / sqrt(2 rounding (sqrt(1 + rounding^2) - rounding)) times n's
    (sqrt(|n|) alone has an infinite slope on the zero lines: a crease all along them)."""
    soft_abs = np.sqrt(n * n + rounding * rounding) - rounding
    return ((soft_abs / (np.sqrt(1.0 + rounding * rounding) - rounding)) ** 0.5).astype(np.float32)


def domain_warp(field: NDArray, rng: np.random.Generator, pixel_m: tuple[float, float], wavelength_m: float,
                amplitude_m: float) -> NDArray[np.float32]:
    """``field`` (rows, cols) resampled at positions displaced by two fBm fields (three octaves from
    ``wavelength_m``, m) of about ``amplitude_m`` (m) peak: its level sets meander at those scales."""
    shape = field.shape
    dy = (amplitude_m / pixel_m[0]) * fractal_noise(rng, shape, pixel_m, wavelength_m, 3)
    dx = (amplitude_m / pixel_m[1]) * fractal_noise(rng, shape, pixel_m, wavelength_m, 3)
    rows, cols = np.indices(shape, dtype=np.float32)
    return ndimage.map_coordinates(field, [rows + dy, cols + dx], order=3, mode="mirror").astype(np.float32)


def _interp_cols(block: NDArray, c: NDArray) -> NDArray[np.float32]:
    """Cubic B-spline interpolation of each row of ``block`` at fractional columns ``c``."""
    coeffs = ndimage.spline_filter1d(block, order=3, axis=1)
    i = np.floor(c).astype(np.int64)
    t = (c - i).astype(np.float32)
    w0 = (1 - t) ** 3 / 6
    w1 = (3 * t**3 - 6 * t**2 + 4) / 6
    w2 = (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6
    w3 = t**3 / 6
    out = np.empty((coeffs.shape[0], c.size), np.float32)
    _four_taps(np.ascontiguousarray(coeffs, np.float64), i, w0, w1, w2, w3, out)
    return out


@numba.njit(cache=True, parallel=True)
def _four_taps(coeffs, i, w0, w1, w2, w3, out):  # pragma: no cover
    # out[r, k] = sum of coeffs[r, i[k] - 1 .. i[k] + 2] (indices clamped to the row) weighted by w0..w3
    # [k], in float64 and in this order, then rounded to float32: one pass, no temporaries
    n = coeffs.shape[1]
    for r in numba.prange(coeffs.shape[0]):
        row = coeffs[r]
        for k in range(i.size):
            j = i[k]
            a = row[min(max(j - 1, 0), n - 1)] * np.float64(w0[k])
            b = row[min(max(j, 0), n - 1)] * np.float64(w1[k])
            c = row[min(max(j + 1, 0), n - 1)] * np.float64(w2[k])
            d = row[min(max(j + 2, 0), n - 1)] * np.float64(w3[k])
            out[r, k] = np.float32(a + b + c + d)


@dataclass(frozen=True)
class Terrain:
    """The simulated relief on the tile grid.

    Attributes
    ----------
    height_m : (3601, 3601) float32
        True orthometric height (m over EGM96), no voids.
    water : (3601, 3601) bool
        Lake surfaces (flat).
    void : (3601, 3601) bool
        Nodes that the HGT file marks as voids (-32768).
    valley : (3601, 3601) float32
        0 on valley axes, 1 away from valleys (used for land cover).
    """

    height_m: NDArray[np.float32]
    water: NDArray[np.bool_]
    void: NDArray[np.bool_]
    valley: NDArray[np.float32]


def tile_pixel_m(south_lat_deg: float) -> tuple[float, float]:
    """(dy, dx) node spacing in metres of a 1 arc-second tile at its mid latitude."""
    dy = METRES_PER_DEG_LAT * ARCSEC_DEG
    dx = dy * np.cos(np.radians(south_lat_deg + 0.5))
    return dy, dx


def alpine_terrain(south_lat_deg: float, seed: int, params: TerrainParameters = TerrainParameters(),
                   protect: tuple[slice, slice] | None = None) -> Terrain:
    """Generate the relief of one 1-degree tile (see the module docstring).

    Parameters
    ----------
    south_lat_deg : float
        Latitude of the tile's south edge (sets the east-west node spacing).
    seed : int
        Random seed; the same seed gives identical heights.
    params : TerrainParameters
        Shape parameters.
    protect : (row slice, col slice) or None
        A window (the area of interest) where lakes are placed and voids are not.
    """
    rng = np.random.default_rng(seed)
    warp_rng = np.random.default_rng([seed, 1])  # its own stream: the relief's draws stay those of the seed
    shape = (TILE_SIZE, TILE_SIZE)
    pix = tile_pixel_m(south_lat_deg)
    step = params.coarse_step
    coarse_shape = ((TILE_SIZE - 1) // step + 1,) * 2
    coarse_pix = (pix[0] * step, pix[1] * step)

    # ridged multifractal on the coarse grid
    relief = np.zeros(coarse_shape, np.float32)
    weight = np.ones(coarse_shape, np.float32)
    wavelength, amplitude = params.ridge_wavelength_m, 1.0
    for octave in range(params.octaves):
        n = value_noise(rng, coarse_shape, coarse_pix, wavelength)
        # coarse octaves: billows, whose zero lines are connected valleys; finer octaves: ridges, whose
        # zero lines are sharp crests
        if octave < params.billow_octaves:
            # the zero lines of smooth noise are smooth curves: warped, they meander at every scale
            # (else long circular arcs show in the relief); a soft |n| rounds the valley bottom (|n|**0.5
            # alone has an infinite slope there: a crease along the whole line)
            n = domain_warp(n, warp_rng, coarse_pix, wavelength / 3.0, params.valley_meander * wavelength)
            signal = billow(n, params.valley_rounding)
        else:
            signal = (1.0 - np.abs(n)) ** params.sharpness
        relief += amplitude * weight * signal
        weight = np.clip(params.gain * signal, 0.25, 1.0)
        wavelength /= params.lacunarity
        amplitude /= params.lacunarity**params.roughness
    low, high = np.percentile(relief, [1.0, 99.8])
    relief = (relief - low) / (high - low)
    floor = params.valley_floor_min_m + (params.valley_floor_max_m - params.valley_floor_min_m) * (
        0.5 + 0.5 * value_noise(rng, coarse_shape, coarse_pix, 40_000.0)
    )
    massif = 0.8 + 0.2 * value_noise(rng, coarse_shape, coarse_pix, 30_000.0)
    coarse = floor + (params.peak_height_m - floor) * massif * np.clip(relief, 0, None) ** params.peakiness

    # fluvial/glacial carving along the drainage network, then sediment-filled flat floors
    coarse = stream_power_erosion(coarse, coarse_pix, params.erosion_iterations, params.erosion_k_dt)
    # soften the single-cell D8 channels into valley bottoms
    coarse = ndimage.gaussian_filter(coarse, params.channel_smoothing)
    coarse = np.maximum(coarse, floor)
    # height above the lowest ground within about 3 km: 0 on valley floors. The running minimum jumps
    # where the window's lowest node leaves it (along the window's straight edges); smoothed, it
    # leaves no straight steps in the detail that this field scales
    window_cells = int(3000.0 / coarse_pix[0]) | 1
    base = ndimage.gaussian_filter(ndimage.minimum_filter(coarse, size=window_cells), window_cells / 4.0)
    valley = np.clip((coarse - base) / 600.0, 0.0, 1.0).astype(np.float32)

    zoom = (shape[0] / coarse_shape[0], shape[1] / coarse_shape[1])
    height = ndimage.zoom(coarse, zoom, order=3, grid_mode=False)[: shape[0], : shape[1]]
    valley = np.clip(ndimage.zoom(valley, zoom, order=1)[: shape[0], : shape[1]], 0, 1)
    floor_fine = ndimage.zoom(floor, zoom, order=1)[: shape[0], : shape[1]]
    # fine crests and gullies, fading out on valley floors
    wavelength, amplitude = params.detail_wavelength_m, params.detail_amplitude_m
    for _ in range(3):
        detail = 1.0 - np.abs(value_noise(rng, shape, pix, wavelength))
        height += amplitude * valley * (detail - 0.5)
        wavelength /= 2.0
        amplitude /= 2.0
    height = np.maximum(height, floor_fine)
    # soft cap: summits stay below peak_height + 200 m
    over = height > params.peak_height_m
    height[over] = params.peak_height_m + 200.0 * np.tanh((height[over] - params.peak_height_m) / 200.0)
    water = np.zeros(shape, bool)
    window = protect or (slice(0, shape[0]), slice(0, shape[1]))
    # lakes: a basin scooped out of a valley floor, then flooded to its spill point (the water
    # surface meets its shores at the same height: no rims, no steps)
    smooth = ndimage.uniform_filter(height, 9)
    floors = (valley[window] < 0.02) & (ndimage.minimum_filter(smooth, 41)[window] >= smooth[window] - 0.5)
    candidates = np.argwhere(floors)
    for _ in range(params.lakes):
        if candidates.size == 0:
            break
        r0, c0 = candidates[rng.integers(len(candidates))]
        r0 += window[0].start
        c0 += window[1].start
        win, lake, surface = _lake(height, r0, c0, pix, params, rng)
        height[win] = surface
        water[win] |= lake
        # lakes apart: no later basin scoops into this one
        apart = np.hypot((candidates[:, 0] + window[0].start - r0) * pix[0],
                         (candidates[:, 1] + window[1].start - c0) * pix[1]) > 3 * params.lake_radius_m[1]
        candidates = candidates[apart]

    void = np.zeros(shape, bool)
    dzdy, dzdx = np.gradient(height, pix[0], pix[1])
    steep = np.argwhere(np.hypot(dzdx, dzdy) > np.tan(np.radians(50.0)))
    if protect is not None and steep.size:
        inside = (
            (steep[:, 0] >= window[0].start) & (steep[:, 0] < window[0].stop)
            & (steep[:, 1] >= window[1].start) & (steep[:, 1] < window[1].stop)
        )
        steep = steep[~inside]
    for _ in range(params.voids if steep.size else 0):
        r0, c0 = steep[rng.integers(len(steep))]
        rad = rng.uniform(2.0, 6.0)
        win = (slice(max(r0 - 7, 0), min(r0 + 8, shape[0])), slice(max(c0 - 7, 0), min(c0 + 8, shape[1])))
        rows, cols = np.ogrid[win]
        void[win] |= (rows - r0) ** 2 + (cols - c0) ** 2 <= rad**2
    return Terrain(height_m=height, water=water, void=void, valley=valley)


def _lake(
    height: NDArray, r0: int, c0: int, pix: tuple[float, float], params: TerrainParameters, rng: np.random.Generator
) -> tuple[tuple[slice, slice], NDArray[np.bool_], NDArray]:
    """A lake around node (r0, c0): a smooth basin with a wandering shoreline (radius varying with the
    bearing by a few harmonics), scooped out of the terrain and flooded to its spill level by the
    priority flood. Returns the window, the lake mask in it and the new heights there (the water
    surface on the lake, the scooped ground around it: the scoop fades to nothing at the shoreline
    radius, so the window's edge is untouched)."""
    radius_m = rng.uniform(*params.lake_radius_m)
    depth_m = rng.uniform(*params.lake_depth_m)
    reach = int(1.5 * params.lake_radius_m[1] / min(pix)) + 2
    win = (slice(max(r0 - reach, 0), min(r0 + reach + 1, height.shape[0])),
           slice(max(c0 - reach, 0), min(c0 + reach + 1, height.shape[1])))
    dy = (np.arange(win[0].start, win[0].stop) - r0)[:, None] * pix[0]
    dx = (np.arange(win[1].start, win[1].stop) - c0)[None, :] * pix[1]
    bearing = np.arctan2(dy, dx)
    k = np.arange(1, 6)
    amplitude = 0.25 * rng.uniform(0.3, 1.0, k.size) / k
    phase = rng.uniform(0, 2 * np.pi, k.size)
    shore = radius_m * (1 + np.sum(amplitude[:, None, None] * np.cos(k[:, None, None] * bearing + phase[:, None, None]), axis=0))
    scoop = depth_m * np.clip(1 - (np.hypot(dy, dx) / shore) ** 2, 0, None) ** 1.5
    ground = height[win].astype(np.float64) - scoop
    filled = fill_pits(ground, 0.0)
    labels, _ = ndimage.label(filled > ground + 0.05)
    lake = (labels == labels[r0 - win[0].start, c0 - win[1].start]) & (labels > 0)
    return win, lake, np.where(lake, filled, ground)


def flat_terrain(height_m: float) -> Terrain:
    """A flat tile at one orthometric height (for geometry and radiometry tests): no lakes, no voids."""
    shape = (TILE_SIZE, TILE_SIZE)
    return Terrain(
        height_m=np.full(shape, height_m, np.float32),
        water=np.zeros(shape, bool),
        void=np.zeros(shape, bool),
        valley=np.ones(shape, np.float32),
    )
