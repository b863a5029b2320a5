"""Patch windows on a map grid, patch cutting, and train/validation/test splits (pure numerics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.core.grid import MapGrid
from pipeline.dataset.layout import LAYERS, SPLITS
from pipeline.sar import distortion as dist


@dataclass(frozen=True)
class PatchWindow:
    """A patch: top-left (row, col) on the AOI grid, its size in pixels."""

    row: int
    col: int
    size: int


def patch_windows(height: int, width: int, size: int, stride: int) -> list[PatchWindow]:
    """Every full patch of ``size`` x ``size`` pixels at ``stride`` (no partial patches at the edges)."""
    return [PatchWindow(r, c, size) for r in range(0, height - size + 1, stride) for c in range(0, width - size + 1, stride)]


def assign_splits(rows: NDArray, cols: NDArray, fractions: tuple[float, float, float], seed: int,
                  mode: str, block_px: int, strata: NDArray | None = None) -> NDArray[np.int8]:
    """Split ids (0 train, 1 val, 2 test) of patches at top-left (rows, cols) in pixels.

    ``random``: each patch independently (the paper). ``spatial``: ground blocks of ``block_px``
    pixels go wholly to one split, so that a location seen on several dates is in one split only;
    blocks are dealt by number, so the patch fractions drift when blocks hold different numbers of
    patches. ``stratified``: spatial blocks too, each given to the split whose shares of patches and
    of every stratum it brings closest to the requested fractions (largest blocks first, ties in a
    seeded random order); ``strata`` (patches, k) holds each patch's weights in the k strata, e.g.
    whether it has radar shadow and foreshortening, so that every split gets its share of each.
    """
    rng = np.random.default_rng(seed)
    cum = np.cumsum(fractions) / np.sum(fractions)
    if mode == "random":
        u = rng.random(rows.size)
        return np.searchsorted(cum, u, side="right").astype(np.int8)
    if mode not in ("spatial", "stratified"):
        raise ValueError(f"split mode must be 'random', 'spatial' or 'stratified', not {mode!r}")
    keys = (rows // block_px) * 1_000_003 + (cols // block_px)
    unique, inverse = np.unique(keys, return_inverse=True)
    order = rng.permutation(unique.size)
    if mode == "spatial":
        # deal blocks in a random order, filling each split up to its share of blocks
        block_split = np.searchsorted(cum, (np.argsort(order) + 0.5) / unique.size, side="right").astype(np.int8)
        return block_split[inverse]
    weights = np.ones((rows.size, 1)) if strata is None else np.column_stack([np.ones(rows.size), strata])
    block_weights = np.zeros((unique.size, weights.shape[1]))
    np.add.at(block_weights, inverse, weights)
    return _balanced_blocks(block_weights, np.asarray(fractions) / np.sum(fractions), order)[inverse]


def _balanced_blocks(block_weights: NDArray, fractions: NDArray, tie_order: NDArray) -> NDArray[np.int8]:
    """Greedy assignment of blocks (rows of ``block_weights``: patches, then stratum weights) to splits:
    each block, largest first, goes where it lowers most (or raises least) the chi-square distance
    ``sum((assigned - target) ** 2 / target)`` over splits and columns (between absolute and relative misses:
    a small split's deficit counts, without a single block overshooting it)."""
    total = block_weights.sum(axis=0)
    target = fractions[:, None] * total[None, :]
    scale = np.where(target > 0, target, 1.0)
    assigned = np.zeros_like(target)
    out = np.empty(len(block_weights), np.int8)
    for b in np.lexsort((tie_order, -block_weights[:, 0])):
        w = block_weights[b]
        before = (assigned - target) ** 2 / scale
        after = (assigned + w - target) ** 2 / scale
        s = int(np.argmin((after - before).sum(axis=1)))
        assigned[s] += w
        out[b] = s
    return out


def cut_patches(triplet: dict, grid: MapGrid, sar: NDArray, flags: NDArray, optical: NDArray, dem: NDArray,
                patch_size: int, stride: int, max_masked: float) -> tuple[list[dict], dict[str, list[NDArray]]]:
    """The patches of one triplet on the AOI ``grid`` and their index rows.

    ``sar`` (bands, y, x) dB; ``flags`` (y, x) distortion bits; ``optical`` (R, G, B, valid, y, x) uint8;
    ``dem`` (y, x) normalised. A patch is kept when its SAR and DEM are finite everywhere and at most
    ``max_masked`` of its optical pixels are masked. Returns the rows (bounds in the grid's CRS,
    metres; fractions of shadow, foreshortening and masked optical) and the arrays per layer
    (``LAYERS``, each (channel, y, x)).
    """
    arrays: dict[str, list] = {k: [] for k in LAYERS}
    rows = []
    for w in patch_windows(grid.height, grid.width, patch_size, stride):
        win = (slice(w.row, w.row + patch_size), slice(w.col, w.col + patch_size))
        s = sar[(slice(None),) + win]
        if not np.isfinite(s).all() or not np.isfinite(dem[win]).all():
            continue  # SAR or DEM no data
        valid = optical[3][win] > 0
        masked = 1.0 - float(valid.mean())
        if masked > max_masked:
            continue
        f = flags[win]
        left = grid.left + w.col * grid.resolution
        top = grid.top - w.row * grid.resolution
        rows.append({
            "triplet": triplet["id"], "s1": triplet["s1"], "s2": triplet["s2"],
            "s1_time": triplet["s1_time"], "s2_time": triplet["s2_time"], "row": w.row, "col": w.col,
            "left": left, "top": top, "right": left + patch_size * grid.resolution,
            "bottom": top - patch_size * grid.resolution, "crs": f"EPSG:{grid.epsg}",
            "shadow_fraction": float(((f & dist.SHADOW) > 0).mean()),
            "foreshortening_fraction": float(((f & (dist.FORESHORTENING | dist.LAYOVER)) > 0).mean()),
            "masked_fraction": masked,
        })
        arrays["sar"].append(s)
        arrays["dem"].append(dem[win][None])
        arrays["optical"].append(optical[(slice(0, 3),) + win])
        arrays["valid"].append(valid.astype(np.uint8)[None])
        arrays["flags"].append(f[None])
    return rows, arrays
