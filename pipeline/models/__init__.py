"""The bundled image translators and their registry.

``build(name)`` is the one way the training rules create a model. To add a
model, add one module to this package and one entry to :data:`REGISTRY`.

Every model maps (B, C_in, H, W) to (B, 3, H, W) (R, G, B) and exposes
``in_channels`` and ``out_channels``:

========================== ===== ====================================================
name                       C_in  output
========================== ===== ====================================================
``sardinet``               2     [0, 1] (Sigmoid); input VV, VH
``sardinet_early``         3     [0, 1]; input VV, VH, DEM
``sardinet_late``          3     [0, 1]
``sardinet_intermediate``  3     [0, 1]
``pix2pix``                3     [-1, 1] (Tanh); :class:`~.gan.Pix2Pix` container
``cyclegan``               3     [-1, 1] (Tanh); :class:`~.gan.CycleGAN` container
========================== ===== ====================================================
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from pipeline.models.gan import CycleGAN, Pix2Pix
from pipeline.models.layers import BalancedSeparableConv2d
from pipeline.models.sardinet import SARDINet, sardinet, sardinet_early, sardinet_intermediate, sardinet_late

REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "sardinet": sardinet,
    "sardinet_early": sardinet_early,
    "sardinet_late": sardinet_late,
    "sardinet_intermediate": sardinet_intermediate,
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
}

#: Output value range of each model, for scaling targets.
OUTPUT_RANGE: dict[str, tuple[float, float]] = {
    "sardinet": (0.0, 1.0),
    "sardinet_early": (0.0, 1.0),
    "sardinet_late": (0.0, 1.0),
    "sardinet_intermediate": (0.0, 1.0),
    "pix2pix": (-1.0, 1.0),
    "cyclegan": (-1.0, 1.0),
}


def build(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name; ``kwargs`` go to its constructor."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(sorted(REGISTRY))}") from None
    return factory(**kwargs)


__all__ = ["BalancedSeparableConv2d", "CycleGAN", "OUTPUT_RANGE", "Pix2Pix", "REGISTRY", "SARDINet", "build"]
