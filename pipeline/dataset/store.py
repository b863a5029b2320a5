"""The patch store: the writer of ``patches.zarr`` and ``index.parquet`` from the per-triplet shards.

Store layout (``<dataset>/patches.zarr``, zarr v3, sharded, dimensions (patch, <array>_channel, y, x),
readable with ``xarray.open_zarr(path, consolidated=False)``):
``sar`` float32 (VV, VH in dB), ``dem`` float32 (normalised by the maximum elevation),
``optical`` uint8 (R, G, B stretched to [0, 255], masked pixels 0), ``valid`` uint8 (optical
validity, 1 valid), ``flags`` uint8 (distortion bits, :mod:`pipeline.sar.distortion`).
``<dataset>/index.parquet`` has one row per patch: id, triplet, scene ids, dates, bounds, CRS,
split and the fractions of shadow, foreshortening and masked optical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.dataset.tiling import SPLITS, assign_splits
from pipeline.errors import DatasetError
from pipeline.io.atomic import atomic_path


def assemble_store(shards: list[Path], out_dir: Path, split_mode: str, fractions: tuple[float, float, float],
                   seed: int, split_block_px: int, patch_size: int) -> pd.DataFrame:
    """One sharded zarr store for all patches (``patches.zarr``) and the Parquet index with splits
    (``index.parquet``) in ``out_dir``, from the per-triplet shards of :mod:`pipeline.stages.tiles`."""
    import zarr

    loaded = []
    for p in shards:
        try:
            loaded.append(np.load(p))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{p}: not a readable shard ({exc})") from exc
    rows = [r for z in loaded for r in json.loads(str(z["index"]))]
    if not rows:
        raise DatasetError("the dataset is empty: no triplet produced a patch (see logs/: skipped scenes, "
                           "no S1/S2 pair within dataset.max_days, or patches dropped for no data or masking)")
    index = pd.DataFrame(rows)
    index.insert(0, "patch", np.arange(len(index)))
    split = assign_splits(index["row"].to_numpy(), index["col"].to_numpy(), fractions, seed, split_mode, split_block_px)
    index["split"] = [SPLITS[s] for s in split]
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "patches.zarr") as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        n = len(index)
        for name, dtype in (("sar", "float32"), ("dem", "float32"), ("optical", "uint8"), ("valid", "uint8"),
                            ("flags", "uint8")):
            data = np.concatenate([z[name] for z in loaded if z[name].ndim == 4])
            arr = root.create_array(name, shape=data.shape, dtype=dtype, chunks=(1,) + data.shape[1:],
                                    shards=(min(64, n),) + data.shape[1:],
                                    dimension_names=("patch", f"{name}_channel", "y", "x"))
            arr[:] = data
        root.attrs.update({"channels": {"sar": ["VV_dB", "VH_dB"], "dem": ["elevation_over_max"],
                                        "optical": ["red", "green", "blue"], "valid": ["optical_valid"],
                                        "flags": ["distortion_bits"]},
                           "patch_size": patch_size})
    with atomic_path(out_dir / "index.parquet") as tmp:
        index.to_parquet(tmp, index=False)
    return index
