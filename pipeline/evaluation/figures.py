"""Figures of the evaluation (PNG, matplotlib): translations (paper Fig. 4), enhancement (Fig. 3), training curves.

Pure plotting: arrays and tables in, a matplotlib Figure out; the stage saves them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from pipeline.sar.flags import REGION_FORESHORTENING, REGION_SHADOW, evaluation_regions  # noqa: E402

CONTOURS = {"shadow": (REGION_SHADOW, "#00e5ff"), "foreshortening": (REGION_FORESHORTENING, "#ff2bd6")}


def sar_rgb(sar01: np.ndarray) -> np.ndarray:
    """(2, H, W) VV, VH in [0, 1] -> (H, W, 3) [VV, VH, 0]."""
    return np.stack([sar01[0], sar01[1], np.zeros_like(sar01[0])], axis=-1).clip(0, 1)


def _rgb(optical: np.ndarray) -> np.ndarray:
    return np.moveaxis(optical, 0, -1)


def _cell(ax, image: np.ndarray, cmap: str | None, title: str | None, ylabel: str | None) -> None:
    """One image of a panel, without ticks; the column title on the first row, the patch on the first column."""
    ax.imshow(image, cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)


def _contours(ax, flags: np.ndarray) -> None:
    regions = evaluation_regions(flags)
    for code, colour in CONTOURS.values():
        mask = (regions == code).astype(float)
        if mask.any() and not mask.all():
            ax.contour(mask, levels=[0.5], colors=[colour], linewidths=0.8)


def _legend(fig) -> None:
    handles = [Line2D([0], [0], color=c, lw=1.5, label=f"{name} (distortion map)") for name, (_, c) in CONTOURS.items()]
    handles.append(Line2D([0], [0], color="black", lw=0, marker="s", markersize=8, label="masked optical (black)"))
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)


def translation_panel(sar01: np.ndarray, dem: np.ndarray, truth: np.ndarray, flags: np.ndarray,
                      predictions: dict[str, np.ndarray], patch_ids: list[int], title: str):
    """Rows: patches; columns: SAR [VV, VH, 0], DEM, ground truth, each model (with region contours).

    Parameters
    ----------
    sar01 : (N, 2, H, W) in [0, 1]; dem : (N, 1, H, W); truth : (N, 3, H, W) uint8;
    flags : (N, 1, H, W) uint8; predictions : model name -> (N, 3, H, W) uint8.
    """
    n, cols = len(patch_ids), 3 + len(predictions)
    fig, axes = plt.subplots(n, cols, figsize=(2.1 * cols, 2.1 * n + 0.9), squeeze=False)
    for i in range(n):
        panels = [("SAR [VV, VH, 0]", sar_rgb(sar01[i]), None), ("DEM (normalised)", dem[i, 0], "terrain"),
                  ("ground truth", _rgb(truth[i]), None)]
        panels += [(name, _rgb(p[i]), None) for name, p in predictions.items()]
        for j, (label, image, cmap) in enumerate(panels):
            _cell(axes[i, j], image, cmap, label if i == 0 else None, f"patch {patch_ids[i]}" if j == 0 else None)
            if j >= 2:
                _contours(axes[i, j], flags[i, 0])
    fig.suptitle(title, fontsize=10)
    _legend(fig)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig


def enhancement_panel(truth: np.ndarray, variants: dict[str, np.ndarray], patch_ids: list[int], title: str):
    """Rows: patches; columns: ground truth and each variant ((N, 3, H, W) uint8 or [0, 1] floats)."""
    n, cols = len(patch_ids), 1 + len(variants)
    fig, axes = plt.subplots(n, cols, figsize=(2.4 * cols, 2.4 * n + 0.5), squeeze=False)
    for i in range(n):
        for j, (label, image) in enumerate([("ground truth", truth[i])] + [(k, v[i]) for k, v in variants.items()]):
            _cell(axes[i, j], _rgb(image), None, label if i == 0 else None, f"patch {patch_ids[i]}" if j == 0 else None)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def training_curves(metrics: dict[tuple[str, int], pd.DataFrame], title: str):
    """Training loss and validation masked MAE per epoch, one line per model and seed."""
    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.get_cmap("tab10")
    models = sorted({m for m, _ in metrics})
    for (model, seed), df in sorted(metrics.items()):
        c = colours(models.index(model) % 10)
        label = f"{model} seed {seed}"
        ax_train.plot(df["epoch"], df["train_loss"], color=c, label=label, marker=".")
        if df["val_masked_mae"].notna().any():
            ax_val.plot(df["epoch"], df["val_masked_mae"], color=c, label=label, marker=".")
    ax_train.set(xlabel="epoch", ylabel="training loss (masked MAE on [0, 1])", title="training")
    ax_val.set(xlabel="epoch", ylabel="validation masked MAE on [0, 1]", title="validation")
    for ax in (ax_train, ax_val):
        ax.grid(alpha=0.3)
    ax_val.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
