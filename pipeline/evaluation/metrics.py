"""Per-image MSE, PSNR and SSIM, globally and per distortion region, with masked optical pixels excluded.

Protocol (printed in the header of every table this package writes):

- Scale: images in [0, 1] (uint8 / 255). MSE is the mean over the region's valid pixels and
  the three channels of the squared error; PSNR = 10 log10(1 / MSE) per image (MSE floored at
  1e-10, i.e. at most 100 dB), then averaged over images.
- SSIM: Wang et al. (2004) with a Gaussian window of 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03,
  data range 1, population (co)variances, per channel and averaged over channels (as
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``). The SSIM map is defined where the whole window
  lies inside the image (5 px borders excluded, as scikit-image's mean), and a pixel counts only
  where its whole window is valid optical (no masked pixel inside it). SSIM of a region = the
  mean of the map over the region's counted pixels.
- Regions from the patch's distortion flags (:func:`pipeline.sar.distortion.evaluation_regions`):
  shadow if any shadow bit, else foreshortening if foreshortening or any layover bit, else
  non-distorted; "global" is every pixel.
- Masked optical pixels (value 0 in the store's ``valid``) are excluded from every metric.
- An image counts for a region only if the region covers at least ``min_pixels`` of its valid
  pixels; otherwise its metrics for that region are NaN (absent, not zero).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from pipeline.sar.flags import REGION_FORESHORTENING, REGION_NON_DISTORTED, REGION_SHADOW, evaluation_regions

REGIONS = ("global", "foreshortening", "shadow", "non_distorted")
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
MSE_FLOOR = 1e-10


def region_masks(flags: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks (B, 1, H, W) of each region from uint8 distortion flags (B, 1, H, W)."""
    regions = torch.from_numpy(evaluation_regions(flags.cpu().numpy())).to(flags.device)
    return {
        "global": torch.ones_like(regions, dtype=torch.bool),
        "foreshortening": regions == REGION_FORESHORTENING,
        "shadow": regions == REGION_SHADOW,
        "non_distorted": regions == REGION_NON_DISTORTED,
    }


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype=torch.float64) -> torch.Tensor:
    """Normalised 2-D Gaussian (size, size)."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, size: int = SSIM_WINDOW,
             sigma: float = SSIM_SIGMA, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """SSIM map averaged over channels, (B, 1, H - size + 1, W - size + 1), computed in float64.

    Parameters
    ----------
    pred, target : Tensor
        (B, C, H, W) on the scale given by ``data_range``.
    """
    x, y = pred.double(), target.double()
    c = x.shape[1]
    w = gaussian_window(size, sigma).to(x.device).expand(c, 1, size, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=1, keepdim=True)


def window_valid(valid: torch.Tensor, size: int = SSIM_WINDOW) -> torch.Tensor:
    """(B, 1, H - size + 1, W - size + 1): True where the whole window is valid."""
    invalid = (~valid).float()
    return F.max_pool2d(invalid, size, stride=1) == 0


def _crop(mask: torch.Tensor, size: int = SSIM_WINDOW) -> torch.Tensor:
    r = size // 2
    return mask[..., r:-r, r:-r]


def psnr_from_mse(mse: float) -> float:
    """PSNR (dB) on [0, 1] images: 10 log10(1 / MSE), MSE floored at 1e-10."""
    return 10.0 * math.log10(1.0 / max(mse, MSE_FLOOR)) if not math.isnan(mse) else math.nan


def image_metrics(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, flags: torch.Tensor,
                  min_pixels: int) -> list[dict[str, float]]:
    """Metrics of each image of a batch in each region.

    Parameters
    ----------
    pred, target : Tensor
        (B, 3, H, W) in [0, 1].
    valid : Tensor
        (B, 1, H, W) bool, valid optical pixels.
    flags : Tensor
        (B, 1, H, W) uint8 distortion bits.
    min_pixels : int
        Least valid region pixels for an image to count in a region.

    Returns
    -------
    list of dict
        One row per (image, region): ``image`` (index in the batch), ``region``, ``pixels``
        (valid pixels of the region), ``mse``, ``psnr``, ``ssim`` (NaN when the image does
        not count for the region).
    """
    sq = ((pred.double() - target.double()) ** 2).mean(dim=1, keepdim=True)
    smap = ssim_map(pred, target)
    ssim_ok = window_valid(valid)
    rows = []
    for name, region in region_masks(flags).items():
        sel = region & valid
        ssim_sel = _crop(region) & ssim_ok
        for b in range(pred.shape[0]):
            n = int(sel[b].sum())
            row = {"image": b, "region": name, "pixels": n, "mse": math.nan, "psnr": math.nan, "ssim": math.nan}
            if n >= max(min_pixels, 1):
                mse = float(sq[b][sel[b]].mean())
                row["mse"], row["psnr"] = mse, psnr_from_mse(mse)
                m = ssim_sel[b]
                if bool(m.any()):
                    row["ssim"] = float(smap[b][m].mean())
            rows.append(row)
    return rows

