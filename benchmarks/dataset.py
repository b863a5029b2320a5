"""Benchmark: tiling + store writes (patches/s) and random-access reads of the store (patches/s).

Needs the default dataset (``snakemake --cores 8 dataset``). Tiling re-cuts every triplet into a
scratch shard and re-assembles the store; reads draw random patches from the zarr store, in one
process and through a torch DataLoader with worker processes.

    python benchmarks/dataset.py [--results results] [--reads 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


class PatchDataset:
    """Random access to the store's patches (what a training loader does)."""

    def __init__(self, store: str):
        self.store = store
        self.arrays = None

    def _open(self):
        import zarr

        root = zarr.open_group(self.store, mode="r")
        self.arrays = {k: root[k] for k in ("sar", "dem", "optical", "valid")}

    def __len__(self) -> int:
        import zarr

        return zarr.open_group(self.store, mode="r")["sar"].shape[0]

    def __getitem__(self, i: int):
        if self.arrays is None:
            self._open()
        return {k: np.asarray(a[i]) for k, a in self.arrays.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import torch

    from pipeline.dataset.store import assemble_store
    from pipeline.stages.tiles import TilingParams, tile_triplet

    results = Path(args.results)
    dataset = results / "dataset"
    triplets = json.loads((dataset / "triplets.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        shards, n = [], 0
        for t in triplets:
            shard = tmp / f"{t['id']}.npz"
            n += tile_triplet(t, results / "sar" / f"{t['s1']}_backscatter.tif",
                              results / "distortion" / f"{t['s1']}_flags.tif",
                              results / "optical" / f"{t['s2']}.tif", results / "optical" / f"{t['s2']}.json",
                              results / "dem" / "dem_normalised.tif", shard, TilingParams(256, 256, 0.5))
            shards.append(shard)
        t1 = time.perf_counter()
        assemble_store(shards, tmp / "out", "spatial", (0.8, 0.1, 0.1), 0, 512, 256)
        t2 = time.perf_counter()
        rows.append(("tiling (read rasters, cut, shard)", n, n / (t1 - t0)))
        rows.append(("store (zarr v3 sharded + Parquet)", n, n / (t2 - t1)))

    store = str(dataset / "patches.zarr")
    ds = PatchDataset(store)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(ds), args.reads)
    t0 = time.perf_counter()
    for i in picks:
        ds[int(i)]
    rows.append(("random reads, 1 process", args.reads, args.reads / (time.perf_counter() - t0)))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, sampler=picks.tolist(), num_workers=args.workers,
                                         collate_fn=lambda b: b, persistent_workers=False)
    t0 = time.perf_counter()
    count = sum(len(batch) for batch in loader)
    rows.append((f"random reads, DataLoader {args.workers} workers", count, count / (time.perf_counter() - t0)))

    print(f"machine: {os.cpu_count()} CPUs; store {store}")
    print(f"{'step':44s} {'patches':>8s} {'patches/s':>10s}")
    for name, n, rate in rows:
        print(f"{name:44s} {n:8d} {rate:10.1f}")


if __name__ == "__main__":
    main()
