"""Stages ``evaluate_model`` (one trained model on the test split) and ``evaluation_table`` (Table 1).

``evaluate_model`` writes, under ``<evaluation>/<model>/seed<k>/``:

- ``predictions.zarr``: the translations of every test patch (uint8 R, G, B, like the store's
  ``optical``; array ``patch`` holds the store's patch numbers);
- ``metrics.parquet``: one row per (patch, region, enhancement): valid pixels, MSE, PSNR, SSIM
  (protocol: :mod:`pipeline.evaluation.metrics`);
- ``fid.json``: FID per enhancement against the test split's ground truth, with the number of
  images and the extractor.

``evaluation_table`` aggregates over seeds into ``table1.csv`` / ``table1.md`` and the paired
comparisons ``paired.csv``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pipeline.errors import UserError
from pipeline.evaluation import enhance, fid
from pipeline.evaluation.metrics import REGIONS, image_metrics
from pipeline.evaluation.params import ENHANCEMENTS, EvalParams
from pipeline.io.atomic import atomic_path, write_json_atomic
from pipeline.training.checkpoint import load_translator
from pipeline.training.data import SarScaling, load_split
from pipeline.training.loop import pick_device

log = logging.getLogger(__name__)

PROTOCOL = (
    "Protocol: test split; images on [0, 1] (uint8 / 255); masked optical pixels (snow, cloud, cloud shadow) "
    "excluded from every metric; MSE over valid pixels and channels; PSNR = 10 log10(1 / MSE) per image, then "
    "averaged; SSIM with a Gaussian window 11 x 11, sigma 1.5, K1 0.01, K2 0.03, mean of the map over pixels whose "
    "window is wholly valid; regions from the distortion flags (shadow > foreshortening incl. layover > "
    "non-distorted), an image counting in a region from {min_pixels} valid pixels; mean +- standard deviation over "
    "seeds of the per-seed means over images; SAR inputs: dB mapped from {db_range} to [0, 1]; FID: {fid}."
)


def _enhanced(pred: torch.Tensor, params: EvalParams) -> dict[str, torch.Tensor]:
    kernel = enhance.gaussian_kernel(params.wiener_kernel_size, params.wiener_sigma)
    return {
        "none": pred,
        "laplacian": enhance.laplacian_sharpen(pred, params.laplacian_strength),
        "wiener": enhance.wiener_deconvolve(pred, kernel, params.wiener_nsr),
    }


def evaluate_model(dataset_dir: str | Path, model_pt: str | Path, out_dir: str | Path, params: EvalParams,
                   device_name: str = "auto") -> pd.DataFrame:
    """Predict the test split with one trained model; write predictions, per-image metrics and FID."""
    out_dir = Path(out_dir)
    device = pick_device(device_name)
    net, meta = load_translator(model_pt, device)
    scaling = SarScaling(*meta["params"]["sar_db_range"])
    test = load_split(dataset_dir, "test", scaling)
    if not len(test):
        raise UserError(f"{dataset_dir}: the test split is empty, nothing to evaluate (see the dataset card; "
                        "dataset.split_fractions and split_block_patches decide it)")
    low, high = meta["output_range"]
    log.info("%s (seed %s, epoch %s): %d test patches on %s", meta["model"], meta["params"]["seed"],
             meta["epoch"], len(test), device)
    extractor = None
    if params.fid_weights != "none":
        extractor = fid.load_extractor(params.fid_weights, device)
    predictions = np.zeros(tuple(test.optical.shape), np.uint8)
    rows: list[dict[str, Any]] = []
    feats: dict[str, list[np.ndarray]] = {k: [] for k in ("truth", *ENHANCEMENTS)}
    with torch.no_grad():
        for first in range(0, len(test), params.batch_size):
            sl = slice(first, first + params.batch_size)
            x = test.inputs[sl].to(device)
            y = test.optical[sl].to(device).double() / 255.0
            v, flags = test.valid[sl].to(device), test.flags[sl].to(device)
            out = net(x[:, : meta["in_channels"]]).float()
            pred = ((out - low) / (high - low)).clamp(0.0, 1.0).double()
            predictions[sl] = (pred * 255.0).round().byte().cpu().numpy()
            for name, image in _enhanced(pred, params).items():
                for row in image_metrics(image, y, v, flags, params.min_region_pixels):
                    row.update(patch=int(test.patch[first + row.pop("image")]), enhancement=name)
                    rows.append(row)
                if extractor is not None:  # whole images, the ground truth's masked pixels zeroed in both
                    feats[name].append(fid.features(extractor, torch.where(v, image, 0.0)))
            if extractor is not None:
                feats["truth"].append(fid.features(extractor, y))
    table = pd.DataFrame(rows)
    table.insert(0, "model", meta["model"])
    table.insert(1, "seed", int(meta["params"]["seed"]))
    fids: dict[str, Any] = {"images": len(test), "extractor": fid.DESCRIPTION if extractor is not None else "none"}
    for name in ENHANCEMENTS:
        fids[name] = (fid.frechet_distance(np.concatenate(feats[name]), np.concatenate(feats["truth"]))
                      if extractor is not None and len(test) else None)
    import zarr

    with atomic_path(out_dir / "predictions.zarr") as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        arr = root.create_array("optical", shape=predictions.shape, dtype="uint8",
                                chunks=(1,) + predictions.shape[1:], dimension_names=("patch", "channel", "y", "x"))
        arr[:] = predictions
        root.create_array("patch", shape=(len(test),), dtype="int64")[:] = test.patch.astype(np.int64)
        root.attrs.update({"model": meta["model"], "seed": int(meta["params"]["seed"]), "channels": ["red", "green", "blue"]})
    with atomic_path(out_dir / "metrics.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    write_json_atomic(out_dir / "fid.json", fids)
    glob = table[(table.region == "global") & (table.enhancement == "none")]
    log.info("test: MSE %.4f, PSNR %.2f dB, SSIM %.4f over %d images; FID %s (%d images)", glob.mse.mean(),
             glob.psnr.mean(), glob.ssim.mean(), glob.mse.notna().sum(), fids["none"], len(test))
    return table


def _mean_std(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna()
    if v.empty:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v))


def aggregate(metric_files: list[str | Path], fid_files: list[str | Path], params: EvalParams,
              db_range: list[float]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Table 1 (long form), the paired comparisons, and the Markdown table.

    Per model, enhancement, region and metric: the mean over test images per seed, then mean and
    standard deviation over seeds (``n_seeds``; ``n_images`` counted images per seed, mean).
    """
    per_image = pd.concat([pd.read_parquet(p) for p in metric_files], ignore_index=True)
    fids = []
    for p in fid_files:
        d = json.loads(Path(p).read_text())
        model, seed = Path(p).parent.parent.name, int(Path(p).parent.name.removeprefix("seed"))
        for name in ENHANCEMENTS:
            fids.append({"model": model, "seed": seed, "enhancement": name, "fid": d.get(name),
                         "images": d["images"], "extractor": d["extractor"]})
    fid_table = pd.DataFrame(fids)
    rows = []
    per_seed = (per_image.groupby(["model", "enhancement", "region", "seed"])
                .agg(mse=("mse", "mean"), psnr=("psnr", "mean"), ssim=("ssim", "mean"),
                     n_images=("mse", lambda s: int(s.notna().sum()))).reset_index())
    for (model, enh, region), g in per_seed.groupby(["model", "enhancement", "region"]):
        for metric in ("mse", "psnr", "ssim"):
            mean, std, n = _mean_std(g[metric])
            rows.append({"model": model, "enhancement": enh, "region": region, "metric": metric, "mean": mean,
                         "std": std, "n_seeds": n, "n_images": float(g["n_images"].mean())})
    for (model, enh), g in fid_table.groupby(["model", "enhancement"]):
        mean, std, n = _mean_std(pd.to_numeric(g["fid"], errors="coerce"))
        rows.append({"model": model, "enhancement": enh, "region": "global", "metric": "fid", "mean": mean,
                     "std": std, "n_seeds": n, "n_images": float(g["images"].mean())})
    table = pd.DataFrame(rows)
    paired = paired_differences(per_image)
    extractor = fid_table["extractor"].iloc[0] if len(fid_table) else "none"
    fid_note = ("not computed (evaluation.fid_weights: none)" if extractor == "none" else
                f"{extractor}; whole test images, the ground truth's masked pixels zeroed in both sets")
    header = PROTOCOL.format(min_pixels=params.min_region_pixels, db_range=list(db_range), fid=fid_note)
    return table, paired, markdown_table(table, paired, header)


def paired_differences(per_image: pd.DataFrame, model: str = "sardinet_late", reference: str = "sardinet") -> pd.DataFrame:
    """Per region, the mean over shared test images of ``model - reference`` (MSE, SSIM, PSNR) per seed, then
    the mean over seeds with a 95 % t confidence interval (None with one seed)."""
    from scipy import stats

    rows = []
    base = per_image[per_image.enhancement == "none"]
    a, b = base[base.model == model], base[base.model == reference]
    if a.empty or b.empty:
        return pd.DataFrame(columns=["model", "reference", "region", "metric", "mean_difference", "ci95_low",
                                     "ci95_high", "n_seeds", "n_images"])
    merged = a.merge(b, on=["seed", "patch", "region"], suffixes=("_m", "_r"))
    for region in REGIONS:
        part = merged[merged.region == region]
        for metric in ("mse", "ssim", "psnr"):
            d = (part[f"{metric}_m"] - part[f"{metric}_r"]).groupby(part["seed"]).mean().dropna()
            n = len(d)
            mean = float(d.mean()) if n else math.nan
            lo = hi = math.nan
            if n > 1:
                half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
                lo, hi = mean - half, mean + half
            rows.append({"model": model, "reference": reference, "region": region, "metric": metric,
                         "mean_difference": mean, "ci95_low": lo, "ci95_high": hi, "n_seeds": n,
                         "n_images": int((part[f"{metric}_m"] - part[f"{metric}_r"]).notna().sum() / max(n, 1))})
    return pd.DataFrame(rows)


#: Row order and display names of Table 1.
DISPLAY = {"cyclegan": "CycleGAN", "pix2pix": "Pix2Pix", "sardinet": "SARDINet", "sardinet_late": "SARDINet_L",
           "sardinet_early": "SARDINet_E", "sardinet_intermediate": "SARDINet_I"}

PAPER = [  # Bralet et al. (2024), Table 1, on their data and protocol (not comparable in scale; see README)
    ("CycleGAN", "8.67 ± 2.10", "61.11 ± 4.49", "27.99", "10.67", "15.33", "14.22"),
    ("Pix2Pix", "8.19 ± 1.27", "59.14 ± 1.46", "28.03", "21.71", "12.27", "8.05"),
    ("SARDINet", "2.91 ± 0.06", "74.44 ± 0.07", "28.58", "38.73", "6.16", "3.41"),
    ("SARDINet_L", "2.82 ± 0.06", "74.48 ± 0.07", "28.59", "38.94", "5.85", "3.20"),
    ("SARDINet_E", "2.81 ± 0.04", "74.47 ± 0.02", "28.59", "39.10", "5.80", "3.20"),
    ("SARDINet_I", "2.99 ± 0.04", "74.26 ± 0.06", "28.55", "34.01", "6.18", "3.40"),
]


def _cell(table: pd.DataFrame, model: str, enh: str, region: str, metric: str, scale: float = 1.0,
          digits: int = 2) -> str:
    row = table[(table.model == model) & (table.enhancement == enh) & (table.region == region)
                & (table.metric == metric)]
    if row.empty or row["n_seeds"].iloc[0] == 0 or math.isnan(row["mean"].iloc[0]):
        return "absent" if metric != "fid" else "n/a"
    mean, std, n = row["mean"].iloc[0] * scale, row["std"].iloc[0] * scale, row["n_seeds"].iloc[0]
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if n > 1 else "")


def markdown_table(table: pd.DataFrame, paired: pd.DataFrame, header: str) -> str:
    """Table 1 in Markdown: the paper's columns plus every region, the enhancement rows, paired differences."""
    models = [m for m in DISPLAY if m in set(table.model)]
    n_images = table[(table.metric == "mse") & (table.region == "global")]["n_images"].max()
    n_seeds = int(table["n_seeds"].max()) if len(table) else 0
    fid_images = table[table.metric == "fid"]["n_images"].max()
    lines = ["# Table 1: SAR-to-optical translation on the test split", "", header, "",
             f"Seeds per model: up to {n_seeds}; test images: {n_images:.0f} (FID over {fid_images:.0f} images: "
             "far too few for a stable 2048-d estimate, compare FIDs only within this table). 'absent': no test "
             "image has that region above the pixel threshold.", ""]
    cols = ["MSE·1e-2 global", "SSIM·1e-2 global", "PSNR global (dB)", "FID"]
    for region in REGIONS[1:]:
        cols += [f"MSE·1e-2 {region}", f"SSIM·1e-2 {region}", f"PSNR {region}"]
    lines += ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for enh in ENHANCEMENTS:
        for m in models:
            if table[(table.model == m) & (table.enhancement == enh)].empty:
                continue
            name = DISPLAY[m] + ("" if enh == "none" else f" + {enh}")
            cells = [_cell(table, m, enh, "global", "mse", 100), _cell(table, m, enh, "global", "ssim", 100),
                     _cell(table, m, enh, "global", "psnr"), _cell(table, m, enh, "global", "fid")]
            for region in REGIONS[1:]:
                cells += [_cell(table, m, enh, region, "mse", 100), _cell(table, m, enh, region, "ssim", 100),
                          _cell(table, m, enh, region, "psnr")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if len(paired):
        lines += ["", "## Paired difference SARDINet_L - SARDINet (same test images)", "",
                  "Mean over seeds of the per-seed mean difference over shared images; 95 % t interval over seeds.", "",
                  "| region | metric | difference | 95 % CI | seeds | images |", "|---|---|---|---|---|---|"]
        for r in paired.itertuples():
            if r.n_seeds == 0:
                lines.append(f"| {r.region} | {r.metric} | absent | | 0 | 0 |")
                continue
            ci = "n/a (1 seed)" if math.isnan(r.ci95_low) else f"[{r.ci95_low:.5f}, {r.ci95_high:.5f}]"
            lines.append(f"| {r.region} | {r.metric} | {r.mean_difference:.5f} | {ci} | {r.n_seeds} | {r.n_images} |")
    lines += ["", "## For comparison only: the paper's Table 1 (Bralet et al. 2024; their data, undefined scale)", "",
              "| model | MSE·1e-2 global | SSIM·1e-2 global | PSNR global | FID | MSE·1e-2 shadow | MSE·1e-2 foreshortening |",
              "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in PAPER]
    return "\n".join(lines) + "\n"


def write_table(metric_files: list[str | Path], fid_files: list[str | Path], params: EvalParams,
                db_range: list[float], out_csv: str | Path, out_md: str | Path, out_paired: str | Path) -> None:
    table, paired, md = aggregate(metric_files, fid_files, params, db_range)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_paired) as tmp:
        paired.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text(md)
    log.info("Table 1: %d models, %d rows; written to %s", table.model.nunique(), len(table), out_md)


def _read_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    import zarr

    root = zarr.open_group(str(path), mode="r")
    return root["optical"][:], root["patch"][:], dict(root.attrs)


def choose_patches(dataset_dir: str | Path, count: int) -> list[int]:
    """The test patches with the largest shadow + foreshortening fractions (the distortions the paper is about)."""
    from pipeline.training.data import read_index

    index = read_index(dataset_dir)
    test = index[index["split"] == "test"].copy()
    test["distorted"] = test["shadow_fraction"] + test["foreshortening_fraction"]
    return sorted(test.sort_values(["distorted", "patch"], ascending=[False, True])["patch"].head(count).tolist())


def write_figures(dataset_dir: str | Path, prediction_dirs: list[str | Path], metric_csvs: list[str | Path],
                  params: EvalParams, db_range: list[float], count: int, out_translations: str | Path,
                  out_enhancement: str | Path, out_curves: str | Path) -> None:
    """Fig. 4-style translations, Fig. 3-style enhancement and the training curves, as PNGs."""
    from pipeline.evaluation import figures

    test = load_split(dataset_dir, "test", SarScaling(*db_range))
    wanted = choose_patches(dataset_dir, count)
    rows = [int(np.flatnonzero(test.patch == p)[0]) for p in wanted]
    by_model: dict[str, np.ndarray] = {}
    for path in prediction_dirs:  # first seed of each model, in Table 1's order
        optical, patches, attrs = _read_predictions(path)
        if attrs["model"] in by_model or not len(patches):
            continue
        lookup = {int(p): k for k, p in enumerate(patches)}
        by_model[attrs["model"]] = optical[[lookup[p] for p in wanted]]
    by_model = {DISPLAY.get(m, m): by_model[m] for m in DISPLAY if m in by_model}
    truth = test.optical[rows].numpy()
    fig = figures.translation_panel(test.inputs[rows, :2].numpy(), test.inputs[rows, 2:].numpy(), truth,
                                    test.flags[rows].numpy(), by_model, wanted,
                                    "Test patches with the most shadow and foreshortening: SAR, DEM, ground truth, translations")
    _save(fig, out_translations)
    name = "SARDINet_L" if "SARDINet_L" in by_model else next(iter(by_model), None)
    variants: dict[str, np.ndarray] = {}
    if name is not None:
        pred = torch.from_numpy(by_model[name]).double() / 255.0
        for key, image in _enhanced(pred, params).items():
            label = {"none": name, "laplacian": f"{name} + Laplacian", "wiener": f"{name} + Wiener"}[key]
            variants[label] = (image * 255).round().byte().numpy()
    fig = figures.enhancement_panel(truth, variants, wanted,
                                    f"Contrast enhancement (Laplacian strength {params.laplacian_strength}; Wiener "
                                    f"{params.wiener_kernel_size} x {params.wiener_kernel_size}, sigma "
                                    f"{params.wiener_sigma:g}, NSR {params.wiener_nsr:g})")
    _save(fig, out_enhancement)
    curves = {}
    for path in metric_csvs:
        p = Path(path)
        curves[(p.parent.parent.name, int(p.parent.name.removeprefix("seed")))] = pd.read_csv(p)
    _save(figures.training_curves(curves, "Training curves (one line per model and seed)"), out_curves)


def _save(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_report_inputs(card: str | Path, config: dict[str, Any], out_card: str | Path, out_config: str | Path) -> None:
    """Copy the dataset card and write the effective configuration as YAML, for the Snakemake report."""
    import yaml

    card = Path(card)
    if not card.exists():
        raise UserError(f"{card}: no dataset card")
    with atomic_path(out_card) as tmp:
        tmp.write_text(card.read_text())
    with atomic_path(out_config) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
