"""Building blocks shared by the SARDINet family.

Conventions: tensors are (batch, channel, y, x); every spatial convolution
uses reflect padding so that borders are not darkened by zeros.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """A convolution with 'same' reflect padding (odd kernels)."""
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        padding_mode="reflect" if kernel_size > 1 else "zeros",
        groups=groups,
        bias=bias,
    )


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 (groups = channels) followed by a 1x1 pointwise conv.

    No activation or normalisation inside the block, as in SARDINet.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__(
            conv(in_channels, in_channels, kernel_size, groups=in_channels),
            conv(in_channels, out_channels, 1),
        )


class BalancedSeparableConv2d(nn.Module):
    """Balanced separable convolution (Bralet et al., IGARSS 2024, Fig. 2).

    A depthwise convolution extracts ``spatial_kernels`` (K_S) feature maps
    per input channel: ``Conv2d(C, C*K_S, k, groups=C)``. Each of the K_S
    groups of C maps is then passed through the *same* pointwise convolution
    with ``channel_kernels`` (K_C) kernels, ``Conv2d(C, K_C, 1)``, and the
    K_S results are concatenated to K_S*K_C output maps. Unlike Xception's
    separable convolution, the pointwise weights are shared across groups,
    which balances the number of spatial and cross-channel weights.

    Weights (bias-free): ``C*K_S*k*k + C*K_C``.

    Parameters
    ----------
    in_channels : int
        C.
    spatial_kernels : int
        K_S, depthwise kernels per input channel.
    channel_kernels : int
        K_C, kernels of the shared pointwise convolution.
    kernel_size : int
        Spatial kernel size k (odd), reflect padding.
    stride : int
        Stride of the depthwise convolution.
    bias : bool
        Whether the two convolutions carry biases (False in the paper's
        weight counts).
    """

    def __init__(
        self,
        in_channels: int,
        spatial_kernels: int,
        channel_kernels: int,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.spatial_kernels = spatial_kernels
        self.channel_kernels = channel_kernels
        self.depthwise = conv(
            in_channels,
            in_channels * spatial_kernels,
            kernel_size,
            stride=stride,
            groups=in_channels,
            bias=bias,
        )
        self.pointwise = nn.Conv2d(in_channels, channel_kernels, 1, bias=bias)

    @property
    def out_channels(self) -> int:
        return self.spatial_kernels * self.channel_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        c, ks = self.in_channels, self.spatial_kernels
        y = self.depthwise(x)  # (B, C*K_S, H, W), channel index = c*K_S + s
        h, w = y.shape[-2:]
        # group s gathers depthwise output s of every input channel
        y = y.reshape(b, c, ks, h, w).transpose(1, 2).reshape(b * ks, c, h, w)
        y = self.pointwise(y)  # shared across the K_S groups
        return y.reshape(b, ks * self.channel_kernels, h, w)
