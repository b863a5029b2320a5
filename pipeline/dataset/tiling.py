"""Patch windows on a map grid, patch cutting, and train/validation/test splits (pure numerics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.core.grid import MapGrid
from pipeline.sar import distortion as dist

SPLITS = ("train", "val", "test")
LAYERS = ("sar", "dem", "optical", "valid", "flags")


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
