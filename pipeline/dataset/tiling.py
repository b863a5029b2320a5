"""Patch windows on a map grid and train/validation/test splits (pure numerics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


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
                  mode: str, block_px: int) -> NDArray[np.int8]:
    """Split ids (0 train, 1 val, 2 test) of patches at top-left (rows, cols).

    ``random``: each patch independently (the paper). ``spatial``: ground blocks of ``block_px``
    pixels go wholly to one split, so that a location seen on several dates is in one split only.
    """
    rng = np.random.default_rng(seed)
    cum = np.cumsum(fractions) / np.sum(fractions)
    if mode == "random":
        u = rng.random(rows.size)
        return np.searchsorted(cum, u, side="right").astype(np.int8)
    if mode != "spatial":
        raise ValueError(f"split mode must be 'random' or 'spatial', not {mode!r}")
    keys = (rows // block_px) * 1_000_003 + (cols // block_px)
    unique, inverse = np.unique(keys, return_inverse=True)
    order = rng.permutation(unique.size)
    # deal blocks in a random order, filling each split up to its share of blocks
    block_split = np.searchsorted(cum, (np.argsort(order) + 0.5) / unique.size, side="right").astype(np.int8)
    return block_split[inverse]
