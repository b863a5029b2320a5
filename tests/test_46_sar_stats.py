"""The simulated SAR's statistics (pipeline.simulate.sar_stats): the pure parts against closed forms."""

from __future__ import annotations

import numpy as np

from pipeline.simulate.sar_stats import (
    DB_STEP,
    DEG_STEP,
    ClassAccumulator,
    GroupMoments,
    class_statistics,
    variance_explained,
)


def test_slope_of_a_line_and_of_a_constant() -> None:
    x = np.linspace(20.0, 60.0, 41)
    line = 3.0 - 0.25 * x
    assert np.isclose(class_statistics("line", line, line, x).vv_slope_db_per_deg, -0.25)
    constant_x = class_statistics("one angle", np.arange(5.0), np.arange(5.0), np.full(5, 38.0))
    assert np.isnan(constant_x.vv_slope_db_per_deg)  # no spread in x: no slope


def test_variance_explained_by_groups() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 4, 10_000)
    means = np.array([-20.0, -12.0, -8.0, -3.0])
    assert np.isclose(variance_explained(means[groups], groups), 1.0)  # the groups are everything
    noise = rng.normal(0.0, 1.0, groups.size)
    assert abs(variance_explained(noise, groups)) < 0.002  # unrelated groups explain nothing
    # half and half: the group means' variance equals the within-group variance
    half = means[groups] / means[groups].std() + noise
    assert abs(variance_explained(half, groups) - 0.5) < 0.02


def test_class_statistics_of_a_cosine_power_model() -> None:
    """sigma0 = s_ref (cos theta / cos 38)^n in dB: the fitted slope is the model's derivative at the
    mean angle within the curvature over the fitted range; medians and the VV - VH difference exact."""
    theta = np.linspace(30.0, 46.0, 1601)
    n_vv, n_vh = 2.0, 1.0
    model = lambda s_db, n: s_db + 10 * n * np.log10(np.cos(np.radians(theta)) / np.cos(np.radians(38.0)))
    vv, vh = model(-11.5, n_vv), model(-19.5, n_vh)
    c = class_statistics("meadow", vv, vh, theta, np.abs(theta - 38.0) < 1.0)
    assert c.pixels == theta.size and c.flat_pixels == int((np.abs(theta - 38.0) < 1.0).sum())
    assert abs(c.flat_vv_median_db + 11.5) < 0.01 and abs(c.flat_vh_median_db + 19.5) < 0.01
    assert np.isclose(c.vv_median_db, -11.5, atol=0.01) and np.isclose(c.vh_median_db, -19.5, atol=0.01)
    assert np.isclose(c.vv_minus_vh_median_db, 8.0, atol=0.01)  # the medians' difference at 38 deg
    derivative = -10 * n_vv / np.log(10) * np.tan(np.radians(38.0)) * np.pi / 180  # d(dB)/d(deg) at 38 deg
    assert abs(c.vv_slope_db_per_deg - derivative) < 0.01 and c.vv_slope_db_per_deg < 0
    assert np.isclose(c.vh_slope_db_per_deg / c.vv_slope_db_per_deg, n_vh / n_vv, rtol=0.02)
    assert c.incidence_range_deg[0] < 32.0 and c.incidence_range_deg[1] > 44.0
    empty = class_statistics("none", np.array([]), np.array([]), np.array([]))
    assert empty.pixels == 0 and empty.flat_pixels == 0 and np.isnan(empty.vv_median_db)


def test_statistics_added_scene_by_scene_match_the_pooled_pixels() -> None:
    """A world's pixels do not fit in memory: the accumulators take them a scene at a time. Over three
    uneven chunks (one empty): medians and incidence percentiles within half a histogram step of NumPy's
    on the pooled pixels (odd and even counts), slopes and variance shares equal to the pooled ones."""
    rng = np.random.default_rng(1)
    theta = rng.uniform(15.0, 75.0, 20_001)
    vv = -11.0 - 0.3 * (theta - 38.0) + rng.normal(0.0, 2.5, theta.size)
    vh = vv - 7.0 + rng.normal(0.0, 1.0, theta.size)
    flat = rng.random(theta.size) < 0.3
    for n in (theta.size, theta.size - 1):  # odd and even counts: NumPy's median averages two values
        acc = ClassAccumulator()
        for part in np.split(np.arange(n), [0, 7000]):
            acc.add(vv[part], vh[part], theta[part], flat[part])
        c = acc.statistics("meadow")
        v, h, t, f = vv[:n], vh[:n], theta[:n], flat[:n]
        assert c.pixels == n and c.flat_pixels == int(f.sum())
        for got, exact in ((c.vv_median_db, np.median(v)), (c.vh_median_db, np.median(h)),
                           (c.vv_minus_vh_median_db, np.median(v - h)), (c.flat_vv_median_db, np.median(v[f])),
                           (c.flat_vh_median_db, np.median(h[f]))):
            assert abs(got - exact) <= DB_STEP / 2 + 1e-9
        assert np.allclose(c.incidence_range_deg, np.percentile(t, [5, 95]), atol=DEG_STEP / 2 + 1e-9)
        assert np.isclose(c.vv_slope_db_per_deg, np.polyfit(t, v, 1)[0], rtol=1e-9)
        assert np.isclose(c.vh_slope_db_per_deg, np.polyfit(t, h, 1)[0], rtol=1e-9)
    # two pixels far apart: the median lies between them, as NumPy's, not at either
    two = class_statistics("two", np.array([-12.0, -10.0]), np.array([-20.0, -16.0]), np.array([30.0, 40.0]))
    assert abs(two.vv_median_db + 11.0) <= DB_STEP / 2 and abs(two.vh_median_db + 18.0) <= DB_STEP / 2
    assert np.allclose(two.incidence_range_deg, (30.5, 39.5), atol=DEG_STEP / 2)
    groups = rng.integers(0, 5, theta.size)
    moments = GroupMoments()
    for part in np.split(np.arange(theta.size), [5000, 5000, 12000]):
        moments.add(vv[part], groups[part])
    assert moments.count == theta.size
    assert np.isclose(moments.variance_explained(), variance_explained(vv, groups), rtol=1e-9)
