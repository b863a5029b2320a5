"""The training loop: epochs over an in-memory split, a checkpoint after each, resume from the last.

Files under the run's directory ``out_dir`` (``results/models/<model>/seed<k>/``):

- ``train_state/last.pt``: the checkpoint after the last finished epoch (continues exactly);
- ``train_state/best.pt``: the translator with the lowest validation masked MAE so far;
- ``train_state/metrics.csv``: one row per finished epoch, rewritten after each (watch it);
- ``train_state/tensorboard/``: event files, when the ``tensorboard`` package is installed;
- at the end: ``model.pt`` (the best translator, see :mod:`.checkpoint`) and ``metrics.csv``.

A run interrupted at any point and started again with the same parameters continues from
``last.pt``; with other parameters (a different learning rate, say) it starts afresh and says
so in the log. ``train_state/`` is not a declared output of the workflow, so Snakemake leaves
it in place between attempts.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pipeline.io.atomic import atomic_path
from pipeline.training import checkpoint
from pipeline.training.data import SarScaling, SplitTensors, epoch_plan, gather, load_split, place
from pipeline.training.params import RuntimeOptions, TrainParams
from pipeline.training.trainers import Hyper, Trainer, make_trainer

log = logging.getLogger(__name__)

CSV_FIELDS = ("epoch", "step", "train_loss", "val_masked_mae", "lr", "img_per_s", "epoch_s", "time_s")


def pick_device(name: str = "auto") -> torch.device:
    """'auto': CUDA if available, else Apple MPS, else CPU; or the named torch device."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool, device: torch.device) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        if device.type == "cuda":
            import os

            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


@torch.no_grad()
def masked_mae(trainer: Trainer, split: SplitTensors, batch_size: int) -> float | None:
    """Masked MAE of the translator on a split (whole patches, targets in [0, 1]); None if empty."""
    total, count = 0.0, 0
    device = trainer.device
    for first in range(0, len(split), batch_size):
        idx = torch.arange(first, min(first + batch_size, len(split)))
        x, y, v = gather(split, idx, idx, idx, split.size, device)
        pred = trainer.translate(x)
        mask = v.expand_as(pred)
        total += float((pred - y).abs()[mask].sum(dtype=torch.float64))
        count += int(mask.sum())
    return total / count if count else None


def mean_predictor_mae(train: SplitTensors, split: SplitTensors) -> float | None:
    """Masked MAE of predicting every valid pixel as the training split's per-channel mean (a baseline)."""
    mask = train.valid.expand_as(train.optical)
    means = [(train.optical[:, c][mask[:, c]].double() / 255).mean() for c in range(3)]
    total, count = 0.0, 0
    for c in range(3):
        m = split.valid[:, 0]
        vals = split.optical[:, c][m].double() / 255
        total += float((vals - means[c]).abs().sum())
        count += int(vals.numel())
    return total / count if count else None


class _Board:
    """TensorBoard scalars when the package is there; nothing otherwise."""

    def __init__(self, directory: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: no event files (pip install tensorboard)")
            else:
                self.writer = SummaryWriter(str(directory))

    def scalars(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key in ("train_loss", "val_masked_mae", "lr", "img_per_s"):
            if row.get(key) is not None and not (isinstance(row[key], float) and math.isnan(row[key])):
                self.writer.add_scalar(key, row[key], row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_FIELDS})


def fit(dataset_dir: str | Path, out_dir: str | Path, params: TrainParams,
        runtime: RuntimeOptions = RuntimeOptions()) -> Path:
    """Train one model with one seed on ``dataset_dir``; write ``out_dir/model.pt`` and ``metrics.csv``.

    Resumes from ``out_dir/train_state/last.pt`` when it was written with the same parameters.
    Returns the path of ``model.pt``.
    """
    out_dir = Path(out_dir)
    state_dir = out_dir / "train_state"
    state_dir.mkdir(parents=True, exist_ok=True)
    if runtime.threads:
        torch.set_num_threads(runtime.threads)
    device = pick_device(runtime.device)
    seed_everything(params.seed, params.deterministic, device)
    scaling = SarScaling(*params.sar_db_range)
    t0 = time.perf_counter()
    train = load_split(dataset_dir, "train", scaling)
    val = load_split(dataset_dir, "val", scaling)
    crop = params.crop_for(train.size if len(train) else 256)
    samples = params.samples_per_epoch or len(train)
    log.info("model %s, seed %d, device %s%s%s; %d training and %d validation patches of %d px read in %.1f s; "
             "crops of %d px, %d samples an epoch, batch %d, %d epochs, lr %g",
             params.model, params.seed, device, ", bf16 autocast" if runtime.amp and device.type == "cuda" else "",
             ", torch.compile" if runtime.compile else "", len(train), len(val), train.size if len(train) else 0,
             time.perf_counter() - t0, crop, samples, params.batch_size, params.epochs, params.lr)
    train_dev = place(train, device, log.info)
    val_dev = place(val, device, log.info)
    trainer = make_trainer(params.model, Hyper(params.lr, params.epochs, params.seed), device,
                           amp=runtime.amp, compile_model=runtime.compile)

    last_path, best_path = state_dir / "last.pt", state_dir / "best.pt"
    start_epoch, step, history, best = 0, 0, [], math.inf
    if last_path.exists():
        state = checkpoint.load(last_path)
        if state.get("params") == params.as_dict():
            trainer.load_state_dict(state["trainer"])
            checkpoint.set_rng_state(state["rng"])
            start_epoch, step, history, best = state["epoch"], state["step"], state["history"], state["best"]
            log.info("resuming from %s: %d of %d epochs done, step %d, best validation masked MAE %s",
                     last_path, start_epoch, params.epochs, step, f"{best:.4f}" if math.isfinite(best) else "n/a")
        else:
            log.info("%s was written with other parameters: starting afresh", last_path)
    if start_epoch == 0:
        baseline = mean_predictor_mae(train, val)
        if baseline is not None:
            log.info("validation masked MAE of the per-channel mean predictor: %.4f", baseline)

    board = _Board(state_dir / "tensorboard", runtime.tensorboard)
    elapsed = history[-1]["time_s"] if history else 0.0
    for epoch in range(start_epoch, params.epochs):
        plan = epoch_plan(len(train), train.size, crop, samples, params.batch_size, params.seed, epoch)
        t_epoch = time.perf_counter()
        losses = []
        with tqdm(total=len(plan), desc=f"{params.model} seed {params.seed} epoch {epoch + 1}/{params.epochs}",
                  file=sys.stderr, mininterval=5.0, ascii=True) as bar:
            for idx, rows, cols in plan.batches():
                x, y, v = gather(train_dev, idx, rows, cols, crop, device)
                out = trainer.train_step(x, y, v)
                losses.append(out["loss"])
                step += 1
                bar.set_postfix(loss=f"{out['loss']:.4f}", refresh=False)
                bar.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_s = time.perf_counter() - t_epoch
        lr = trainer.lr
        trainer.end_epoch()
        val_mae = masked_mae(trainer, val_dev, params.batch_size)
        epoch_s = time.perf_counter() - t_epoch
        elapsed += epoch_s
        row = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)), "val_masked_mae": val_mae,
               "lr": lr, "img_per_s": samples / train_s, "epoch_s": epoch_s, "time_s": elapsed}
        history.append(row)
        score = val_mae if val_mae is not None else row["train_loss"]
        if score < best:
            best = score
            checkpoint.save(best_path, checkpoint.model_file(params.model, trainer.translator.state_dict(),
                                                             params.as_dict(), epoch + 1, val_mae))
        checkpoint.save(last_path, {"params": params.as_dict(), "trainer": trainer.state_dict(),
                                    "rng": checkpoint.rng_state(), "epoch": epoch + 1, "step": step,
                                    "history": history, "best": best})
        write_csv(state_dir / "metrics.csv", history)
        board.scalars(row)
        log.info("epoch %d/%d: train loss %.4f, validation masked MAE %s, lr %.3g, %.1f img/s, %.1f s",
                 epoch + 1, params.epochs, row["train_loss"], "n/a" if val_mae is None else f"{val_mae:.4f}",
                 lr, row["img_per_s"], epoch_s)
    board.close()
    if not best_path.exists():  # zero epochs requested
        checkpoint.save(best_path, checkpoint.model_file(params.model, trainer.translator.state_dict(),
                                                         params.as_dict(), 0, None))
    model_path = out_dir / "model.pt"
    with atomic_path(model_path) as tmp:
        tmp.write_bytes(best_path.read_bytes())
    write_csv(out_dir / "metrics.csv", history)
    log.info("wrote %s (best validation epoch) and %s", model_path, out_dir / "metrics.csv")
    return model_path
