"""Stage ``tiles``: cut one triplet into patches (an .npz shard with its rows of the index)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import validate
from pipeline.dataset.tiling import LAYERS, cut_patches
from pipeline.errors import DatasetError
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import grid_of, open_raster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TilingParams:
    """What changes the shards (the config's ``dataset`` keys of the same names)."""

    patch_size: int
    stride: int
    max_masked_fraction: float

    KEYS = ("patch_size", "stride", "max_masked_fraction")

    @classmethod
    def from_dict(cls, dataset: dict[str, Any]) -> TilingParams:
        """From (part of) the config's ``dataset`` section, completed with the schema's defaults."""
        d = validate({"dataset": {k: v for k, v in dataset.items() if k in cls.KEYS}})["dataset"]
        return cls(int(d["patch_size"]), int(d["stride"]), float(d["max_masked_fraction"]))


def tile_triplet(triplet: dict, sar_tif: Path, flags_tif: Path, optical_tif: Path, optical_json: Path,
                 dem_norm_tif: Path, out_npz: Path, params: TilingParams) -> int:
    """Cut one triplet into patches (an .npz shard and its rows of the index). Returns the patch count."""
    try:
        info = json.loads(Path(optical_json).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{optical_json}: cannot read the optical scene's record ({exc})") from exc
    with open_raster(sar_tif, "backscatter") as src:
        sar = src.read().astype(np.float32)
        skipped_sar = src.tags().get("skipped", "")
        grid = grid_of(src)
    with open_raster(flags_tif, "distortion flags") as src:
        flags = src.read(1)
    with open_raster(optical_tif, "optical image") as src:
        opt = src.read()
    with open_raster(dem_norm_tif, "normalised DEM") as src:
        dem = src.read(1).astype(np.float32)
    rows: list[dict] = []
    arrays: dict[str, list] = {k: [] for k in LAYERS}
    if info["skipped"]:
        log.warning("triplet %s: optical scene %s skipped (%s)", triplet["id"], triplet["s2"], info["reason"])
    elif skipped_sar:
        log.warning("triplet %s: Sentinel-1 scene %s skipped (%s)", triplet["id"], triplet["s1"], skipped_sar)
    else:
        rows, arrays = cut_patches(triplet, grid, sar, flags, opt, dem, params.patch_size, params.stride,
                                   params.max_masked_fraction)
    with atomic_path(out_npz) as tmp:
        stacked = {k: np.stack(v) if v else np.zeros((0,)) for k, v in arrays.items()}
        with open(tmp, "wb") as fh:
            np.savez(fh, index=json.dumps(rows), **stacked)
    log.info("triplet %s: %d patches of %d px at stride %d (max masked %.2f) -> %s", triplet["id"], len(rows),
             params.patch_size, params.stride, params.max_masked_fraction, out_npz)
    return len(rows)
