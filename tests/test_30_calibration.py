"""Layer 3: radiometric LUTs, thermal noise and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.sar.annotation import parse_calibration, parse_noise
from pipeline.sar.calibration import LutVectors, NoiseAzimuthBlock, calibrate, interpolate_lut, noise_power

from .conftest import DATA

REAL_CAL = next((DATA / "s1").glob("calibration-s1a-*.xml"))
REAL_NOISE = next((DATA / "s1").glob("noise-s1a-*.xml"))


def test_lut_interpolation_is_bilinear() -> None:
    """A LUT sampled from a bilinear function f = a + b*line + c*pixel + d*line*pixel is reproduced exactly."""
    f = lambda line, pixel: 3.0 + 0.01 * line + 0.2 * pixel + 1e-4 * line * pixel  # noqa: E731
    lines = np.array([0.0, 100.0, 250.0])
    pixels = (np.array([0.0, 40.0, 80.0, 99.0]),) * 3
    vec = LutVectors(lines, pixels, tuple(f(l, pixels[0]) for l in lines))
    out_l, out_p = np.array([0, 17.5, 100, 180, 250]), np.array([0, 5, 39.5, 80, 99])
    got = interpolate_lut(vec, out_l, out_p)
    np.testing.assert_allclose(got, f(out_l[:, None], out_p[None, :]), rtol=1e-12)
    # clamped outside the vectors
    np.testing.assert_allclose(interpolate_lut(vec, [-5, 300], [0])[:, 0], [f(0, 0), f(250, 0)])


def test_noise_blocks_apply_to_their_rectangle_only() -> None:
    rng = LutVectors(np.array([0.0, 10.0]), (np.array([0.0, 9.0]),) * 2, (np.array([100.0, 100.0]),) * 2)
    left = NoiseAzimuthBlock("IW1", 0, 9, 0, 4, np.array([0.0, 9.0]), np.array([2.0, 2.0]))
    right = NoiseAzimuthBlock("IW2", 0, 4, 5, 9, np.array([0.0, 4.0]), np.array([0.5, 1.5]))
    n = noise_power(rng, (left, right), np.arange(10), np.arange(10))
    assert np.all(n[:, :5] == 200.0)
    np.testing.assert_allclose(n[:5, 5:], 100.0 * np.linspace(0.5, 1.5, 5)[:, None] * np.ones((1, 5)))
    assert np.all(n[5:, 5:] == 100.0)  # lines outside every block keep the range LUT alone


def test_calibrate_clips_noise_dominated_pixels_and_keeps_nodata() -> None:
    dn = np.array([[0, 10, 20]], dtype=np.uint16)
    s0, clipped = calibrate(dn, np.full((1, 3), 10.0), np.full((1, 3), 150.0), floor=1e-5)
    assert np.isnan(s0[0, 0])  # DN 0: no data
    assert s0[0, 1] == pytest.approx(1e-5) and clipped[0, 1]  # 100 - 150 < 0
    assert s0[0, 2] == pytest.approx((400 - 150) / 100) and not clipped[0, 2]
    assert not np.isnan(s0[0, 1:]).any()


def test_compiled_calibration_equals_the_numpy_expression() -> None:
    """calibrate's compiled pass against (DN^2 - noise) / LUT^2 written in NumPy: same bits, same clipped
    mask, NaN where DN = 0; also without noise removal and for a 1-D row."""
    rng = np.random.default_rng(3)
    dn = rng.integers(0, 400, (37, 53)).astype(np.uint16)
    dn[::7, ::5] = 0
    lut = rng.uniform(300.0, 700.0, dn.shape)
    noise = rng.uniform(0.0, 3.0e4, dn.shape)
    for n in (noise, None):
        d = dn.astype(np.float64)
        ref = (d**2 - (n if n is not None else 0.0)) / lut**2
        ref_clipped = ref < 1e-5
        ref = np.where(dn == 0, np.nan, np.where(ref_clipped, 1e-5, ref)).astype(np.float32)
        power, clipped = calibrate(dn, lut, n)
        np.testing.assert_array_equal(power, ref)
        np.testing.assert_array_equal(clipped, ref_clipped & (dn != 0))
        assert (n is None) or clipped.any()
    row, _ = calibrate(dn[3], lut[3], noise[3])
    np.testing.assert_array_equal(row, calibrate(dn, lut, noise)[0][3])


def test_real_calibration_and_noise_files() -> None:
    cal = parse_calibration(REAL_CAL)
    assert cal.polarisation == "VV" and len(cal.sigma_nought.line) == 27
    # the IW GRD relations: beta constant, sigma = beta / sqrt(sin(theta)), gamma = beta / sqrt(tan(theta))
    sigma, beta, gamma = cal.sigma_nought.values[0], cal.beta_nought.values[0], cal.gamma.values[0]
    sin_theta = (beta / sigma) ** 2
    tan_theta = (beta / gamma) ** 2
    theta_from_sin = np.degrees(np.arcsin(sin_theta))
    theta_from_tan = np.degrees(np.arctan(tan_theta))
    assert np.abs(theta_from_sin - theta_from_tan).max() < 0.05
    assert 29 < theta_from_sin.min() < theta_from_sin.max() < 47
    noise = parse_noise(REAL_NOISE)
    assert noise.has_azimuth_vectors and [b.swath for b in noise.azimuth_blocks] == ["IW1", "IW2", "IW3"]
    assert noise.azimuth_blocks[1].first_pixel == 8760
    # real noise: NESZ between -30 and -18 dB across the swath
    lines = np.array([0.0, 5000.0])
    pixels = np.arange(0, 26000, 500)
    nesz = 10 * np.log10(noise_power(noise.range_vectors, noise.azimuth_blocks, lines, pixels)
                         / interpolate_lut(cal.sigma_nought, lines, pixels) ** 2)
    assert -30 < nesz.min() and nesz.max() < -18
