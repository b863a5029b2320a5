"""pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017) baselines.

The layer layouts follow the authors' reference PyTorch implementation
(``networks.py`` of pytorch-CycleGAN-and-pix2pix) for ``input_nc = 3``
(VV, VH, DEM) and ``output_nc = 3`` (R, G, B):

- pix2pix: ``unet_256`` generator (8 stride-2 4x4 downsamplings, widths
  64-128-256-512x5, BatchNorm, dropout 0.5 in the three innermost 512 blocks,
  Tanh output) and the 70x70 PatchGAN (``basic``, n_layers=3) that sees
  input and output concatenated (6 channels).
- CycleGAN: ``resnet_9blocks`` generators (InstanceNorm without affine
  parameters, no dropout, Tanh output) and 70x70 PatchGANs on 3 channels.

As in the reference code, a convolution followed by BatchNorm has no bias,
one followed by InstanceNorm (affine off) has one. Outputs are in [-1, 1];
images are scaled to [-1, 1]. Weights are initialised normal(0, 0.02)
(norm layers: weight normal(1, 0.02), bias 0) by :func:`init_weights`,
which the builders call.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

Norm = type[nn.Module] | functools.partial


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The reference 'normal' initialisation: N(0, gain) convs, N(1, gain) norm weights."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _uses_bias(norm_layer: Norm) -> bool:
    base = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return base is nn.InstanceNorm2d


class UnetSkipBlock(nn.Module):
    """One level of the U-Net: down > submodule > up, with the input concatenated (skip)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: Norm = nn.BatchNorm2d,
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = _uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net generator; ``num_downs = 8`` is ``unet_256`` (input 256 x 256 > 1 x 1 bottleneck)."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm_layer: Norm = nn.BatchNorm2d,
        use_dropout: bool = True,
    ):
        super().__init__()
        block = UnetSkipBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = UnetSkipBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = UnetSkipBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = UnetSkipBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    """Reflection-padded conv-norm-ReLU-conv-norm with an identity shortcut."""

    def __init__(self, dim: int, norm_layer: Norm, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """ResNet generator; ``n_blocks = 9`` is ``resnet_9blocks``."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm_layer: Norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
        use_dropout: bool = False,
        n_blocks: int = 9,
    ):
        super().__init__()
        use_bias = _uses_bias(norm_layer)
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        model += [ResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN (``basic``: n_layers = 3 gives 70 x 70 receptive fields); logits, no sigmoid."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: Norm = nn.BatchNorm2d):
        super().__init__()
        use_bias = _uses_bias(norm_layer)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Pix2Pix(nn.Module):
    """Container: ``generator`` (U-Net 256) and ``discriminator`` (PatchGAN on input + output).

    ``forward(x)`` translates: it runs the generator. The discriminator takes
    ``torch.cat([x, y], 1)`` (6 channels). Losses (training rules): vanilla
    GAN (BCE with logits), L1 weight 100, discriminator loss halved.
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3):
        super().__init__()
        self.in_channels, self.out_channels = input_nc, output_nc
        self.generator = init_weights(UnetGenerator(input_nc, output_nc))
        self.discriminator = init_weights(PatchDiscriminator(input_nc + output_nc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)


class CycleGAN(nn.Module):
    """Container: ``generator_ab`` (SAR+DEM > optical), ``generator_ba`` (optical > SAR+DEM),
    ``discriminator_a`` (judges the SAR+DEM domain) and ``discriminator_b`` (optical).

    ``forward(x)`` translates with ``generator_ab``. Losses (training rules):
    LSGAN (MSE), cycle weight 10 each way, identity weight 0.5, image pool 50.
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3):
        super().__init__()
        self.in_channels, self.out_channels = input_nc, output_nc
        instance = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
        self.generator_ab = init_weights(ResnetGenerator(input_nc, output_nc))
        self.generator_ba = init_weights(ResnetGenerator(output_nc, input_nc))
        self.discriminator_a = init_weights(PatchDiscriminator(input_nc, norm_layer=instance))
        self.discriminator_b = init_weights(PatchDiscriminator(output_nc, norm_layer=instance))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator_ab(x)
