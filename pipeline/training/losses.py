"""Losses that ignore masked optical pixels (snow, cloud, cloud shadow), and the GAN criteria.

Masked pixels are selected away with ``torch.where`` before any arithmetic, so
neither the loss nor any gradient depends on what the target holds there.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the valid pixels of every channel.

    Parameters
    ----------
    pred, target : Tensor
        (B, C, H, W), same scale.
    valid : Tensor
        (B, 1, H, W) bool, broadcast over channels.

    Returns
    -------
    Tensor
        Scalar: sum over valid pixels and channels of ``|pred - target|`` divided by their
        count (0 when nothing is valid, still differentiable).
    """
    mask = valid.expand_as(pred)
    diff = torch.where(mask, (pred - torch.where(mask, target, pred.detach())).abs(), torch.zeros_like(pred))
    count = mask.sum().clamp(min=1)
    return diff.sum() / count


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """The reference implementation's GAN criteria: 'vanilla' (BCE with logits) or 'lsgan' (MSE)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    raise ValueError(f"unknown GAN mode {mode!r}")
