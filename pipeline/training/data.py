"""The patch store as training tensors: one split held in memory (host or GPU), batches drawn on the device.

Conventions (stored in every checkpoint and model file, so evaluation uses the same):

- Inputs, channel order VV, VH, DEM. SAR backscatter in dB is mapped linearly from
  ``[db_min, db_max]`` to [0, 1] and clipped (:class:`SarScaling`; default [-35, 5] dB:
  -35 dB is the dataset's floor, +5 dB keeps bright layover and built-up targets below
  saturation). The DEM is the store's, already divided by the dataset's maximum
  elevation (one constant, in the store). SAR-only models take the first two channels.
- Targets: the store's stretched uint8 R, G, B divided by 255, in [0, 1]; generators with a
  Tanh output see ``2 y - 1``.
- ``valid``: the optical validity mask (False where snow, cloud or cloud shadow was masked).

The whole split is read once (whole shards, in patch order) and kept as float32 on the
CPU, or float16 on a CUDA device when it fits in half of the free memory (the paper's
53k patches take about 38 GB): an epoch is then sampled on the device with no host
loader at all. A split that does not fit in the host's available memory stops with a
message (a streaming loader over shards is not implemented). Batches are gathered by index and crop offset from a generator seeded per
epoch (:func:`epoch_plan`), so the data order of every epoch is a pure function of
(seed, epoch): a resumed run draws exactly the batches the uninterrupted one draws.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.dataset.layout import SPLITS
from pipeline.errors import UserError



@dataclass(frozen=True)
class SarScaling:
    """Linear map of SAR backscatter from [db_min, db_max] dB to [0, 1], clipped; NaN -> 0."""

    db_min: float = -35.0
    db_max: float = 5.0

    def __post_init__(self) -> None:
        if not self.db_max > self.db_min:
            raise UserError(f"training.sar_db_range must be increasing, got [{self.db_min}, {self.db_max}]")

    def apply(self, sar_db: np.ndarray) -> np.ndarray:
        """``sar_db`` (any shape, dB) -> float32 in [0, 1]."""
        scaled = (np.asarray(sar_db, dtype=np.float32) - np.float32(self.db_min)) / np.float32(self.db_max - self.db_min)
        return np.nan_to_num(np.clip(scaled, 0.0, 1.0), nan=0.0)


@dataclass
class SplitTensors:
    """One split of the store, in memory.

    Attributes
    ----------
    inputs : Tensor
        (N, 3, H, W) VV, VH scaled to [0, 1] and the normalised DEM.
    optical : Tensor
        (N, 3, H, W) uint8 R, G, B.
    valid : Tensor
        (N, 1, H, W) bool optical validity.
    flags : Tensor
        (N, 1, H, W) uint8 distortion bits (1 foreshortening, 2/4 layover, 8/16 shadow).
    patch : ndarray
        The store's patch numbers, in the order of the tensors.
    """

    inputs: torch.Tensor
    optical: torch.Tensor
    valid: torch.Tensor
    flags: torch.Tensor
    patch: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def size(self) -> int:
        return int(self.inputs.shape[-1])

    def to(self, device: torch.device, dtype: torch.dtype = torch.float32) -> SplitTensors:
        return SplitTensors(self.inputs.to(device, dtype), self.optical.to(device), self.valid.to(device),
                            self.flags.to(device), self.patch)

    def nbytes(self, dtype: torch.dtype = torch.float16) -> int:
        per_float = torch.empty((), dtype=dtype).element_size()
        return (self.inputs.numel() * per_float + self.optical.numel() + self.valid.numel() + self.flags.numel())


def read_index(dataset_dir: str | Path) -> pd.DataFrame:
    """The store's Parquet index (one row per patch, its split)."""
    path = Path(dataset_dir) / "index.parquet"
    if not path.exists():
        raise UserError(f"{path}: no patch index (build the dataset first: snakemake dataset)")
    return pd.read_parquet(path)


def load_split(dataset_dir: str | Path, split: str, scaling: SarScaling) -> SplitTensors:
    """Read one split of ``dataset_dir/patches.zarr`` into CPU tensors (float32 inputs).

    Rows come in the store's patch order; the index's ``split`` column decides
    membership, so a test patch can never reach training.
    """
    import zarr

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    dataset_dir = Path(dataset_dir)
    index = read_index(dataset_dir)
    patch = np.sort(index.loc[index["split"] == split, "patch"].to_numpy())
    store = dataset_dir / "patches.zarr"
    try:
        root = zarr.open_group(str(store), mode="r")
        arrays = {name: root[name] for name in ("sar", "dem", "optical", "valid", "flags")}
    except (FileNotFoundError, KeyError) as exc:
        raise UserError(f"{store}: not a patch store with sar, dem, optical, valid and flags ({exc})") from exc
    n_store = arrays["sar"].shape[0]
    side = int(arrays["sar"].shape[-1])
    need = len(patch) * side * side * (3 * 4 + 3 + 1 + 1) * 2  # float32 inputs, optical, valid, flags; read + copy
    available = _available_memory()
    if available is not None and need > available:
        raise UserError(f"{store}: the {split} split ({len(patch)} patches, ~{need / 2**30:.1f} GiB while loading) "
                        f"does not fit in the {available / 2**30:.1f} GiB of available memory; train on a machine with "
                        "more memory (or a GPU that holds it as float16), or on a smaller dataset")
    if len(index) != n_store:
        raise UserError(f"{store}: {n_store} patches but {dataset_dir / 'index.parquet'} lists {len(index)}")
    data = {name: _read_rows(arr, patch) for name, arr in arrays.items()}
    inputs = np.concatenate([scaling.apply(data["sar"]), data["dem"].astype(np.float32)], axis=1)
    return SplitTensors(torch.from_numpy(inputs), torch.from_numpy(data["optical"]),
                        torch.from_numpy(data["valid"] > 0), torch.from_numpy(data["flags"]), patch)


def _available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux, macOS); None where unknown."""
    import os

    try:  # Linux: free memory plus what the page cache would give back
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _read_rows(arr, rows: np.ndarray) -> np.ndarray:
    """Rows of a (patch, ...) zarr array, read shard by shard (whole shards, then selected)."""
    out = np.empty((len(rows),) + tuple(arr.shape[1:]), dtype=arr.dtype)
    if len(rows) == 0:
        return out
    shard = (arr.shards or arr.chunks)[0]
    for first in np.unique(rows // shard) * shard:
        sel = (rows >= first) & (rows < first + shard)
        block = arr[first: min(first + shard, arr.shape[0])]
        out[sel] = block[rows[sel] - first]
    return out


def place(split: SplitTensors, device: torch.device, log=print) -> SplitTensors:
    """Move a split to the training device: float16 on a GPU with room for it, else kept on the host."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        need = split.nbytes(torch.float16)
        if need < free // 2:
            log(f"holding the split on {device} ({need / 2**30:.2f} GiB as float16)")
            return split.to(device, torch.float16)
        log(f"split of {need / 2**30:.1f} GiB does not fit in half of the GPU's free memory: "
            "batches are copied from pinned host memory")
        return SplitTensors(split.inputs.pin_memory(), split.optical.pin_memory(), split.valid.pin_memory(),
                            split.flags.pin_memory(), split.patch)
    return split


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's data order and crops (a pure function of the run's seed and the epoch)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


@dataclass(frozen=True)
class EpochPlan:
    """The samples of one epoch: patch indices (into the split) and crop offsets (pixels), per batch."""

    indices: torch.Tensor  # (S,) int64
    rows: torch.Tensor  # (S,) top of each crop
    cols: torch.Tensor  # (S,) left of each crop
    batch_size: int

    def __len__(self) -> int:
        return -(-int(self.indices.numel()) // self.batch_size)

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for b in range(start, len(self)):
            s = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield self.indices[s], self.rows[s], self.cols[s]


def epoch_plan(n: int, patch_size: int, crop: int, samples: int, batch_size: int, seed: int, epoch: int) -> EpochPlan:
    """Shuffled samples for one epoch: each pass over the split is a new permutation.

    Parameters
    ----------
    n : int
        Patches in the split.
    patch_size, crop : int
        Patch side and crop side (pixels); ``crop == patch_size`` takes whole patches.
    samples : int
        Samples in the epoch (several passes over the split when larger than ``n``).
    """
    if n == 0:
        raise UserError("the training split is empty: the dataset has no 'train' patch (see its README.md)")
    if not 0 < crop <= patch_size:
        raise UserError(f"training crop {crop} must be in (0, {patch_size}]")
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    passes = -(-samples // n)
    indices = torch.cat([torch.randperm(n, generator=g) for _ in range(passes)])[:samples]
    span = patch_size - crop + 1
    rows = torch.randint(0, span, (samples,), generator=g)
    cols = torch.randint(0, span, (samples,), generator=g)
    return EpochPlan(indices, rows, cols, batch_size)


def gather(split: SplitTensors, indices: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, crop: int,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch on ``device``: inputs (float32), targets in [0, 1] (float32), validity (bool)."""
    where = split.inputs.device
    idx = indices.to(where)
    if crop == split.size:
        x, y, v = split.inputs[idx], split.optical[idx], split.valid[idx]
    else:  # one advanced-indexing gather per tensor (a single kernel on a GPU)
        span = torch.arange(crop, device=where)
        r = (rows.to(where)[:, None] + span)[:, None, :, None]
        c = (cols.to(where)[:, None] + span)[:, None, None, :]
        i = idx[:, None, None, None]

        def take(t: torch.Tensor) -> torch.Tensor:
            ch = torch.arange(t.shape[1], device=where)[None, :, None, None]
            return t[i, ch, r, c]

        x, y, v = take(split.inputs), take(split.optical), take(split.valid)
    non_blocking = device.type == "cuda"
    x = x.to(device, torch.float32, non_blocking=non_blocking)
    y = y.to(device, non_blocking=non_blocking).to(torch.float32) / 255.0
    return x, y, v.to(device, non_blocking=non_blocking)
