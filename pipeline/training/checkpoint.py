"""Checkpoints that continue a run exactly, written atomically; trained-model files for evaluation.

A checkpoint (``train_state/last.pt``) holds the networks, optimisers, schedulers, GAN image
pools, the epoch and step reached, the validation history, the best score, and the RNG
states (Python, NumPy, torch CPU, torch CUDA). The data order of an epoch is drawn from
(seed, epoch) (see :func:`pipeline.training.data.epoch_plan`), so it needs no state.

A model file (``model.pt``) holds the translator's weights (the generator alone for the
GANs), its name and the input/output conventions (SAR dB range, channel order, output range):
everything :func:`load_translator` needs to predict.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.errors import UserError
from pipeline.io.atomic import atomic_path
from pipeline.models import OUTPUT_RANGE, build

MODEL_FORMAT = 1


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` under a temporary name, then rename: a kill never leaves half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint or model file written by this package (trusted: full unpickling)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such model or checkpoint file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc


def model_file(model: str, translator_state: dict[str, torch.Tensor], params: dict[str, Any],
               epoch: int, val_mae: float | None) -> dict[str, Any]:
    """The content of ``model.pt``."""
    return {
        "format": MODEL_FORMAT,
        "model": model,
        "translator": {k: v.detach().cpu().clone() for k, v in translator_state.items()},
        "params": params,
        "inputs": {"channels": ["VV", "VH", "DEM"], "sar_db_range": params["sar_db_range"],
                   "dem": "elevation / dataset maximum (store)"},
        "epoch": epoch,
        "val_masked_mae": val_mae,
    }


def translator_of(container: nn.Module) -> nn.Module:
    """The network that translates inside a registered model (GANs: their generator)."""
    for name in ("generator", "generator_ab"):
        if hasattr(container, name):
            return getattr(container, name)
    return container


def load_translator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained translator of a ``model.pt`` in eval mode, and the file's metadata.

    The metadata adds ``in_channels`` (2: VV, VH; 3: VV, VH, DEM) and ``output_range``
    (the translator's output scale: (0, 1) or (-1, 1)).
    """
    content = load(path)
    if content.get("format") != MODEL_FORMAT or "translator" not in content:
        raise UserError(f"{path}: not a sardem model file (format {content.get('format')!r})")
    container = build(content["model"])
    net = translator_of(container)
    net.load_state_dict(content["translator"])
    meta = {k: v for k, v in content.items() if k != "translator"}
    meta["in_channels"] = int(container.in_channels)
    meta["output_range"] = OUTPUT_RANGE[content["model"]]
    return net.to(device).eval(), meta
