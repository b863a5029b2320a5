"""The bundled models: shapes, weight counts against the papers, the balanced separable conv."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline import models
from pipeline.models.layers import BalancedSeparableConv2d
from pipeline.models.sardinet import SARDINet, StandardConditioning


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # IGARSS 2024: 3*96*9 + 96*256*9 and 2*96*9 + 96*128*9 + 1*96*9 + 96*128*9
        ("sardinet_early", 223_776),
        ("sardinet_late", 223_776),
        # 3*8*9 + 3*12 + 96*4*9 + 96*64
        ("sardinet_intermediate", 9_852),
        # SAR-only original: 2*96*9 + 96*256*9
        ("sardinet", 222_912),
    ],
)
def test_input_conditioning_weight_counts(name: str, expected: int) -> None:
    model = models.build(name)
    assert n_params(model.input_conditioning) == expected


def test_icip_sardinet_size_matches_paper() -> None:
    """ICIP 2022: 4 SAR channels, 4 output bands, biases everywhere: about 5.29 M parameters."""
    cond = nn.Sequential(
        nn.Conv2d(4, 96, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(96, 256, 3, padding=1), nn.ReLU()
    )
    model = SARDINet(cond, 4, out_channels=4, output_activation=None)
    assert round(n_params(model) / 1e6, 2) == 5.29


def test_reference_gan_parameter_counts() -> None:
    """Counts printed by the reference pytorch-CycleGAN-and-pix2pix for input_nc = output_nc = 3.

    pix2pix: G unet_256 54.414 M, D basic (6 input channels) 2.769 M;
    CycleGAN: G resnet_9blocks 11.378 M, D basic (3 channels, instance norm) 2.765 M.
    """
    p2p = models.build("pix2pix")
    assert n_params(p2p.generator) == 54_413_955
    assert n_params(p2p.discriminator) == 2_768_705
    cyc = models.build("cyclegan")
    for g in (cyc.generator_ab, cyc.generator_ba):
        assert n_params(g) == 11_378_179
    for d in (cyc.discriminator_a, cyc.discriminator_b):
        assert n_params(d) == 2_764_737


def test_patchgan_receptive_field_is_70() -> None:
    """Each output logit of the basic PatchGAN depends on a 70 x 70 input window."""
    d = models.build("pix2pix").discriminator.eval()
    x = torch.zeros(1, 6, 128, 128, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1)).sum(dim=1)).flatten()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)).sum(dim=0)).flatten()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


def explicit_balanced_separable(layer: BalancedSeparableConv2d, x: torch.Tensor) -> torch.Tensor:
    """Reference: an explicit loop over the K_S groups, each through the one pointwise kernel."""
    c, ks = layer.in_channels, layer.spatial_kernels
    dw = layer.depthwise(x)
    outputs = []
    for s in range(ks):
        group = dw[:, [ci * ks + s for ci in range(c)]]  # spatial feature s of every channel
        outputs.append(nn.functional.conv2d(group, layer.pointwise.weight, layer.pointwise.bias))
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize(("c", "ks", "kc", "stride"), [(3, 8, 12, 2), (96, 4, 64, 1), (5, 3, 2, 1)])
def test_balanced_separable_equals_explicit_loop(c: int, ks: int, kc: int, stride: int) -> None:
    torch.manual_seed(0)
    layer = BalancedSeparableConv2d(c, ks, kc, stride=stride)
    x = torch.randn(2, c, 16, 16)
    got = layer(x)
    assert got.shape == (2, ks * kc, 16 // stride, 16 // stride)
    torch.testing.assert_close(got, explicit_balanced_separable(layer, x), rtol=1e-5, atol=1e-5)
    assert n_params(layer) == c * ks * 9 + c * kc


def test_balanced_separable_gradient_reaches_shared_weights_from_every_group() -> None:
    torch.manual_seed(0)
    layer = BalancedSeparableConv2d(3, 8, 12)
    x = torch.randn(1, 3, 8, 8)
    y = layer(x)
    for s in range(8):
        layer.zero_grad()
        # only the outputs of group s feed the loss
        y = layer(x)
        y[:, s * 12 : (s + 1) * 12].sum().backward()
        assert layer.pointwise.weight.grad is not None
        assert layer.pointwise.weight.grad.abs().sum() > 0, f"group {s} does not reach the shared weights"
        # and the depthwise kernels of the other groups get nothing
        dw = layer.depthwise.weight.grad.abs().sum(dim=(1, 2, 3)).reshape(3, 8)
        assert torch.all(dw[:, s] > 0)
        assert torch.all(dw[:, [o for o in range(8) if o != s]] == 0)


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_forward_backward_and_output_range(name: str) -> None:
    torch.manual_seed(0)
    model = models.build(name)
    x = torch.randn(2, model.in_channels, 256, 256)
    y = model(x)
    assert y.shape == (2, 3, 256, 256)
    lo, hi = models.OUTPUT_RANGE[name]
    assert float(y.detach().min()) >= lo and float(y.detach().max()) <= hi
    y.abs().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    translator = getattr(model, "generator", getattr(model, "generator_ab", model))
    assert all(p.grad is not None for p in translator.parameters())
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_channels_last_and_bf16_autocast(name: str) -> None:
    torch.manual_seed(0)
    model = models.build(name).eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, model.in_channels, 64 if "sardinet" in name else 256, 64 if "sardinet" in name else 256)
    x = x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x.contiguous())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
    assert y.dtype == torch.bfloat16
    assert torch.isfinite(y.float()).all()
    # bf16 keeps about 3 significant digits
    assert float((y.float() - ref).abs().mean()) < 0.05 * (float(ref.abs().mean()) + 1e-3)


def test_sardinet_late_streams_are_independent() -> None:
    """Late fusion: the DEM only reaches the DEM stream's 128 maps before the concatenation."""
    model = models.build("sardinet_late").eval()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    feats = model.input_conditioning(x)
    feats[:, :128].sum().backward()
    assert float(x.grad[:, 2].abs().sum()) == 0.0
    assert float(x.grad[:, :2].abs().sum()) > 0.0


def test_build_unknown_name_lists_registry() -> None:
    with pytest.raises(ValueError, match="sardinet_late"):
        models.build("unet")


def test_wrong_channel_count_is_a_clear_error() -> None:
    model = models.build("sardinet")
    with pytest.raises(ValueError, match="expected 2 input channels"):
        model(torch.zeros(1, 3, 64, 64))


def test_standard_conditioning_halves_resolution() -> None:
    out = StandardConditioning(3)(torch.zeros(1, 3, 64, 48))
    assert out.shape == (1, 256, 32, 24)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sardinet_intermediate", "pix2pix"])
def test_torch_compile(name: str) -> None:
    torch.manual_seed(0)
    model = models.build(name).eval()
    compiled = torch.compile(model)
    x = torch.randn(1, model.in_channels, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-3)


def test_fused_decoder_equals_the_separate_branches() -> None:
    """One grouped convolution per decoder layer computes exactly what the three branches compute."""
    torch.manual_seed(0)
    model = models.build("sardinet_late").double()
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    grads = []
    outs = []
    for fused in (False, True):
        model.zero_grad()
        model.fused_decoder = fused
        out = model(x)
        (out * torch.linspace(0, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-12)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
