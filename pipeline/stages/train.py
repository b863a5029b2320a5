"""Stage ``train_model``: one model, one seed, trained on the patch store (rule ``train_model``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.training.loop import fit
from pipeline.training.params import RuntimeOptions, TrainParams

log = logging.getLogger(__name__)


def run(dataset_dir: str | Path, out_dir: str | Path, model: str, seed: int, training: dict[str, Any],
        runtime: RuntimeOptions) -> Path:
    """Train ``model`` with ``seed`` from a validated ``training`` config section; returns ``model.pt``.

    Continues from ``out_dir/train_state/last.pt`` when it holds the same parameters.
    """
    params = TrainParams.from_config(model, seed, training)
    log.info("parameters: %s", params.as_dict())
    log.info("runtime: %s", runtime)
    return fit(dataset_dir, out_dir, params, runtime)
