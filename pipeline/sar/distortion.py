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
taken from near to far and far to near: O(N) per line. Each map pixel takes the flags of its
nearest profile sample. The work runs in compiled kernels (numba, lines and rows in parallel),
strip by strip of map rows (:func:`distortion_strips`): the profiles a strip needs are scanned
once each and kept while later strips need them, the DEM rows they cross are read once each, so
memory grows with the grid's width, not its area.
Differences to the references: isce3 flags 1 shadow, 2 layover, 3 both and sorts DEM points by
cross-track distance within an azimuth bin (which mixes neighbouring azimuths in rough terrain;
the exact profiles avoid that); SNAP uses 1 layover, 2 shadow; GAMMA 4 layover, 16 shadow; none
of them separates foreshortening, which Meier et al. and the seed paper evaluate.

Bit flags (uint8): 1 foreshortening, 2 active layover, 4 passive layover, 8 active shadow,
16 passive shadow. Evaluation regions (:func:`evaluation_regions`): shadow (any shadow bit),
else foreshortening (foreshortening or any layover bit), else non-distorted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numba
import numpy as np
import pyproj
from numpy.typing import NDArray

from pipeline.core.grid import RowCache
from pipeline.sar.facets import (SurfaceNodes, incidence_deg, lattice_fields, radar_extent, radar_line,
                                 radar_pixel, radar_tables, terrain_normal)
# the flag conventions live in pipeline.sar.flags (numpy only); re-exported here
from pipeline.sar.flags import (  # noqa: F401
    ACTIVE_LAYOVER, ACTIVE_SHADOW, FORESHORTENING, LAYOVER, PASSIVE_LAYOVER, PASSIVE_SHADOW,
    REGION_FORESHORTENING, REGION_NON_DISTORTED, REGION_SHADOW, SHADOW, evaluation_regions,
)
from pipeline.sar.lattice import RadarLattice, lattice_row, map_row_table, row_lookup2, row_lookup5, trilinear2
from pipeline.sar.product import RadarGeometry

#: bits of :func:`scan_profiles` (the scan's raw result)
PROFILE_SHADOW = 1
PROFILE_LAYOVER = 2
PROFILE_ACTIVE_SHADOW = 4
PROFILE_ACTIVE_LAYOVER = 8


@dataclass(frozen=True)
class ProfileInverse:
    """Bivariate polynomials E(line, cross), N(line, cross) (m) inverting the radar geometry at the
    reference height: where the zero-Doppler profile of an image line crosses the map.
    ``line`` is the image line, ``cross`` the radar pixel at the reference height, both normalised
    as u = (line - l0) / ls, v = (cross - c0) / cs; terms u^i v^j in the order of ``powers``."""

    l0: float
    ls: float
    c0: float
    cs: float
    powers: NDArray[np.int64]  # (terms, 2): exponents (i, j)
    coef_e: NDArray[np.float64]
    coef_n: NDArray[np.float64]

    def __call__(self, line: NDArray, cross: NDArray) -> tuple[NDArray, NDArray]:
        """(easting, northing) in metres of profile positions."""
        u, v = (np.asarray(line) - self.l0) / self.ls, (np.asarray(cross) - self.c0) / self.cs
        terms = [u**i * v**j for i, j in self.powers]
        return sum(c * x for c, x in zip(self.coef_e, terms)), sum(c * x for c, x in zip(self.coef_n, terms))

    def args(self) -> tuple:
        return self.l0, self.ls, self.c0, self.cs, self.powers, self.coef_e, self.coef_n


def fit_profile_inverse(lattice: RadarLattice, easting_m: NDArray, northing_m: NDArray, h_ref: float,
                        degree: int = 3) -> tuple[ProfileInverse, float]:
    """:class:`ProfileInverse` at height ``h_ref`` (m), fitted on 80 x 80 points of the grid, and its largest
    residual (m)."""
    e = np.linspace(easting_m.min(), easting_m.max(), 80)
    n = np.linspace(northing_m.min(), northing_m.max(), 80)
    ee, nn = np.meshgrid(e, n)
    rc = lattice.radar_coordinates(ee, nn, np.full_like(ee, h_ref))
    li, ct = rc.line.ravel(), rc.pixel.ravel()
    l0, ls, c0, cs = li.mean(), li.std(), ct.mean(), ct.std()
    u, v = (li - l0) / ls, (ct - c0) / cs
    powers = np.array([(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)], np.int64)
    a = np.stack([u**i * v**j for i, j in powers], axis=1)
    ce, *_ = np.linalg.lstsq(a, ee.ravel(), rcond=None)
    cn, *_ = np.linalg.lstsq(a, nn.ravel(), rcond=None)
    inverse = ProfileInverse(float(l0), float(ls), float(c0), float(cs), powers, ce, cn)
    residual = np.hypot(*(np.subtract(inverse(li, ct), (ee.ravel(), nn.ravel()))))
    return inverse, float(residual.max())


@dataclass(frozen=True)
class ProfileGrid:
    """Where the zero-Doppler profiles are sampled: image lines ``l_start + i`` (i < ``n_lines``), each at
    cross-track positions ``c_start + step * j`` (radar pixels at the reference height, j < ``n_samples``)."""

    l_start: int
    n_lines: int
    c_start: float
    step: float
    n_samples: int

    @classmethod
    def covering(cls, line_range: tuple[float, float], cross_range: tuple[float, float], map_diagonal_m: float,
                 map_spacing_m: float, oversampling: int = 2) -> ProfileGrid:
        """Every image line of ``line_range`` (one line of margin) and ``oversampling`` samples per map spacing
        across the track over ``cross_range`` (two samples of margin)."""
        pixel_per_m = (cross_range[1] - cross_range[0]) / max(map_diagonal_m, 1.0)
        step = map_spacing_m * pixel_per_m / oversampling
        c_start = float(cross_range[0]) - 2 * step
        n_samples = int(np.ceil((cross_range[1] + 2 * step - c_start) / step)) + 1
        l_start = int(np.floor(line_range[0])) - 1
        return cls(l_start, int(np.ceil(line_range[1])) + 2 - l_start, c_start, float(step), n_samples)

    def index(self, line: NDArray, cross: NDArray) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(profile line, sample) nearest to facets at (line, cross), clipped to the grid."""
        i = np.clip(np.round(line).astype(np.int64) - self.l_start, 0, self.n_lines - 1)
        j = np.clip(np.round((cross - self.c_start) / self.step).astype(np.int64), 0, self.n_samples - 1)
        return i, j


@dataclass(frozen=True)
class _MapAxes:
    """The map grid as the compiled kernels see it."""

    e0: float  # easting of column 0 (m)
    n0: float  # northing of row 0 (m)
    dx: float
    dy: float  # northing step, positive (rows go south)
    rows: int
    cols: int


def profile_rows(inverse: ProfileInverse, grid: ProfileGrid, axes: _MapAxes, first: int, stop: int) -> tuple[int, int]:
    """Map rows [row0, row1) that the profiles of profile lines [first, stop) read (bilinear, clamped): those of
    the first, middle and last line's samples, two rows of margin."""
    lines = grid.l_start + np.array([first, (first + stop - 1) / 2, stop - 1], float)
    n_min, n_max = _northing_range(lines, grid.c_start, grid.step, grid.n_samples, *inverse.args())
    row_min, row_max = (axes.n0 - n_max) / axes.dy, (axes.n0 - n_min) / axes.dy
    lo = int(np.clip(np.floor(row_min) - 2, 0, axes.rows - 1))
    hi = int(np.clip(np.ceil(row_max) + 3, 0, axes.rows - 1))
    return lo, hi + 1


def scan_profiles(lattice: RadarLattice, inverse: ProfileInverse, grid: ProfileGrid, axes: _MapAxes,
                  height_rows: NDArray, row0: int, first: int, stop: int) -> NDArray[np.uint8]:
    """Profile bits (``PROFILE_*``) of profile lines [first, stop) (lines ``grid.l_start + first`` ...), shape
    (lines, grid.n_samples).

    ``height_rows``: ellipsoidal heights (m) of map rows [row0, row0 + len) covering
    :func:`profile_rows`, every column. Lines run in parallel (numba threads).
    """
    out = np.zeros((stop - first, grid.n_samples), np.uint8)
    rows = np.ascontiguousarray(height_rows, dtype=np.float32)
    _scan_kernel(float(grid.l_start + first), grid.c_start, grid.step, *inverse.args(), rows, row0,
                 axes.e0, axes.n0, axes.dx, axes.dy, axes.rows, axes.cols,
                 *lattice_fields(lattice, ("elevation_deg", "slant_range_m")), out)
    return out


def _axes(easting_m: NDArray, northing_m: NDArray) -> _MapAxes:
    return _MapAxes(float(easting_m[0]), float(northing_m[0]), float(easting_m[1] - easting_m[0]),
                    float(northing_m[0] - northing_m[1]), int(northing_m.size), int(easting_m.size))


def distortion_strips(
    geometry: RadarGeometry,
    crs: pyproj.CRS | str,
    easting_m: NDArray,
    northing_m: NDArray,
    read_heights: Callable[[int, int], NDArray],
    height_range_m: tuple[float, float],
    region: tuple[int, int, int, int] | None = None,
    strip_rows: int = 128,
    oversampling: int = 2,
    ellipsoid_incidence: bool = True,
    local_incidence: bool = True,
) -> Iterator[tuple[int, dict[str, NDArray]]]:
    """Flags and geometry layers of a map grid (rows north to south), strip after strip of rows, in bounded
    memory.

    ``read_heights(row0, row1)``: ellipsoidal heights (m) of map rows [row0, row1), every column (a
    window read of a file, or a slice of an array); ``height_range_m``: their minimum and maximum.
    ``region``: (row0, row1, col0, col1), the part of the grid to map (default: all of it); the
    profiles see the whole grid, so ridges outside the region still shadow and lay over into it.
    Yields ``(row, layers)`` for strips of ``strip_rows`` rows of the region from its top, ``layers``
    as :func:`distortion_map`'s (the region's columns; without ``ellipsoid_incidence_deg`` unless
    ``ellipsoid_incidence``, without ``local_incidence_deg`` unless ``local_incidence``). Memory: the
    strip's arrays (about 100 bytes a pixel), the profiles its pixels fall on (one byte a sample,
    ``oversampling`` samples a pixel across the track, the lines of the strip plus those its width spans
    in azimuth) and the DEM rows those profiles cross: it grows with the grid's width, not its height.
    The result does not depend on ``strip_rows``.
    """
    axes = _axes(easting_m, northing_m)
    h_min, h_max = float(height_range_m[0]), float(height_range_m[1])
    lattice = RadarLattice(geometry, crs, easting_m, northing_m, (h_min, h_max))
    inverse, residual = fit_profile_inverse(lattice, easting_m, northing_m, h_min)
    if residual > 2.0:  # record-to-record srgr steps (< 0.1 px) are not polynomial
        raise RuntimeError(f"zero-Doppler profile mapping is inaccurate ({residual:.2f} m)")
    # the profiles' extent: lines at the extreme heights, cross-track positions at the reference height
    line_min, line_max, _, _ = radar_extent(lattice, easting_m, northing_m, (h_min, h_max))
    _, _, cross_min, cross_max = radar_extent(lattice, easting_m, northing_m, (h_min, h_min))
    diagonal = float(np.hypot(easting_m.max() - easting_m.min(), northing_m.max() - northing_m.min()))
    grid = ProfileGrid.covering((line_min, line_max), (cross_min, cross_max), diagonal, axes.dx, oversampling)
    surface = SurfaceNodes.of(crs, easting_m, northing_m)
    tables = radar_tables(lattice)
    rows_read = RowCache(read_heights, axes.rows)  # the strips' rows and the profiles' rows, each read about once
    profiles = _ProfileCache(lattice, inverse, grid, axes, rows_read)
    row_start, row_stop, c0, c1 = region or (0, axes.rows, 0, axes.cols)
    w0, w1 = max(c0 - 1, 0), min(c1 + 1, axes.cols)  # columns with the normals' margin
    easting = np.ascontiguousarray(easting_m[c0:c1], np.float64)
    ecef_buffer = np.empty((strip_rows + 2, w1 - w0, 6))  # reused strip after strip: no fresh pages
    for r in range(row_start, row_stop, strip_rows):
        h = min(strip_rows, row_stop - r)
        r0, r1 = max(r - 1, 0), min(r + h + 1, axes.rows)
        window = np.ascontiguousarray(rows_read.get(r0, r1)[:, w0:w1], np.float32)
        inner = window[r - r0 : r - r0 + h, c0 - w0 : c0 - w0 + c1 - c0]
        northing = np.ascontiguousarray(northing_m[r : r + h], np.float64)
        ecef = surface.ecef(r0, w0, window, ecef_buffer[: r1 - r0])
        flags = np.empty(inner.shape, np.uint8)
        cos_local = np.empty(inner.shape if local_incidence else (0, 0))
        cos_ellipsoid = np.empty(inner.shape if ellipsoid_incidence else (0, 0))
        # the profiles the strip falls on: its lines at the strip's extreme heights, then checked pixel by pixel
        first, stop = _strip_lines(lattice, grid, easting, northing, float(inner.min()), float(inner.max()))
        while True:
            bits, first = profiles.lines(first, stop)
            misses = _facet_kernel(ecef, r - r0, c0 - w0, axes.dx, axes.dy, easting, northing, inner, h_min,
                                   *tables, bits, first, grid.l_start, grid.n_lines, grid.c_start,
                                   grid.step, flags, cos_local, cos_ellipsoid)
            if not misses:
                break
            first, stop = max(first - 64, 0), min(stop + 64, grid.n_lines)  # pragma: no cover - estimate too tight
        layers = {"flags": flags}
        if local_incidence:
            layers["local_incidence_deg"] = incidence_deg(cos_local)
        if ellipsoid_incidence:
            layers["ellipsoid_incidence_deg"] = incidence_deg(cos_ellipsoid)
        yield r, layers


def distortion_map(
    geometry: RadarGeometry, crs: pyproj.CRS | str, easting_m: NDArray, northing_m: NDArray, height_m: NDArray,
    strip_rows: int = 128,
) -> dict[str, NDArray]:
    """Flags and geometry layers of a map grid (rows north to south) with ellipsoidal heights (m) in memory.

    Returns ``flags`` (uint8, the bits of the module docstring), ``local_incidence_deg``,
    ``ellipsoid_incidence_deg`` (float32). :func:`distortion_strips` on the whole array.
    """
    height_m = np.asarray(height_m, dtype=np.float32)
    out = {"flags": np.empty(height_m.shape, np.uint8), "local_incidence_deg": np.empty(height_m.shape, np.float32),
           "ellipsoid_incidence_deg": np.empty(height_m.shape, np.float32)}
    strips = distortion_strips(geometry, crs, easting_m, northing_m, lambda a, b: height_m[a:b],
                               (float(height_m.min()), float(height_m.max())), strip_rows=strip_rows)
    for r, layers in strips:
        for name, values in layers.items():
            out[name][r : r + values.shape[0]] = values
    return out


def _strip_lines(lattice: RadarLattice, grid: ProfileGrid, easting: NDArray, northing: NDArray, h_low: float,
                 h_high: float) -> tuple[int, int]:
    """Profile lines [first, stop) that a strip's pixels fall on, from its edges at its extreme heights
    (line is smooth in position and monotonic in height), two lines of margin."""
    line_min, line_max, _, _ = radar_extent(lattice, easting, northing, (h_low, h_high))
    lo = int(np.floor(line_min)) - 2 - grid.l_start
    hi = int(np.ceil(line_max)) + 3 - grid.l_start
    return min(max(lo, 0), grid.n_lines - 1), min(max(hi, 1), grid.n_lines)


class _ProfileCache:
    """Profile bits of a run of profile lines, computed once each as the strips move along the track."""

    BLOCK = 128  # profile lines scanned together: bounds the DEM rows read for them

    def __init__(self, lattice, inverse, grid: ProfileGrid, axes: _MapAxes, heights: RowCache):
        self.lattice, self.inverse, self.grid, self.axes, self.heights = lattice, inverse, grid, axes, heights
        self.first, self.bits = 0, np.zeros((0, grid.n_samples), np.uint8)

    def _scan(self, first: int, stop: int, backwards: bool = False) -> list[NDArray[np.uint8]]:
        """Bits of profile lines [first, stop) in blocks, scanned from the end when ``backwards`` (the way the
        strips move along the track, so that the DEM rows move one way too)."""
        starts = list(range(first, stop, self.BLOCK))
        parts = {}
        for a in reversed(starts) if backwards else starts:
            b = min(a + self.BLOCK, stop)
            r0, r1 = profile_rows(self.inverse, self.grid, self.axes, a, b)
            parts[a] = scan_profiles(self.lattice, self.inverse, self.grid, self.axes, self.heights.get(r0, r1), r0,
                                     a, b)
        return [parts[a] for a in starts]

    def lines(self, first: int, stop: int) -> tuple[NDArray[np.uint8], int]:
        """Bits of profile lines [first, stop) and the index of the first line of the returned array."""
        end = self.first + len(self.bits)
        if not (self.first <= first and stop <= end):
            if stop <= self.first or first >= end or not len(self.bits):
                parts = self._scan(first, stop)
            else:
                kept = self.bits[max(first, self.first) - self.first : min(stop, end) - self.first]
                parts = self._scan(first, self.first, backwards=True) if first < self.first else []
                parts += [kept] + (self._scan(end, stop) if stop > end else [])
            self.first, self.bits = first, np.concatenate(parts)
        return self.bits[first - self.first : stop - self.first], first


@numba.njit(cache=True, nogil=True, inline="always")
def _line_polynomials(u, powers, coef_e, coef_n):  # pragma: no cover - compiled
    """A profile line's easting and northing as polynomials in v alone (:class:`ProfileInverse`, ``u`` the
    line's normalised position): coefficients sum_i c_ij u^i, by power of v."""
    degree = powers[:, 1].max()
    ae, an = np.zeros(degree + 1), np.zeros(degree + 1)
    for t in range(powers.shape[0]):
        ui = u ** powers[t, 0]
        ae[powers[t, 1]] += coef_e[t] * ui
        an[powers[t, 1]] += coef_n[t] * ui
    return ae, an


@numba.njit(cache=True, nogil=True, inline="always")
def _profile_point(ae, an, v):  # pragma: no cover - compiled
    """(easting, northing) (m) at normalised cross-track position ``v`` of a line's polynomials (Horner)."""
    degree = ae.size - 1
    e, n = ae[degree], an[degree]
    for k in range(degree - 1, -1, -1):
        e = e * v + ae[k]
        n = n * v + an[k]
    return e, n


@numba.njit(cache=True, nogil=True)
def _northing_range(lines, c_start, step, n_samples, l0, ls, c0, cs, powers, coef_e, coef_n):  # pragma: no cover
    """Smallest and largest northing (m) of the samples of profile lines ``lines`` (image lines)."""
    n_min, n_max = np.inf, -np.inf
    for line in lines:
        ae, an = _line_polynomials((line - l0) / ls, powers, coef_e, coef_n)
        for j in range(n_samples):
            _, n = _profile_point(ae, an, (c_start + step * j - c0) / cs)
            n_min, n_max = min(n_min, n), max(n_max, n)
    return n_min, n_max


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _scan_kernel(line0, c_start, step, l0, ls, c0, cs, powers, coef_e, coef_n, heights, row0, e0, n0, dx, dy,
                 n_rows, n_cols, flat, ni, nj, nk, le0, ln0, lh0, lstep, lhstep, out):  # pragma: no cover
    """Profile bits of lines line0, line0 + 1, ... (``out`` (lines, samples)); ``heights``: map rows from
    ``row0``. Per line: positions from the inverse polynomials, heights bilinear (coordinates clamped to the
    grid), elevation angle and slant range from the lattice, then the near-to-far and far-to-near scans."""
    n_lines, n_samples = out.shape
    last_row = heights.shape[0] - 2
    inv_cs, inv_dx, inv_dy, inv_step, inv_hstep = 1.0 / cs, 1.0 / dx, 1.0 / dy, 1.0 / lstep, 1.0 / lhstep
    for a in numba.prange(n_lines):
        el, rng = np.empty(n_samples), np.empty(n_samples)
        inside = np.empty(n_samples, np.bool_)
        ae, an = _line_polynomials((line0 + a - l0) / ls, powers, coef_e, coef_n)
        for j in range(n_samples):
            e, n = _profile_point(ae, an, (c_start + step * j - c0) * inv_cs)
            col, row = (e - e0) * inv_dx, (n0 - n) * inv_dy
            inside[j] = col >= 0.0 and col <= n_cols - 1 and row >= 0.0 and row <= n_rows - 1
            col = min(max(col, 0.0), n_cols - 1.0)
            row = min(max(row, 0.0), n_rows - 1.0)
            ic, ir = min(int(col), n_cols - 2), min(int(row), n_rows - 2)
            wc, wr = col - ic, row - ir
            ib = min(max(ir - row0, 0), last_row)
            h = ((1.0 - wr) * ((1.0 - wc) * heights[ib, ic] + wc * heights[ib, ic + 1])
                 + wr * ((1.0 - wc) * heights[ib + 1, ic] + wc * heights[ib + 1, ic + 1]))
            el[j], rng[j] = trilinear2(flat, ni, nj, nk, (n - ln0) * inv_step, (e - le0) * inv_step,
                                       (h - lh0) * inv_hstep)
        near_el, near_r = el[0], rng[0]
        for j in range(1, n_samples):
            f = 0
            if el[j] <= near_el + 1e-9:
                f |= PROFILE_SHADOW
            if rng[j] < near_r - 1e-6:
                f |= PROFILE_LAYOVER
            if el[j] < el[j - 1]:
                f |= PROFILE_ACTIVE_SHADOW
            if rng[j] < rng[j - 1]:
                f |= PROFILE_ACTIVE_LAYOVER
            out[a, j] = f
            near_el, near_r = max(near_el, el[j]), max(near_r, rng[j])
        out[a, 0] = 0
        far_r = rng[n_samples - 1]
        for j in range(n_samples - 2, -1, -1):
            if rng[j] > far_r + 1e-6:
                out[a, j] |= PROFILE_LAYOVER
            far_r = min(far_r, rng[j])
        for j in range(n_samples):
            if not inside[j]:
                out[a, j] = 0


@numba.njit(cache=True, nogil=True)
def _encode(bits, cos_local, cos_ellipsoid):  # pragma: no cover - compiled
    """Map flags (the module docstring's bits) from a facet's profile bits and incidence cosines."""
    active_layover = (bits & PROFILE_ACTIVE_LAYOVER) > 0
    layover = (bits & PROFILE_LAYOVER) > 0 or active_layover
    active_shadow = (bits & PROFILE_ACTIVE_SHADOW) > 0
    shadow = (bits & PROFILE_SHADOW) > 0 or active_shadow
    f = 0
    if cos_local > cos_ellipsoid + 1e-6 and not active_layover and not shadow:
        f |= FORESHORTENING
    if active_layover:
        f |= ACTIVE_LAYOVER
    elif layover:
        f |= PASSIVE_LAYOVER
    if active_shadow:
        f |= ACTIVE_SHADOW
    elif shadow:
        f |= PASSIVE_SHADOW
    return f


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _facet_kernel(ecef, r_off, c_off, dx, dy, easting, northing, heights, h_ref, flat, ni, nj, nk, le0, ln0, lh0,
                  lstep, lhstep, record_time_s, sr0_m, srgr, bistatic, tau_mid, ati, rps, bits, bits_first, l_start,
                  n_profile_lines, c_start, step, flags, cos_local_out, cos_ellipsoid_out):  # pragma: no cover
    """Flags and the cosines of the local and ellipsoid incidence of a strip; returns how many pixels fell on a
    line outside ``bits``.

    Per pixel: its image line (lattice time and range at its height), its radar pixel at ``h_ref``
    (the cross-track order), the terrain normal by central differences of the ECEF window (one-sided
    at the grid's edges, as numpy.gradient; the strip starts at row ``r_off``, column ``c_off`` of
    the window), the line of sight, then the nearest profile sample's bits (``bits``: profile lines
    from ``bits_first`` of the :class:`ProfileGrid` (``l_start``, ``n_profile_lines``). ``cos_local_out``,
    ``cos_ellipsoid_out`` of size 0: that incidence is not wanted. The angles are NumPy's vectorised arccos of the
    cosines afterwards (:func:`incidence_deg`, 7 ns a pixel, where the library's scalar arccos took 23 ns in
    this loop)."""
    n_lines, n_samples = bits.shape
    inv_step, inv_hstep = 1.0 / lstep, 1.0 / lhstep
    fk_ref = (h_ref - lh0) * inv_hstep
    fj_first, fj_last = (easting[0] - le0) * inv_step, (easting[-1] - le0) * inv_step
    fj_min, fj_max = min(fj_first, fj_last), max(fj_first, fj_last)
    misses = 0
    for a in numba.prange(heights.shape[0]):
        wa = a + r_off
        fi = (northing[a] - ln0) * inv_step
        # the lattice at the row's northing: over the row's heights, and at the reference height
        table, j0, k0 = map_row_table(flat, ni, nj, nk, le0, ln0, lh0, inv_step, inv_hstep, northing[a], easting,
                                      heights[a])
        table_ref, j0_ref, k0_ref = lattice_row(flat, ni, nj, nk, fi, fj_min, fj_max, fk_ref, fk_ref)
        for b in range(heights.shape[1]):
            fj = (easting[b] - le0) * inv_step
            # time, range and line of sight at the pixel's height: one lattice cell for the five fields
            t, rg, lx, ly, lz = row_lookup5(table, nj, nk, j0, k0, fj, (heights[a, b] - lh0) * inv_hstep)
            line = radar_line(t, rg, bistatic, tau_mid, ati)
            t_ref, r_ref = row_lookup2(table_ref, nj, nk, j0_ref, k0_ref, fj, fk_ref)
            cross = radar_pixel(t_ref, r_ref, record_time_s, sr0_m, srgr, rps)
            wb = b + c_off
            nx, ny, nz, nn = terrain_normal(ecef, wa, wb, dx, dy)
            ln = np.sqrt(lx * lx + ly * ly + lz * lz)
            cos_local = (nx * lx + ny * ly + nz * lz) / (nn * ln)
            cos_ell = (ecef[wa, wb, 3] * lx + ecef[wa, wb, 4] * ly + ecef[wa, wb, 5] * lz) / ln
            i = min(max(int(np.rint(line)) - l_start, 0), n_profile_lines - 1) - bits_first
            if i < 0 or i >= n_lines:
                misses += 1
                i = min(max(i, 0), n_lines - 1)
            j = min(max(int(np.rint((cross - c_start) / step)), 0), n_samples - 1)
            flags[a, b] = _encode(bits[i, j], cos_local, cos_ell)
            if cos_local_out.size:
                cos_local_out[a, b] = cos_local
            if cos_ellipsoid_out.size:
                cos_ellipsoid_out[a, b] = cos_ell
    return misses
