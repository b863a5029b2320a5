"""Fluvial incision on a height grid: pit filling, D8 drainage area, stream-power carving.

Pure numerics (numba). Heights in metres on a regular grid with (dy, dx)
spacing in metres. Used by the terrain generator to turn ridged noise into
mountains with dendritic valley networks.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1])
_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1])


@numba.njit(cache=True)
def _heap_push(zs, ids, size, z, i):  # pragma: no cover
    """Push (z, i) on the binary min-heap held in zs[:size], ids[:size]; keys compare as (z, i)."""
    k = size
    while k > 0:
        parent = (k - 1) >> 1
        if zs[parent] < z or (zs[parent] == z and ids[parent] < i):
            break
        zs[k], ids[k] = zs[parent], ids[parent]
        k = parent
    zs[k], ids[k] = z, i
    return size + 1


@numba.njit(cache=True)
def _heap_pop(zs, ids, size):  # pragma: no cover
    """Remove the smallest (z, i) of the heap; returns it and the new size."""
    z0, i0 = zs[0], ids[0]
    size -= 1
    z, i = zs[size], ids[size]
    k = 0
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and (zs[child + 1] < zs[child] or (zs[child + 1] == zs[child] and ids[child + 1] < ids[child])):
            child += 1
        if z < zs[child] or (z == zs[child] and i < ids[child]):
            break
        zs[k], ids[k] = zs[child], ids[child]
        k = child
    if size > 0:
        zs[k], ids[k] = z, i
    return z0, i0, size


@numba.njit(cache=True)
def priority_flood(h: NDArray[np.float64], epsilon: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Priority-flood (Barnes et al. 2014) with an epsilon gradient: every cell drains to the border.

    Cells leave the queue in (height, row, column) order, ties broken by position, so the result
    does not depend on the queue's implementation (an array-backed binary heap). Heights leave the
    queue in non-decreasing order (a cell is pushed at least ``epsilon`` above the one that reached
    it); with ``epsilon > 0`` strictly above, so the leaving order is then the filled grid's
    ascending (height, index) order (with 0, equal heights of a flat may leave out of index order).

    Returns
    -------
    filled : (rows, cols) array
        The filled heights (m).
    order : (rows * cols,) int64
        Flat indices in the order they left the queue: ascending filled height (see above for ties).
    """
    rows, cols = h.shape
    out = h.copy()
    done = np.zeros((rows, cols), np.bool_)
    zs = np.empty(rows * cols)
    ids = np.empty(rows * cols, np.int64)
    order = np.empty(rows * cols, np.int64)
    popped = 0
    size = 0
    for r in range(rows):
        for c in range(cols):
            if r == 0 or c == 0 or r == rows - 1 or c == cols - 1:
                size = _heap_push(zs, ids, size, out[r, c], r * cols + c)
                done[r, c] = True
    while size > 0:
        z, i, size = _heap_pop(zs, ids, size)
        order[popped] = i
        popped += 1
        r, c = i // cols, i % cols
        for k in range(8):
            rr, cc = r + _DR[k], c + _DC[k]
            if rr < 0 or cc < 0 or rr >= rows or cc >= cols or done[rr, cc]:
                continue
            done[rr, cc] = True
            if out[rr, cc] <= z + epsilon:
                out[rr, cc] = z + epsilon
            size = _heap_push(zs, ids, size, out[rr, cc], rr * cols + cc)
    return out, order


def fill_pits(h: NDArray[np.float64], epsilon: float) -> NDArray[np.float64]:
    """The filled heights of :func:`priority_flood` (m)."""
    return priority_flood(np.ascontiguousarray(h, dtype=np.float64), epsilon)[0]


@numba.njit(cache=True, parallel=True)
def _d8_area(
    h: NDArray[np.float64], dy: float, dx: float, order: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    rows, cols = h.shape
    n = rows * cols
    receiver = np.full(n, -1, np.int64)
    dist = np.sqrt((_DR * dy) ** 2.0 + (_DC * dx) ** 2.0)
    for r in numba.prange(rows):
        for c in range(cols):
            best, target = 0.0, -1
            for k in range(8):
                rr, cc = r + _DR[k], c + _DC[k]
                if rr < 0 or cc < 0 or rr >= rows or cc >= cols:
                    continue
                s = (h[r, c] - h[rr, cc]) / dist[k]
                if s > best:
                    best, target = s, rr * cols + cc
            receiver[r * cols + c] = target
    area = np.full(n, dy * dx)
    for i in range(n - 1, -1, -1):
        j = order[i]
        if receiver[j] >= 0:
            area[receiver[j]] += area[j]
    return area.reshape(rows, cols), receiver


def drainage_area(
    h: NDArray[np.float64], dy: float, dx: float, order: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """D8 drainage area (m^2), receiver index (flat, -1 at outlets) and the flat indices in
    ascending height of a pit-free grid.

    ``order``: the flat indices in ascending height if known (:func:`priority_flood` gives them for
    free); else a stable argsort (ties by index, as the flood's order)."""
    h = np.ascontiguousarray(h, dtype=np.float64)
    if order is None:
        order = np.argsort(h.ravel(), kind="stable")
    area, receiver = _d8_area(h, dy, dx, order)
    return area, receiver, order


@numba.njit(cache=True)
def _implicit_incision(
    h: NDArray[np.float64], area: NDArray[np.float64], receiver: NDArray[np.int64], order: NDArray[np.int64],
    k_dt: float, m: float, dy: float, dx: float,
) -> None:
    """One implicit stream-power step (Braun & Willett 2013), in place, downstream to upstream
    (``order``: the nodes in ascending height, as :func:`drainage_area` returns them)."""
    rows, cols = h.shape
    flat = h.ravel()
    a = area.ravel()
    for i in range(order.size):
        j = order[i]
        r = receiver[j]
        if r < 0:
            continue
        dist = np.sqrt(((j // cols - r // cols) * dy) ** 2 + ((j % cols - r % cols) * dx) ** 2)
        f = k_dt * a[j] ** m / dist
        flat[j] = (flat[j] + f * flat[r]) / (1.0 + f)


def stream_power_erosion(
    height_m: NDArray, pixel_m: tuple[float, float], iterations: int, k_dt: float = 0.004, m: float = 0.5
) -> NDArray[np.float64]:
    """Erode a relief by the stream-power law dh/dt = -K A^m S, implicit in time.

    Each iteration routes flow over the pit-filled surface (closed basins
    fill with sediment and spill), computes D8 drainage areas A (m^2) and
    lowers every node towards its receiver. Erosion is proportional to slope,
    so filled flats stay flat while their outlets are cut down: the result
    has connected, dendritic valley networks and sharp interfluves.

    Parameters
    ----------
    height_m : (rows, cols) array
        Initial heights (m); border nodes are the base level.
    pixel_m : (dy, dx)
        Node spacing (m).
    iterations : int
        Number of implicit steps.
    k_dt : float
        Erodibility times time step (m^(1-2m)).
    m : float
        Drainage-area exponent.
    """
    h = np.ascontiguousarray(height_m, dtype=np.float64)
    dy, dx = pixel_m
    for _ in range(iterations):
        h, order = priority_flood(h, 1e-3)
        area, receiver, _ = drainage_area(h, dy, dx, order)
        _implicit_incision(h, area, receiver, order, k_dt, m, dy, dx)
    return h
