"""The terrain generator's erosion kernels: priority flood, D8 drainage (pipeline.simulate.erosion)."""

from __future__ import annotations

import heapq

import numpy as np
from scipy import ndimage

from pipeline.simulate.erosion import drainage_area, fill_pits, priority_flood

D8 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def reference_fill(h: np.ndarray, epsilon: float) -> np.ndarray:
    """Priority-Flood+epsilon (Barnes et al. 2014, algorithm 2) with Python's heapq on (z, row, col)."""
    rows, cols = h.shape
    out = h.copy()
    done = np.zeros(h.shape, bool)
    heap = []
    for r in range(rows):
        for c in range(cols):
            if r in (0, rows - 1) or c in (0, cols - 1):
                heapq.heappush(heap, (out[r, c], r, c))
                done[r, c] = True
    while heap:
        z, r, c = heapq.heappop(heap)
        for dr, dc in D8:
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols and not done[rr, cc]:
                done[rr, cc] = True
                out[rr, cc] = max(out[rr, cc], z + epsilon)
                heapq.heappush(heap, (out[rr, cc], rr, cc))
    return out


def test_fill_pits_equals_the_textbook_queue_and_drains_everywhere() -> None:
    rng = np.random.default_rng(5)
    h = ndimage.gaussian_filter(rng.uniform(0.0, 100.0, (60, 70)), 2.0)
    h[20:30, 20:30] = np.round(h[20:30, 20:30])  # flats and ties: the order of equal heights matters
    filled = fill_pits(h, 1e-3)
    np.testing.assert_array_equal(filled, reference_fill(h, 1e-3))
    assert (filled >= h).all()
    # every interior node has a strictly lower neighbour: water reaches the border from everywhere
    interior = filled[1:-1, 1:-1]
    lowest = np.min([filled[1 + dr : filled.shape[0] - 1 + dr, 1 + dc : filled.shape[1] - 1 + dc] for dr, dc in D8], axis=0)
    assert (lowest < interior).all()


def test_fill_pits_floods_a_bowl_to_its_spill_level() -> None:
    yy, xx = np.mgrid[0:41, 0:41]
    h = 100.0 + 0.5 * yy  # a plane rising to the south, draining to the north edge
    bowl = (yy - 20) ** 2 + (xx - 20) ** 2 <= 64
    h[bowl] -= 30.0
    filled = fill_pits(h, 0.0)
    # the bowl fills up to the lowest rim node of the plane around it (its northern edge, row 12)
    spill = h[~bowl & ndimage.binary_dilation(bowl)].min()
    np.testing.assert_allclose(filled[bowl], spill)
    np.testing.assert_array_equal(filled[~bowl], h[~bowl])


def test_drainage_area_of_a_tilted_plane() -> None:
    """A plane falling to the north: every node drains to the node north of it, so the area of row r
    (from the south edge) is (rows - r) cells; the outlets are the north edge."""
    rows, cols, dy, dx = 30, 12, 90.0, 60.0
    h = np.broadcast_to(10.0 * np.arange(rows)[:, None], (rows, cols)).astype(np.float64)
    area, receiver, order = drainage_area(h, dy, dx)
    r = np.arange(rows)[:, None]
    np.testing.assert_allclose(area, np.broadcast_to((rows - r) * dy * dx, (rows, cols)))
    assert (receiver.reshape(rows, cols)[0] == -1).all()
    np.testing.assert_array_equal(receiver.reshape(rows, cols)[1:, 3], (np.arange(rows - 1)) * cols + 3)
    np.testing.assert_array_equal(np.sort(h.ravel()), h.ravel()[order])


def test_the_flood_order_sorts_the_filled_grid() -> None:
    """With an epsilon gradient, the order in which cells leave the flood is the filled grid's ascending
    (height, index) order, which erosion uses instead of sorting; without one, heights still ascend."""
    rng = np.random.default_rng(9)
    h = ndimage.gaussian_filter(rng.uniform(0.0, 100.0, (50, 40)), 2.0)
    h[10:20, 5:15] = 40.0  # a flat: equal heights
    filled, order = priority_flood(h, 1e-3)
    np.testing.assert_array_equal(filled, fill_pits(h, 1e-3))
    np.testing.assert_array_equal(order, np.lexsort((np.arange(h.size), filled.ravel())))
    area, _, _ = drainage_area(filled, 30.0, 30.0, order)
    area_sorted, _, order_sorted = drainage_area(filled, 30.0, 30.0)
    np.testing.assert_array_equal(order, order_sorted)
    np.testing.assert_array_equal(area, area_sorted)
    filled0, order0 = priority_flood(h, 0.0)
    assert (np.diff(filled0.ravel()[order0]) >= 0).all()
    np.testing.assert_array_equal(np.sort(order0), np.arange(h.size))


def test_billow_has_a_rounded_bottom_and_a_bounded_slope() -> None:
    """The valley networks' profile: 0 on the noise's zero lines, 1 at |n| = 1, monotonic in |n|, and
    its slope bounded by the closed form 1 / sqrt(2 r (sqrt(1 + r^2) - r)) (sqrt(|n|), the earlier
    profile, has an infinite slope at 0: creases along whole curves of the relief)."""
    from pipeline.simulate.terrain import billow

    r = 0.1
    n = np.linspace(-1.0, 1.0, 200001)
    b = billow(n, r).astype(np.float64)
    assert b[100000] == 0.0 and abs(b[0] - 1.0) < 1e-6 and abs(b[-1] - 1.0) < 1e-6
    assert np.all(np.diff(b[100000:]) >= 0) and np.allclose(b, b[::-1])
    slope = np.abs(np.diff(b)) / (n[1] - n[0])
    bound = 1.0 / np.sqrt(2 * r * (np.sqrt(1 + r * r) - r))
    assert slope.max() <= bound * 1.0001 and slope.max() > 0.95 * bound
    assert np.abs(np.diff(np.sqrt(np.abs(n)))).max() / (n[1] - n[0]) > 50 * bound  # the old profile's crease
