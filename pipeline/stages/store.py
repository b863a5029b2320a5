"""Stage ``store``: the shards into the patch store (``patches.zarr``, ``index.parquet``), the dataset
card and a quicklook per triplet."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import validate
from pipeline.dataset.card import dataset_card
from pipeline.dataset.quicklooks import dem_grey, triplet_panel
from pipeline.dataset.store import assemble_store
from pipeline.errors import DatasetError
from pipeline.io import quicklook as q
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import open_raster, raster_tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreParams:
    """What changes the store (the config's ``dataset`` keys of the same names)."""

    split: str
    split_fractions: tuple[float, float, float]
    seed: int
    split_block_patches: int
    patch_size: int

    KEYS = ("split", "split_fractions", "seed", "split_block_patches", "patch_size")

    @classmethod
    def from_dict(cls, dataset: dict[str, Any]) -> StoreParams:
        """From (part of) the config's ``dataset`` section, completed with the schema's defaults."""
        d = validate({"dataset": {k: v for k, v in dataset.items() if k in cls.KEYS}})["dataset"]
        return cls(d["split"], tuple(float(f) for f in d["split_fractions"]), int(d["seed"]),
                   int(d["split_block_patches"]), int(d["patch_size"]))


def build_store(shards: list[Path], optical_json: list[Path], triplets_json: Path, dem: Path, sar: list[Path],
                flags: list[Path], optical: list[Path], params: StoreParams, out_dir: Path) -> Path:
    """Write ``patches.zarr``, ``index.parquet``, ``README.md`` (the card) and ``quicklooks/`` in ``out_dir``.

    ``sar``, ``flags`` and ``optical`` are each triplet's rasters, in the order of ``triplets_json``;
    ``dem`` is the normalised DEM (its ``dem_max_m`` tag goes into the card).
    """
    triplets = json.loads(Path(triplets_json).read_text())
    if not len(triplets) == len(sar) == len(flags) == len(optical):
        raise DatasetError(f"{triplets_json}: {len(triplets)} triplets, but {len(sar)} backscatter, "
                           f"{len(flags)} flags and {len(optical)} optical files")
    log.info("store from %d shards of %d triplets; parameters %s", len(shards), len(triplets), params)
    index = assemble_store([Path(x) for x in shards], out_dir, params.split, params.split_fractions, params.seed,
                           params.split_block_patches * params.patch_size, params.patch_size)
    infos = [json.loads(Path(x).read_text()) for x in optical_json]
    dem_max = float(raster_tag(dem, "dem_max_m"))
    skipped_sar = {}
    for t, path in zip(triplets, sar):
        reason = raster_tag(path, "skipped", "")
        if reason:
            skipped_sar[t["s1"]] = reason
    with atomic_path(out_dir / "README.md") as tmp:
        tmp.write_text(dataset_card(index, triplets, infos, dem_max, skipped_sar))
    written = triplet_quicklooks(triplets, sar, flags, optical, dem, out_dir / "quicklooks")
    log.info("%d patches (%s); card %s; %d quicklooks", len(index), index["split"].value_counts().to_dict(),
             out_dir / "README.md", len(written))
    return out_dir


def triplet_quicklooks(triplets: list[dict], sar: list[Path], flags: list[Path], optical: list[Path], dem: Path,
                       out_dir: Path, max_size: int = 700) -> list[Path]:
    """One PNG per triplet; ``sar``, ``flags`` and ``optical`` are the triplets' rasters, in their order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_raster(dem, "normalised DEM") as src:
        grey = dem_grey(src.read(1))
    written = []
    for t, sar_tif, flags_tif, optical_tif in zip(triplets, sar, flags, optical, strict=True):
        with open_raster(sar_tif, "backscatter") as src:
            vv, vh = src.read(1), src.read(2)
        with open_raster(flags_tif, "distortion flags") as src:
            flag_values = src.read(1)
        with open_raster(optical_tif, "optical image") as src:
            rgb = np.dstack([src.read(b) for b in (1, 2, 3)])
        panel = triplet_panel(vv, vh, grey, rgb, flag_values)
        written.append(q.save_png(out_dir / f"{t['id']}.png", panel, 4 * max_size))
    return written
