"""Terrain surface elements of a map grid: normals, areas, slope and aspect.

Pure numerics on ECEF grids (rows north to south, columns west to east).
"""

from __future__ import annotations

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


def slope_aspect(height_m: NDArray, pixel_m: tuple[float, float]) -> tuple[NDArray, NDArray]:
    """Slope (deg) and aspect (deg clockwise from north, the downslope direction) by central differences.

    ``height_m`` rows run north to south, columns west to east.
    """
    dzdy, dzdx = np.gradient(np.asarray(height_m, dtype=np.float64), pixel_m[0], pixel_m[1])
    dz_north = -dzdy
    slope = np.degrees(np.arctan(np.hypot(dzdx, dz_north)))
    aspect = np.degrees(np.arctan2(-dzdx, -dz_north)) % 360.0
    return slope, aspect
