"""Evaluation parameters as a typed object (defaults in the configuration schema only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ENHANCEMENTS = ("none", "laplacian", "wiener")


@dataclass(frozen=True)
class EvalParams:
    """What determines the evaluation's numbers.

    Attributes
    ----------
    min_region_pixels : int
        Least valid pixels of a region for an image to count in it.
    fid_weights : str
        'packaged', a TorchScript path, or 'none' (see :mod:`pipeline.evaluation.fid`).
    laplacian_strength : float
        Weight of the Laplacian subtracted in sharpening.
    wiener_kernel_size : int
    wiener_sigma : float
        Gaussian kernel of the Wiener deconvolution (the paper: 9 x 9, sigma 29).
    wiener_nsr : float
        Noise-to-signal ratio of the Wiener filter.
    batch_size : int
        Test images per forward pass (does not change results on one device).
    """

    min_region_pixels: int
    fid_weights: str
    laplacian_strength: float
    wiener_kernel_size: int
    wiener_sigma: float
    wiener_nsr: float
    batch_size: int = 8

    @classmethod
    def from_config(cls, evaluation: dict[str, Any]) -> EvalParams:
        return cls(
            min_region_pixels=int(evaluation["min_region_pixels"]),
            fid_weights=str(evaluation["fid_weights"]),
            laplacian_strength=float(evaluation["laplacian_strength"]),
            wiener_kernel_size=int(evaluation["wiener_kernel_size"]),
            wiener_sigma=float(evaluation["wiener_sigma"]),
            wiener_nsr=float(evaluation["wiener_nsr"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
