"""Training parameters as typed objects, built from the validated configuration in one place.

Defaults live in the configuration schema only (``pipeline/schema/config.schema.yaml``);
``from_config`` takes an already validated ``training`` section.

:class:`TrainParams` holds what changes a trained model (a change retrains);
:class:`RuntimeOptions` what only changes how fast it trains or what it logs (a change
reruns nothing: the workflow passes them as resources, not params).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.errors import UserError
from pipeline.models import REGISTRY
from pipeline.training.trainers import MIN_INPUT_SIZE, SARDINET_FAMILY


def family(model: str) -> str:
    """The configuration section that trains ``model``: 'sardinet' (all four variants), 'pix2pix', 'cyclegan'."""
    if model not in REGISTRY:
        raise UserError(f"unknown model {model!r}; registered: {', '.join(sorted(REGISTRY))}")
    return "sardinet" if model in SARDINET_FAMILY else model


@dataclass(frozen=True)
class TrainParams:
    """Everything that determines a trained model (with the dataset).

    Attributes
    ----------
    model : str
        Registered model name (``pipeline.models.REGISTRY``).
    seed : int
        Seeds weight initialisation, data order, crops, dropout and image pools.
    epochs : int
        Passes of ``samples_per_epoch`` samples.
    batch_size : int
    lr : float
        Adam learning rate (GANs: initial, decayed linearly over the second half).
    crop : int or None
        Side of the random crops (pixels); None: whole patches. Raised to the model's
        minimum input size (pix2pix: 256).
    samples_per_epoch : int or None
        Samples per epoch; None: one per training patch.
    sar_db_range : (float, float)
        dB range mapped to [0, 1] for the SAR channels.
    deterministic : bool
        ``torch.use_deterministic_algorithms`` (bit-exact resume on one device).
    """

    model: str
    seed: int
    epochs: int
    batch_size: int
    lr: float
    crop: int | None
    samples_per_epoch: int | None
    sar_db_range: tuple[float, float]
    deterministic: bool

    @classmethod
    def from_config(cls, model: str, seed: int, training: dict[str, Any]) -> TrainParams:
        """From a validated ``training`` section (see the schema for every key)."""
        section = training[family(model)]
        return cls(
            model=model,
            seed=int(seed),
            epochs=int(section["epochs"]),
            batch_size=int(section["batch_size"]),
            lr=float(section["lr"]),
            crop=None if section["crop"] is None else int(section["crop"]),
            samples_per_epoch=None if section["samples_per_epoch"] is None else int(section["samples_per_epoch"]),
            sar_db_range=(float(training["sar_db_range"][0]), float(training["sar_db_range"][1])),
            deterministic=bool(training["deterministic"]),
        )

    def crop_for(self, patch_size: int) -> int:
        """The crop side used on patches of ``patch_size``."""
        crop = patch_size if self.crop is None else max(self.crop, MIN_INPUT_SIZE[self.model])
        if crop > patch_size:
            raise UserError(f"{self.model} needs inputs of at least {crop} px; the dataset's patches are {patch_size}")
        return crop

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sar_db_range"] = list(self.sar_db_range)
        return d


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run, not what to compute.

    Attributes
    ----------
    device : str
        'auto' (CUDA > MPS > CPU), or a torch device string.
    amp : bool
        bf16 autocast on CUDA (ignored elsewhere).
    compile : bool
        ``torch.compile`` the networks.
    tensorboard : bool
        Write TensorBoard event files when the ``tensorboard`` package is installed.
    threads : int
        CPU threads for torch (0: torch's default).
    """

    device: str = "auto"
    amp: bool = True
    compile: bool = False
    tensorboard: bool = True
    threads: int = 0

    @classmethod
    def from_config(cls, runtime: dict[str, Any], threads: int = 0) -> RuntimeOptions:
        return cls(device=str(runtime["device"]), amp=bool(runtime["amp"]), compile=bool(runtime["compile"]),
                   tensorboard=bool(runtime["tensorboard"]), threads=int(threads))
