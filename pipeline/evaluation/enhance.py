"""Contrast enhancement of translations (Bralet et al. 2024, section 4): Laplacian sharpening, Wiener deconvolution.

Both take and return (B, C, H, W) images in [0, 1] (results clipped to [0, 1]).

- Laplacian sharpening: ``x - strength * lap(x)`` with the 4-neighbour Laplacian
  ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (edges replicated).
- Wiener deconvolution with the paper's Gaussian kernel (9 x 9, sigma 29): the paper divides the
  image's Fourier transform by the kernel's; a plain division amplifies noise without bound
  where the kernel's spectrum is near zero, so the Wiener form
  ``X = conj(K) Y / (|K|^2 + nsr)`` is used, with the noise-to-signal ratio ``nsr`` a parameter.
  The kernel is centred on the origin (circular convolution over the image).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def laplacian_sharpen(image: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Sharpen by subtracting ``strength`` times the 4-neighbour Laplacian."""
    c = image.shape[1]
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=image.dtype, device=image.device)
    lap = F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), k.expand(c, 1, 3, 3), groups=c)
    return (image - strength * lap).clamp(0.0, 1.0)


def gaussian_kernel(size: int = 9, sigma: float = 29.0, dtype=torch.float64) -> torch.Tensor:
    """Normalised (size, size) Gaussian."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def kernel_spectrum(kernel: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The 2-D FFT of ``kernel`` zero-padded to (height, width) with its centre at the origin."""
    kh, kw = kernel.shape
    padded = torch.zeros((height, width), dtype=kernel.dtype, device=kernel.device)
    padded[:kh, :kw] = kernel
    padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
    return torch.fft.fft2(padded)


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Circular convolution of every channel with ``kernel`` (the forward model Wiener inverts)."""
    spec = kernel_spectrum(kernel.to(image.device), image.shape[-2], image.shape[-1])
    return torch.fft.ifft2(torch.fft.fft2(image.double()) * spec).real.to(image.dtype)


def wiener_deconvolve(image: torch.Tensor, kernel: torch.Tensor | None = None, nsr: float = 0.01) -> torch.Tensor:
    """Wiener deconvolution of every channel; ``kernel`` defaults to the paper's 9 x 9, sigma 29 Gaussian."""
    kernel = gaussian_kernel() if kernel is None else kernel
    spec = kernel_spectrum(kernel.to(image.device, torch.float64), image.shape[-2], image.shape[-1])
    wiener = spec.conj() / (spec.abs() ** 2 + nsr)
    out = torch.fft.ifft2(torch.fft.fft2(image.double()) * wiener).real
    return out.clamp(0.0, 1.0).to(image.dtype)
