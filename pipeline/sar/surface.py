"""Terrain surface elements of a map grid: normals, areas, slope and aspect.

Pure numerics on ECEF grids (rows north to south, columns west to east).
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray


def surface_normals(ecef_m: NDArray, dx_m: float, dy_m: float) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """Unit outward normals (rows, cols, 3) and true areas (m^2) of the surface through ECEF nodes.

    Central differences (one-sided at the edges) along the grid axes; the
    area of a node's element is |dP/dE x dP/dN| dx dy, with dx, dy the map
    spacing in metres (rows go south, hence the sign of dP/dN).
    """
    d_east = np.gradient(ecef_m, axis=1) / dx_m
    d_north = -np.gradient(ecef_m, axis=0) / dy_m
    normal = np.cross(d_east, d_north)
    scale = np.linalg.norm(normal, axis=-1)
    normal /= scale[..., None]
    return normal, (scale * dx_m * dy_m).astype(np.float32)


def slope_aspect(height_m: NDArray, pixel_m: tuple[float, float], inner: tuple[slice, slice] | None = None,
                 out: tuple[NDArray, NDArray] | None = None) -> tuple[NDArray, NDArray]:
    """Slope (deg) and aspect (deg clockwise from north, the downslope direction) by central differences
    (one-sided at the array's edges, as numpy.gradient), in one compiled pass (rows in parallel).

    ``height_m`` rows run north to south, columns west to east; ``pixel_m``: (row, column) spacing (m).
    ``inner``: the pixels wanted (default all), the rest of ``height_m`` serving as the differences' margin;
    ``out``: (slope, aspect) arrays of the inner shape (float32 or float64) to fill, else new float64 ones.
    """
    z = np.ascontiguousarray(height_m)
    rows, cols = inner or (slice(0, z.shape[0]), slice(0, z.shape[1]))
    r0, r1, _ = rows.indices(z.shape[0])
    c0, c1, _ = cols.indices(z.shape[1])
    if out is None:
        out = (np.empty((r1 - r0, c1 - c0)), np.empty((r1 - r0, c1 - c0)))
    if z.shape[0] < 2 or z.shape[1] < 2:
        raise ValueError(f"slope and aspect need at least 2 x 2 heights, got {z.shape}")
    _slope_aspect_kernel(z, float(pixel_m[0]), float(pixel_m[1]), r0, c0, *out)
    return out


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _slope_aspect_kernel(z, dy, dx, r0, c0, slope, aspect):  # pragma: no cover - compiled
    """:func:`slope_aspect` of ``z``'s pixels from (``r0``, ``c0``) into ``slope``, ``aspect`` (their shape)."""
    n_rows, n_cols = z.shape
    for a in numba.prange(slope.shape[0]):
        i = r0 + a
        up, down = max(i - 1, 0), min(i + 1, n_rows - 1)
        fy = (down - up) * dy
        for b in range(slope.shape[1]):
            j = c0 + b
            left, right = max(j - 1, 0), min(j + 1, n_cols - 1)
            dzdx = (np.float64(z[i, right]) - np.float64(z[i, left])) / ((right - left) * dx)
            dz_north = -(np.float64(z[down, j]) - np.float64(z[up, j])) / fy
            slope[a, b] = np.degrees(np.arctan(np.hypot(dzdx, dz_north)))
            aspect[a, b] = np.degrees(np.arctan2(-dzdx, -dz_north)) % 360.0
