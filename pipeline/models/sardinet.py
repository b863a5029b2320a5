"""SARDINet and its DEM fusion variants.

SARDINet (Bralet, Atto, Chanussot, Trouvé, ICIP 2022) is a non-adversarial,
fully convolutional encoder-decoder for SAR-to-optical translation. The
DEM-assisted variants of Bralet et al. (IGARSS 2024) only change the *input
conditioning*; encoder and decoder are shared.

Architecture (input H x W, H and W multiples of 8):

- ``input_conditioning``: to 256 channels at H/2 (see the variants below).
- Encoder: three parallel branches summed, 512 channels at H/8:
  B1 ``Sep(256,396) > MaxPool > 1x1(396,512) > MaxPool``;
  B2 ``1x1(256,396) > ReLU > MaxPool > Sep(396,396) > ReLU > Sep(396,512) > MaxPool``;
  B3 ``Sep(256,396) > ReLU > Sep(396,396) > MaxPool > Sep(396,512) > MaxPool``.
- Decoder: one independent branch per output band, each
  ``3 x [nearest up x2 > Conv5x5 > Conv5x5]`` with widths 512 > 64 > 16 > 1.

Input conditioning variants (bias-free, as the paper's weight counts imply):

=========================  ===============================================  =======
name                       layers                                           weights
=========================  ===============================================  =======
``sardinet`` (SAR only)    Conv3x3(2,96,s2) > ReLU > Conv3x3(96,256) > ReLU 222,912
``sardinet_early``         same on [VV, VH, DEM]: Conv3x3(3,96,s2) ...      223,776
``sardinet_late``          SAR Conv3x3(2,96,s2) > Conv3x3(96,128) and DEM   223,776
                           Conv3x3(1,96,s2) > Conv3x3(96,128), concatenated
``sardinet_intermediate``  BalancedSep(C=3,K_S=8,K_C=12, s2) > ReLU >       9,852
                           BalancedSep(C=96,K_S=4,K_C=64) > ReLU
=========================  ===============================================  =======

Choices where the papers are silent (stated here so users can change them):

- Conditioning convolutions are bias-free (the paper's counts); encoder and
  decoder convolutions carry biases (the ICIP model's 5.29 M parameters
  with biases match this layout with four output bands).
- LeakyReLU(0.01) follows every convolution of the first two decoder
  stages; the last stage is linear up to the output activation.
- Output activation: Sigmoid, targets are reflectances scaled to [0, 1]
  (the authors' later code); ``output_activation=None`` gives the ICIP
  linear output.
- Initialisation: He (Kaiming) normal, fan-in, ReLU gain, biases zero, for every convolution;
  the last convolution of each decoder branch 10 x smaller, so the Sigmoid starts unsaturated.
  PyTorch's default (Kaiming-uniform with a = sqrt(5)) shrinks the activations' variance about
  six-fold per layer: through the 13 layers without normalisation the output's spatial variation
  starts near 1e-4 of its bias, and short trainings learn little more than a constant image.
- Input channel order: VV, VH (dB, normalised), then DEM.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.layers import BalancedSeparableConv2d, SeparableConv2d, conv

CONDITIONING_CHANNELS = 256
ENCODER_WIDTHS = (256, 396, 512)
DECODER_WIDTHS = (512, 64, 16, 1)


class StandardConditioning(nn.Sequential):
    """Conv3x3(C_in, 96, stride 2) > ReLU > Conv3x3(96, ``out``) > ReLU, bias-free."""

    def __init__(self, in_channels: int, out_channels: int = CONDITIONING_CHANNELS):
        super().__init__(
            conv(in_channels, 96, 3, stride=2, bias=False),
            nn.ReLU(inplace=True),
            conv(96, out_channels, 3, bias=False),
            nn.ReLU(inplace=True),
        )


class LateFusionConditioning(nn.Module):
    """Two independent streams (SAR: channels 0-1, DEM: channel 2), 128 maps each, concatenated."""

    def __init__(self, sar_channels: int = 2, dem_channels: int = 1):
        super().__init__()
        self.sar_channels = sar_channels
        half = CONDITIONING_CHANNELS // 2
        self.sar = StandardConditioning(sar_channels, half)
        self.dem = StandardConditioning(dem_channels, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sar, dem = x[:, : self.sar_channels], x[:, self.sar_channels :]
        return torch.cat([self.sar(sar), self.dem(dem)], dim=1)


class IntermediateFusionConditioning(nn.Sequential):
    """Two balanced separable layers on [VV, VH, DEM]: 3 > 96 (stride 2) > 256 maps."""

    def __init__(self, in_channels: int = 3):
        super().__init__(
            BalancedSeparableConv2d(in_channels, 8, 12, stride=2),
            nn.ReLU(inplace=True),
            BalancedSeparableConv2d(96, 4, 64),
            nn.ReLU(inplace=True),
        )


class Encoder(nn.Module):
    """Three parallel branches from 256 channels at H/2, summed to 512 channels at H/8."""

    def __init__(self) -> None:
        super().__init__()
        c0, c1, c2 = ENCODER_WIDTHS
        pool = nn.MaxPool2d(2)
        self.branch1 = nn.Sequential(
            SeparableConv2d(c0, c1), pool, conv(c1, c2, 1), nn.MaxPool2d(2)
        )
        self.branch2 = nn.Sequential(
            conv(c0, c1, 1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            SeparableConv2d(c1, c1),
            nn.ReLU(inplace=True),
            SeparableConv2d(c1, c2),
            nn.MaxPool2d(2),
        )
        self.branch3 = nn.Sequential(
            SeparableConv2d(c0, c1),
            nn.ReLU(inplace=True),
            SeparableConv2d(c1, c1),
            nn.MaxPool2d(2),
            SeparableConv2d(c1, c2),
            nn.MaxPool2d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch1(x) + self.branch2(x) + self.branch3(x)


def decoder_branch() -> nn.Sequential:
    """One output band: 3 x [nearest up x2 > Conv5x5 > Conv5x5], 512 > 64 > 16 > 1."""
    layers: list[nn.Module] = []
    widths = DECODER_WIDTHS
    for stage in range(3):
        c_in, c_out = widths[stage], widths[stage + 1]
        linear = stage == 2
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv(c_in, c_out, 5)]
        if not linear:
            layers.append(nn.LeakyReLU(0.01, inplace=True))
        layers.append(conv(c_out, c_out, 5))
        if not linear:
            layers.append(nn.LeakyReLU(0.01, inplace=True))
    return nn.Sequential(*layers)


def he_init(model: nn.Module, last_gain: float = 0.1) -> nn.Module:
    """He-normal (fan-in, ReLU gain) weights and zero biases for every convolution; the last convolution of
    each decoder branch scaled by ``last_gain``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for branch in getattr(model, "decoder", []):
        last = [m for m in branch if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.mul_(last_gain)
    return model


def fused_decoder_forward(branches: nn.ModuleList, z: torch.Tensor) -> torch.Tensor:
    """All decoder branches at once: the same function as ``cat([branch(z) for branch in branches], 1)``.

    The first convolution of every branch reads the same ``z``: their kernels are stacked into one
    convolution (3 x 64 outputs). Every later convolution reads only its own branch's maps: their
    kernels are stacked into one grouped convolution (``groups`` = number of branches). Upsampling
    and LeakyReLU act per channel. The weights stay the branches' own parameters (concatenated at
    each call, so gradients reach them unchanged); the state dict is that of the branches. On a GPU
    this replaces three passes of narrow convolutions by one pass of wide ones.
    """
    layers = list(zip(*(list(b) for b in branches)))  # per position: that layer of every branch
    n = len(branches)
    y = z
    first = True
    for same in layers:
        layer = same[0]
        if isinstance(layer, nn.Conv2d):
            weight = torch.cat([m.weight for m in same], 0)
            bias = torch.cat([m.bias for m in same], 0) if layer.bias is not None else None
            pad = layer.kernel_size[0] // 2
            if pad:
                y = nn.functional.pad(y, (pad, pad, pad, pad), mode=layer.padding_mode)
            y = nn.functional.conv2d(y, weight, bias, groups=1 if first else n)
            first = False
        else:
            y = layer(y)
    return y


class SARDINet(nn.Module):
    """SARDINet with a pluggable input conditioning.

    Parameters
    ----------
    input_conditioning : nn.Module
        Maps (B, C_in, H, W) to (B, 256, H/2, W/2).
    in_channels : int
        C_in, checked at forward time.
    out_channels : int
        Output bands (3: R, G, B), one decoder branch each.
    output_activation : {"sigmoid", None}
        Sigmoid gives outputs in [0, 1]; None the ICIP linear output.
    """

    def __init__(
        self,
        input_conditioning: nn.Module,
        in_channels: int,
        out_channels: int = 3,
        output_activation: str | None = "sigmoid",
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.input_conditioning = input_conditioning
        self.encoder = Encoder()
        self.decoder = nn.ModuleList(decoder_branch() for _ in range(out_channels))
        if output_activation not in ("sigmoid", None):
            raise ValueError(f"output_activation must be 'sigmoid' or None, not {output_activation!r}")
        self.output_activation = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()
        #: run the per-band decoder branches as one grouped convolution per layer (same result)
        self.fused_decoder = True
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"height and width must be multiples of 8, got {tuple(x.shape[-2:])}")
        z = self.encoder(self.input_conditioning(x))
        if self.fused_decoder:
            y = fused_decoder_forward(self.decoder, z)
        else:
            y = torch.cat([branch(z) for branch in self.decoder], dim=1)
        return self.output_activation(y)


def sardinet(out_channels: int = 3, **kwargs) -> SARDINet:
    """Original SARDINet on SAR only (VV, VH)."""
    return SARDINet(StandardConditioning(2), 2, out_channels, **kwargs)


def sardinet_early(out_channels: int = 3, **kwargs) -> SARDINet:
    """Early fusion SARDINet_E: [VV, VH, DEM] stacked into the standard conditioning."""
    return SARDINet(StandardConditioning(3), 3, out_channels, **kwargs)


def sardinet_late(out_channels: int = 3, **kwargs) -> SARDINet:
    """Late fusion SARDINet_L: separate SAR and DEM streams concatenated."""
    return SARDINet(LateFusionConditioning(2, 1), 3, out_channels, **kwargs)


def sardinet_intermediate(out_channels: int = 3, **kwargs) -> SARDINet:
    """Intermediate fusion SARDINet_I: balanced separable convolutions on [VV, VH, DEM]."""
    return SARDINet(IntermediateFusionConditioning(3), 3, out_channels, **kwargs)
