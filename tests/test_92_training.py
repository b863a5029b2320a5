"""Training: the loader against the store, masked pixels, exact resume after a kill, the rules' rerun triggers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
import zarr

from pipeline.training import checkpoint
from pipeline.training.data import SarScaling, epoch_plan, gather, load_split
from pipeline.training.losses import masked_l1
from pipeline.training.trainers import Hyper, make_trainer

from .conftest import run, small_config

TINY = {"epochs": 4, "batch_size": 2, "lr": 1e-3, "crop": 32, "samples_per_epoch": 16}


def test_loader_returns_exactly_the_store_patches(built: Path) -> None:
    dataset = built / "results" / "dataset"
    index = pd.read_parquet(dataset / "index.parquet")
    root = zarr.open_group(str(dataset / "patches.zarr"), mode="r")
    scaling = SarScaling(-35.0, 5.0)
    seen: dict[str, set[int]] = {}
    for split in ("train", "val", "test"):
        data = load_split(dataset, split, scaling)
        expected = set(index.loc[index["split"] == split, "patch"])
        assert set(data.patch.tolist()) == expected and len(data) == len(expected)
        seen[split] = expected
        for k, p in enumerate(data.patch):
            sar = root["sar"][p]
            want_sar = np.clip((sar + 35.0) / 40.0, 0, 1)
            np.testing.assert_allclose(data.inputs[k, :2].numpy(), want_sar, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(data.inputs[k, 2].numpy(), root["dem"][p][0])
            np.testing.assert_array_equal(data.optical[k].numpy(), root["optical"][p])
            np.testing.assert_array_equal(data.valid[k, 0].numpy(), root["valid"][p][0] > 0)
            np.testing.assert_array_equal(data.flags[k].numpy(), root["flags"][p])
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["val"])
    assert seen["train"], "the small world has training patches"
    # every batch of an epoch comes from the training split's tensors, crops inside the patch
    train = load_split(dataset, "train", scaling)
    plan = epoch_plan(len(train), train.size, 32, 3 * len(train), 4, seed=1, epoch=0)
    counts = np.bincount(plan.indices.numpy(), minlength=len(train))
    assert (counts == 3).all()  # three passes, each a permutation
    for idx, rows, cols in plan.batches():
        x, y, v = gather(train, idx, rows, cols, 32, torch.device("cpu"))
        i, r, c = int(idx[0]), int(rows[0]), int(cols[0])
        assert torch.equal(x[0], train.inputs[i, :, r:r + 32, c:c + 32])
        assert torch.equal(y[0], train.optical[i, :, r:r + 32, c:c + 32].float() / 255)
        assert y.min() >= 0 and y.max() <= 1
    again = epoch_plan(len(train), train.size, 32, 3 * len(train), 4, seed=1, epoch=0)
    other = epoch_plan(len(train), train.size, 32, 3 * len(train), 4, seed=1, epoch=1)
    assert torch.equal(plan.indices, again.indices) and torch.equal(plan.rows, again.rows)
    assert not torch.equal(plan.rows, other.rows)


def test_masked_l1_ignores_masked_target_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 8, 8, generator=g, requires_grad=True)
    target = torch.rand(2, 3, 8, 8, generator=g)
    valid = torch.rand(2, 1, 8, 8, generator=g) > 0.3
    loss = masked_l1(pred, target, valid)
    expected = (pred - target).abs()[valid.expand_as(pred)].mean()
    assert torch.allclose(loss, expected)
    (grad,) = torch.autograd.grad(loss, pred)
    assert (grad[~valid.expand_as(pred)] == 0).all()
    poisoned = target.clone()
    poisoned[~valid.expand_as(target)] = float("nan")
    assert torch.equal(masked_l1(pred, poisoned, valid), loss)


@pytest.mark.parametrize("model,size", [("sardinet_late", 32), ("pix2pix", 256), ("cyclegan", 32)])
def test_masked_pixels_change_neither_loss_nor_update(model: str, size: int) -> None:
    """One training step with the target perturbed only where it is masked gives identical weights."""
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, size, size, generator=g)
    y = torch.rand(2, 3, size, size, generator=g)
    valid = torch.rand(2, 1, size, size, generator=g) > 0.4
    perturbed = torch.where(valid.expand_as(y), y, torch.rand(2, 3, size, size, generator=g))
    results = []
    for target in (y, perturbed):
        torch.manual_seed(0)
        trainer = make_trainer(model, Hyper(lr=1e-3, epochs=2, seed=0), torch.device("cpu"))
        torch.manual_seed(5)
        losses = trainer.train_step(x, target, valid)
        results.append((losses, {k: v.clone() for k, v in trainer.model.state_dict().items()}))
    (l0, w0), (l1, w1) = results
    assert l0 == l1
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    # and the unmasked pixels do matter
    trainer = make_trainer(model, Hyper(lr=1e-3, epochs=2, seed=0), torch.device("cpu"))
    assert trainer.train_step(x, 1 - y, valid)["loss"] != l0


def _train_cmd(dataset: Path, out: Path, seed: int = 3) -> list[str]:
    return [sys.executable, "-m", "pipeline", "train", "--model", "sardinet_late", "--seed", str(seed),
            "--dataset", str(dataset), "--out", str(out), "--params", json.dumps({"sardinet": TINY}),
            "--threads", "1", "--no-tensorboard"]


def test_killed_training_resumes_exactly(built: Path, tmp_path: Path) -> None:
    dataset = built / "results" / "dataset"
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    res = run(_train_cmd(dataset, whole), tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]

    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(_train_cmd(dataset, killed), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    last = killed / "train_state" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "model.pt").exists()
    done = checkpoint.load(last)["epoch"]
    assert 1 <= done < TINY["epochs"]

    res = run(_train_cmd(dataset, killed), tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resuming from {last}: {done} of {TINY['epochs']} epochs done" in res.stderr
    state = checkpoint.load(last)
    steps = TINY["epochs"] * TINY["samples_per_epoch"] // TINY["batch_size"]
    assert state["epoch"] == TINY["epochs"] and state["step"] == steps
    adam = state["trainer"]["optimizers"]["model"]["state"]
    assert all(int(s["step"]) == steps for s in adam.values())  # the optimiser's moments continued
    metrics = pd.read_csv(killed / "metrics.csv")
    assert metrics["epoch"].tolist() == list(range(1, TINY["epochs"] + 1))
    a, b = checkpoint.load(whole / "model.pt"), checkpoint.load(killed / "model.pt")
    assert a["epoch"] == b["epoch"]
    for k in a["translator"]:
        assert torch.equal(a["translator"][k], b["translator"][k]), k
    wa = checkpoint.load(whole / "train_state" / "last.pt")["trainer"]["model"]
    for k in wa:
        assert torch.equal(wa[k], state["trainer"]["model"][k]), k
    net, meta = checkpoint.load_translator(killed / "model.pt")
    assert meta["model"] == "sardinet_late" and meta["in_channels"] == 3 and not net.training


def test_train_rule_reruns_on_result_parameters_only(built: Path) -> None:
    cfg = small_config()
    cfg["training"] = {"sardinet": {**TINY, "epochs": 1}, "runtime": {"tensorboard": False}}
    (built / "train.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "train_late", "--cores", "2", "--configfile", "train.yaml"], built)
    assert res.returncode == 0, res.stderr[-4000:]
    model = built / "results" / "models" / "sardinet_late" / "seed0" / "model.pt"
    assert model.exists() and "epoch 1/1" in (built / "logs" / "train" / "sardinet_late" / "seed0.log").read_text()

    def planned(training: dict) -> str:
        c = dict(cfg, training=training)
        (built / "dry.yaml").write_text(yaml.safe_dump(c))
        r = run(["snakemake", "-n", "train_late", "--configfile", "dry.yaml"], built)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout + r.stderr

    runtime_only = {**cfg["training"], "runtime": {"tensorboard": True, "compile": True, "device": "cpu"}}
    assert "train_model" not in planned(runtime_only)
    other_family = {**cfg["training"], "pix2pix": {"lr": 0.01}}
    assert "train_model" not in planned(other_family)
    new_lr = {**cfg["training"], "sardinet": {**cfg["training"]["sardinet"], "lr": 5e-4}}
    assert "train_model" in planned(new_lr)


def test_pack_store_chooses_test_patches_with_shadow_first() -> None:
    from benchmarks.pack_store import choose

    index = pd.DataFrame({"patch": range(8), "split": ["test"] * 5 + ["val", "train", "train"],
                          "shadow_fraction": [0.0, 0.02, 0.0, 0.001, 0.5, 0.3, 0.0, 0.0]})
    rows = choose(index, {"test": 3, "val": 1, "train": 5}, seed=0, min_shadow_px=500, patch_px=256)
    assert rows["split"].tolist() == ["test"] * 3 + ["val", "train", "train"]
    assert set(rows["patch"].iloc[:2]) == {1, 4}  # >= 500 of 65536 pixels in shadow; patch 3 has 66
    assert rows["patch"].iloc[2] in {0, 2, 3}


def test_packed_subset_rebuilds_the_store(built: Path, tmp_path: Path) -> None:
    """benchmarks/pack_store.py: a subset carried in size-limited chunks comes back as a store that the loader
    reads, equal to the source but for the stated quantisation of SAR and DEM."""
    from benchmarks import pack_store

    source = built / "results" / "dataset"
    index = pd.read_parquet(source / "index.parquet")
    chunks = tmp_path / "chunks"
    with pytest.raises(SystemExit, match="smaller than one patch"):
        pack_store.main(["pack", "--dataset", str(source), "--out", str(chunks), "--chunk-mib", "0.05"])
    pack_store.main(["pack", "--dataset", str(source), "--out", str(chunks), "--test", "1", "--val", "1",
                     "--train", "100", "--chunk-mib", "0.3", "0.3", "20"])
    written = sorted(chunks.glob("chunk*.npz"))
    assert len(written) >= 2 and all(p.stat().st_size <= 0.3 * 2**20 for p in written[:2])
    subset = tmp_path / "subset"
    pack_store.main(["unpack", "--chunks", *map(str, written), "--out", str(subset)])

    got = pd.read_parquet(subset / "index.parquet")
    have = index["split"].value_counts()
    want = {split: min(n, int(have.get(split, 0))) for split, n in (("test", 1), ("val", 1), ("train", 100))}
    assert got["split"].value_counts().to_dict() == {k: n for k, n in want.items() if n}
    assert want["train"] >= 4
    assert got["patch"].tolist() == list(range(len(got)))
    src = zarr.open_group(str(source / "patches.zarr"), mode="r")
    dst = zarr.open_group(str(subset / "patches.zarr"), mode="r")
    for row in got.itertuples():
        s = int(row.source_patch)
        assert row.split == index.loc[index["patch"] == s, "split"].item()
        sar, sar_src = dst["sar"][row.patch], src["sar"][s]
        assert np.abs(sar - sar_src).max() <= 0.125 + 1e-5
        np.testing.assert_array_equal(sar, pack_store.dequantise_sar(pack_store.quantise_sar(sar_src)))
        assert np.abs(dst["dem"][row.patch] - src["dem"][s]).max() <= 0.5 / pack_store.DEM_LEVELS + 1e-7
        for name in ("optical", "valid", "flags"):
            np.testing.assert_array_equal(dst[name][row.patch], src[name][s])
    train = load_split(subset, "train", SarScaling())
    assert len(train) == want["train"] and train.inputs.shape[1:] == (3, 256, 256)
