"""Per-pixel terrain geometry of a map grid in compiled kernels (numba): ECEF positions, terrain
normals and facet areas, radar coordinates and the line of sight.

Pure numerics, shared by terrain correction (:mod:`pipeline.sar.backscatter`) and the distortion
maps (:mod:`pipeline.sar.distortion`). Conventions: map grids have rows north to south and columns
west to east, spacings ``dx``, ``dy`` in metres (both positive); heights are ellipsoidal (m); ECEF in
metres; radar line and pixel zero-based, as in the annotation's geolocation grid.

Latitude and longitude come from PROJ on nodes every 8 pixels and are interpolated bilinearly in
between (off by well under a millimetre on the ground); ECEF positions and ellipsoid normals are
then exact functions of them. Interpolating ECEF directly would flatten the earth's curvature into
facets tilted by up to 1e-5 rad, enough to call flat ground foreshortened. Their sines and cosines
come from the node's exact values rotated by the small interpolated offset (angle addition, Taylor
series to the 7th order: exact to rounding for offsets below :data:`MAX_NODE_OFFSET_RAD`), four
times cheaper than the library's sin and cos per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyproj
from numpy.typing import NDArray

from pipeline.core.constants import SPEED_OF_LIGHT_M_S, WGS84_A_M, WGS84_E2
from pipeline.sar.lattice import RadarLattice, map_row_table, row_lookup2, row_lookup5

NODE_SPACING = 8  # pixels between the PROJ nodes
#: largest latitude or longitude step (rad) between neighbouring nodes: the truncation of the angle
#: addition's series (offset^8 / 8!) stays below 1e-17 (a 16 km pixel at the equator)
MAX_NODE_OFFSET_RAD = 0.02


def grid_nodes(n: int, every: int) -> NDArray[np.int64]:
    """Indices 0, every, 2 every, ... and n - 1."""
    return np.unique(np.append(np.arange(0, n, every), n - 1))


def node_weights(nodes: NDArray[np.int64], at: NDArray) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Cell index (into ``nodes``) and linear weight of the next node for positions ``at``."""
    k = np.clip(np.searchsorted(nodes, at, side="right") - 1, 0, max(nodes.size - 2, 0))
    if nodes.size < 2:
        return k, np.zeros(np.shape(at))
    return k, (at - nodes[k]) / (nodes[k + 1] - nodes[k])


@dataclass(frozen=True)
class SurfaceNodes:
    """Latitude and longitude of a map grid's nodes every :data:`NODE_SPACING` pixels."""

    rows: NDArray[np.int64]  # grid rows of the nodes
    cols: NDArray[np.int64]
    #: (node rows, node cols, 6): latitude and longitude (rad), sin and cos of latitude, of longitude
    trig: NDArray[np.float64]

    @classmethod
    def of(cls, crs: pyproj.CRS | str, easting_m: NDArray, northing_m: NDArray) -> SurfaceNodes:
        rows, cols = grid_nodes(len(northing_m), NODE_SPACING), grid_nodes(len(easting_m), NODE_SPACING)
        to_geo = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = to_geo.transform(*np.meshgrid(np.asarray(easting_m)[cols], np.asarray(northing_m)[rows]))
        lat_rad, lon_rad = np.radians(lat), np.radians(lon)
        step = max([float(np.abs(np.diff(x, axis=ax)).max(initial=0.0)) for x in (lat_rad, lon_rad) for ax in (0, 1)])
        if step > MAX_NODE_OFFSET_RAD:
            raise ValueError(f"map grid too coarse for the surface nodes: {step:.3g} rad between nodes "
                             f"(at most {MAX_NODE_OFFSET_RAD})")
        trig = np.stack([lat_rad, lon_rad, np.sin(lat_rad), np.cos(lat_rad), np.sin(lon_rad), np.cos(lon_rad)], -1)
        return cls(rows, cols, np.ascontiguousarray(trig))

    def interpolation(self, row0: int, rows: int, col0: int, cols: int) -> tuple:
        """What the compiled kernels take to interpolate latitude and longitude over the window of ``rows`` x
        ``cols`` pixels from (``row0``, ``col0``): the nodes' :attr:`trig`, then cell indices and weights of its
        rows and of its columns."""
        row_index, row_weight = node_weights(self.rows, np.arange(row0, row0 + rows))
        col_index, col_weight = node_weights(self.cols, np.arange(col0, col0 + cols))
        return self.trig, row_index, row_weight, col_index, col_weight

    def ecef(self, row0: int, col0: int, heights_m: NDArray, out: NDArray | None = None) -> NDArray[np.float64]:
        """ECEF position (m) and ellipsoid normal, (rows, cols, 6), of the window of the grid starting at
        (``row0``, ``col0``) with ellipsoidal heights ``heights_m``; into ``out`` (C-contiguous float64 of
        that shape) when given, e.g. a buffer reused strip after strip."""
        rows, cols = heights_m.shape
        if out is None:
            out = np.empty((rows, cols, 6))
        elif out.shape != (rows, cols, 6) or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"ECEF buffer of shape {out.shape}, {out.dtype}: expected ({rows}, {cols}, 6) float64")
        _ecef_kernel(*self.interpolation(row0, rows, col0, cols), np.ascontiguousarray(heights_m), out)
        return out


def incidence_deg(cos: NDArray) -> NDArray[np.float32]:
    """Angle (deg, float32) of a cosine (NumPy's vectorised arccos)."""
    return np.degrees(np.arccos(np.clip(cos, -1, 1))).astype(np.float32)


def lattice_fields(lattice: RadarLattice, names: tuple[str, ...]) -> tuple:
    """The lattice's fields ``names`` as (nodes, fields), its shape, origin and steps: the arguments of
    the compiled lookups (:func:`pipeline.sar.lattice.lattice_row`, :func:`pipeline.sar.lattice.trilinear5`)."""
    flat = lattice.stack[..., [lattice.names.index(n) for n in names]]
    ni, nj, nk = lattice.shape
    return (np.ascontiguousarray(flat.reshape(-1, len(names))), ni, nj, nk, lattice.e0, lattice.n0, lattice.h0,
            lattice.step, lattice.hstep)


RADAR_FIELDS = ("zero_doppler_time_s", "slant_range_m", "los_x", "los_y", "los_z")  # :func:`row_lookup5`'s order


def radar_tables(lattice: RadarLattice) -> tuple:
    """What the compiled per-pixel kernels take of a product, built once per product: the lattice's
    :data:`RADAR_FIELDS` (:func:`lattice_fields`) then the timing tables (:meth:`RadarGeometry.timing`)."""
    return (*lattice_fields(lattice, RADAR_FIELDS), *lattice.geometry.timing().args())


def radar_extent(lattice: RadarLattice, easting_m: NDArray, northing_m: NDArray,
                 height_range_m: tuple[float, float]) -> tuple[float, float, float, float]:
    """(line min, line max, pixel min, pixel max) of a map window (``easting_m`` (cols,), ``northing_m``
    (rows,)) at any height in ``height_range_m``: from the window's four edges (nodes 16 apart) at the two
    extreme heights, since line and pixel are smooth in position and monotonic in height."""
    return tuple(radar_extents(lattice, [(easting_m, northing_m)], height_range_m)[0])


def radar_extents(lattice: RadarLattice, windows: list[tuple[NDArray, NDArray]],
                  height_range_m: tuple[float, float]) -> NDArray[np.float64]:
    """:func:`radar_extent` of many map windows ((easting (cols,), northing (rows,)) each) in one lattice
    lookup: (windows, 4) of line min, line max, pixel min, pixel max."""
    east_parts, north_parts = [], []
    for easting_m, northing_m in windows:
        rows, cols = grid_nodes(len(northing_m), 16), grid_nodes(len(easting_m), 16)
        east_parts += [easting_m[cols], easting_m[cols], np.full(rows.size, easting_m[0]),
                       np.full(rows.size, easting_m[-1])]
        north_parts += [np.full(cols.size, northing_m[0]), np.full(cols.size, northing_m[-1]), northing_m[rows],
                        northing_m[rows]]
    starts = np.cumsum([0] + [sum(p.size for p in east_parts[i : i + 4]) for i in range(0, len(east_parts), 4)])[:-1]
    east, north = np.concatenate(east_parts), np.concatenate(north_parts)
    edges = [lattice.radar_coordinates(east, north, np.full(east.shape, h)) for h in height_range_m]
    line, pixel = np.fmin(edges[0].line, edges[1].line), np.fmin(edges[0].pixel, edges[1].pixel)
    line_max, pixel_max = np.fmax(edges[0].line, edges[1].line), np.fmax(edges[0].pixel, edges[1].pixel)
    return np.stack([np.minimum.reduceat(line, starts), np.maximum.reduceat(line_max, starts),
                     np.minimum.reduceat(pixel, starts), np.maximum.reduceat(pixel_max, starts)], axis=-1)


@numba.njit(cache=True, nogil=True)
def radar_line(t, r, bistatic, mid_slant_range_time_s, azimuth_time_interval_s):  # pragma: no cover - compiled
    """Zero-based image line of one target from its zero-Doppler time ``t`` (s) and slant range ``r`` (m)
    (bistatic delay correction where the product applied it)."""
    if bistatic:
        t = t - 0.5 * (2.0 * r / SPEED_OF_LIGHT_M_S - mid_slant_range_time_s)
    return t / azimuth_time_interval_s


@numba.njit(cache=True, nogil=True)
def radar_pixel(t, r, record_time_s, sr0_m, srgr, range_pixel_spacing_m):  # pragma: no cover - compiled
    """Zero-based radar pixel of one target: the slant-to-ground-range record nearest in time ``t`` (s),
    Horner in (r - sr0)."""
    n = record_time_s.size
    i = 0
    if n > 1:
        i = 1  # the first record at or after t (numpy.searchsorted's left side), at least 1: a few records, a scan
        while i < n - 1 and record_time_s[i] < t:
            i += 1
        if (t - record_time_s[i - 1]) <= (record_time_s[i] - t):
            i -= 1
    x = r - sr0_m[i]
    ground = 0.0
    for k in range(srgr.shape[1] - 1, -1, -1):
        ground = ground * x + srgr[i, k]
    return ground / range_pixel_spacing_m


@numba.njit(cache=True, nogil=True, inline="always")
def terrain_normal(ecef, a, b, dx, dy):  # pragma: no cover - compiled
    """dP/dE x dP/dN at window pixel (a, b) by central differences (one-sided at the window's edges, as
    numpy.gradient): its components and its norm. The unit normal is the vector over the norm, the
    facet's true area the norm x dx x dy (rows go south, hence the sign of dP/dN)."""
    rows, cols = ecef.shape[0], ecef.shape[1]
    up, down = max(a - 1, 0), min(a + 1, rows - 1)
    left, right = max(b - 1, 0), min(b + 1, cols - 1)
    fe, fn = 1.0 / ((right - left) * dx), -1.0 / ((down - up) * dy)
    de0 = (ecef[a, right, 0] - ecef[a, left, 0]) * fe
    de1 = (ecef[a, right, 1] - ecef[a, left, 1]) * fe
    de2 = (ecef[a, right, 2] - ecef[a, left, 2]) * fe
    dn0 = (ecef[down, b, 0] - ecef[up, b, 0]) * fn
    dn1 = (ecef[down, b, 1] - ecef[up, b, 1]) * fn
    dn2 = (ecef[down, b, 2] - ecef[up, b, 2]) * fn
    nx, ny, nz = de1 * dn2 - de2 * dn1, de2 * dn0 - de0 * dn2, de0 * dn1 - de1 * dn0
    return nx, ny, nz, np.sqrt(nx * nx + ny * ny + nz * nz)


@numba.njit(cache=True, nogil=True, inline="always")
def _rotate(sin_a, cos_a, d):  # pragma: no cover - compiled
    """sin and cos of a + d from those of a, for |d| <= :data:`MAX_NODE_OFFSET_RAD` (Taylor series of sin d to
    d^7 / 7!, of cos d to d^6 / 6!)."""
    d2 = d * d
    cos_d = 1.0 - d2 * (0.5 - d2 * (1.0 / 24.0 - d2 * (1.0 / 720.0)))
    sin_d = d * (1.0 - d2 * (1.0 / 6.0 - d2 * (1.0 / 120.0 - d2 * (1.0 / 5040.0))))
    return sin_a * cos_d + cos_a * sin_d, cos_a * cos_d - sin_a * sin_d


@numba.njit(cache=True, nogil=True, inline="always")
def _lat_lon_trig(trig, i, wi, j, wj):  # pragma: no cover - compiled
    """sin and cos of latitude and longitude, both bilinear between the nodes of cell (i, j)
    (:attr:`SurfaceNodes.trig`): the offset from node (i, j) rotates its exact values."""
    w01, w10, w11 = (1 - wi) * wj, wi * (1 - wj), wi * wj
    d_lat = (w01 * (trig[i, j + 1, 0] - trig[i, j, 0]) + w10 * (trig[i + 1, j, 0] - trig[i, j, 0])
             + w11 * (trig[i + 1, j + 1, 0] - trig[i, j, 0]))
    d_lon = (w01 * (trig[i, j + 1, 1] - trig[i, j, 1]) + w10 * (trig[i + 1, j, 1] - trig[i, j, 1])
             + w11 * (trig[i + 1, j + 1, 1] - trig[i, j, 1]))
    sin_lat, cos_lat = _rotate(trig[i, j, 2], trig[i, j, 3], d_lat)
    sin_lon, cos_lon = _rotate(trig[i, j, 4], trig[i, j, 5], d_lon)
    return sin_lat, cos_lat, sin_lon, cos_lon


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _ecef_kernel(trig, row_index, row_weight, col_index, col_weight, heights, ecef):  # pragma: no cover - compiled
    """ECEF position (m) and ellipsoid normal of every pixel into ``ecef`` (rows, cols, 6); latitude and
    longitude bilinear between the nodes (:func:`_lat_lon_trig`)."""
    for a in numba.prange(heights.shape[0]):
        i, wi = row_index[a], row_weight[a]
        for b in range(heights.shape[1]):
            sin_lat, cos_lat, sin_lon, cos_lon = _lat_lon_trig(trig, i, wi, col_index[b], col_weight[b])
            n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
            h = np.float64(heights[a, b])
            ecef[a, b, 0] = (n + h) * cos_lat * cos_lon
            ecef[a, b, 1] = (n + h) * cos_lat * sin_lon
            ecef[a, b, 2] = (n * (1.0 - WGS84_E2) + h) * sin_lat
            ecef[a, b, 3] = cos_lat * cos_lon
            ecef[a, b, 4] = cos_lat * sin_lon
            ecef[a, b, 5] = sin_lat


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def tile_kernel(ecef, r_off, c_off, dx, dy, easting, northing, heights, flat, ni, nj, nk, le0, ln0, lh0, lstep,
                lhstep, record_time_s, sr0_m, srgr, bistatic, tau_mid, ati, rps, line, pixel, cos_local, cos_ellipsoid,
                projected_area):  # pragma: no cover - compiled
    """Terrain-correction geometry of a tile (outputs (rows, cols) float64): radar line and pixel at each
    pixel's height, cosines of the local and ellipsoid incidence, and the facet's area projected normal to
    the line of sight (m^2, 0 facing away). ``ecef``: :meth:`SurfaceNodes.ecef` of the tile's window, which
    starts at row ``r_off``, column ``c_off`` before the tile; ``flat`` ...: :func:`lattice_fields` of
    :data:`RADAR_FIELDS`; then the product's timing (:meth:`pipeline.sar.product.RadarTiming.args`)."""
    inv_step, inv_hstep = 1.0 / lstep, 1.0 / lhstep
    for a in numba.prange(heights.shape[0]):
        wa = a + r_off
        table, j0, k0 = map_row_table(flat, ni, nj, nk, le0, ln0, lh0, inv_step, inv_hstep, northing[a], easting,
                                      heights[a])
        for b in range(heights.shape[1]):
            wb = b + c_off
            t, r, lx, ly, lz = row_lookup5(table, nj, nk, j0, k0, (easting[b] - le0) * inv_step,
                                           (heights[a, b] - lh0) * inv_hstep)
            line[a, b] = radar_line(t, r, bistatic, tau_mid, ati)
            pixel[a, b] = radar_pixel(t, r, record_time_s, sr0_m, srgr, rps)
            nx, ny, nz, nn = terrain_normal(ecef, wa, wb, dx, dy)
            ln = np.sqrt(lx * lx + ly * ly + lz * lz)
            c = (nx * lx + ny * ly + nz * lz) / (nn * ln)
            cos_local[a, b] = c
            cos_ellipsoid[a, b] = (ecef[wa, wb, 3] * lx + ecef[wa, wb, 4] * ly + ecef[wa, wb, 5] * lz) / ln
            projected_area[a, b] = max(c, 0.0) * nn * dx * dy


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def radar_kernel(trig, row_index, row_weight, col_index, col_weight, easting, northing, heights,
                 flat, ni, nj, nk, le0, ln0, lh0, lstep, lhstep, record_time_s, sr0_m, srgr, bistatic, tau_mid, ati,
                 rps, ellipsoid_row0, ellipsoid_col0, ellipsoid_step, line, pixel,
                 cos_ellipsoid):  # pragma: no cover - compiled
    """What sampling the backscatter needs of a tile, without the terrain's facets (:func:`tile_kernel`'s
    line, pixel and cosine of the ellipsoid incidence, the same bits): no ECEF window, no normals.
    ``trig`` ...: :meth:`SurfaceNodes.interpolation` of the tile itself. The cosine only on every
    ``ellipsoid_step``-th row and column from (``ellipsoid_row0``, ``ellipsoid_col0``), NaN elsewhere
    (step 1 from (0, 0): everywhere; the cosine took 3 of the kernel's 33 ns a pixel, on 2 threads)."""
    inv_step, inv_hstep = 1.0 / lstep, 1.0 / lhstep
    for a in numba.prange(heights.shape[0]):
        i, wi = row_index[a], row_weight[a]
        table, j0, k0 = map_row_table(flat, ni, nj, nk, le0, ln0, lh0, inv_step, inv_hstep, northing[a], easting,
                                      heights[a])
        ellipsoid_row = a >= ellipsoid_row0 and (a - ellipsoid_row0) % ellipsoid_step == 0
        next_b = ellipsoid_col0 if ellipsoid_row else heights.shape[1]
        for b in range(heights.shape[1]):
            fj, fk = (easting[b] - le0) * inv_step, (heights[a, b] - lh0) * inv_hstep
            if b != next_b:  # time and range only (the same bits as row_lookup5's first two)
                t, r = row_lookup2(table, nj, nk, j0, k0, fj, fk)
                line[a, b] = radar_line(t, r, bistatic, tau_mid, ati)
                pixel[a, b] = radar_pixel(t, r, record_time_s, sr0_m, srgr, rps)
                cos_ellipsoid[a, b] = np.nan
                continue
            next_b += ellipsoid_step
            t, r, lx, ly, lz = row_lookup5(table, nj, nk, j0, k0, fj, fk)
            line[a, b] = radar_line(t, r, bistatic, tau_mid, ati)
            pixel[a, b] = radar_pixel(t, r, record_time_s, sr0_m, srgr, rps)
            sin_lat, cos_lat, sin_lon, cos_lon = _lat_lon_trig(trig, i, wi, col_index[b], col_weight[b])
            ln = np.sqrt(lx * lx + ly * ly + lz * lz)
            cos_ellipsoid[a, b] = (cos_lat * cos_lon * lx + cos_lat * sin_lon * ly + sin_lat * lz) / ln
