"""How well the pipeline's products agree with the simulator's independent truth.

Reads a simulated world (its ``truth/``) and the pipeline's results for it; the truth comes from
the simulator's own forward model (:mod:`pipeline.simulate.radar_truth`), not from the pipeline's
code. ``python -m pipeline.simulate agreement --world DIR --results DIR`` prints the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray

from pipeline.sar.distortion import LAYOVER, SHADOW
from pipeline.simulate.app import TRUTH_INCOMPLETE, TRUTH_OUTSIDE_IMAGE


@dataclass(frozen=True)
class DistortionAgreement:
    """Intersection over union of the pipeline's layover and shadow with the truth's, where the truth
    is complete and the product images the ground; pixel counts of each."""

    layover_iou: float
    shadow_iou: float
    layover_truth_px: int
    layover_pipeline_px: int
    shadow_truth_px: int
    shadow_pipeline_px: int


def iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    """|a & b| / |a | b| (nan when both are empty)."""
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else float("nan")


def distortion_agreement(pipeline_flags: NDArray, truth_flags: NDArray) -> DistortionAgreement:
    """Compare two flag rasters on the same grid (bits of :mod:`pipeline.sar.distortion`); pixels
    whose truth is incomplete (:data:`~pipeline.simulate.app.TRUTH_INCOMPLETE`) or that the product
    does not image (:data:`~pipeline.simulate.app.TRUTH_OUTSIDE_IMAGE`) are left out."""
    valid = (truth_flags & (TRUTH_INCOMPLETE | TRUTH_OUTSIDE_IMAGE)) == 0
    lay_p, lay_t = ((pipeline_flags & LAYOVER) > 0) & valid, ((truth_flags & LAYOVER) > 0) & valid
    sh_p, sh_t = ((pipeline_flags & SHADOW) > 0) & valid, ((truth_flags & SHADOW) > 0) & valid
    return DistortionAgreement(iou(lay_p, lay_t), iou(sh_p, sh_t), int(lay_t.sum()), int(lay_p.sum()),
                               int(sh_t.sum()), int(sh_p.sum()))


def reflector_errors(world_root: Path) -> NDArray[np.float64]:
    """(line, pixel) of the pipeline's geocoding (product reader, orbit from the annotation) minus the
    simulator's truth (analytic orbit), per date and corner reflector: (n, 2) pixels."""
    from pipeline.sar.product import open_product

    truth = json.loads((world_root / "truth" / "world.json").read_text())
    errors = []
    for record in truth["sentinel1"]:
        product = open_product(world_root / "sentinel1" / f"{record['id']}.SAFE")
        for cr, image in zip(truth["reflectors"], record["reflectors"]):
            line, pixel = product.geographic_to_radar(cr["lat_deg"], cr["lon_deg"], cr["height_m"])
            errors.append((float(line) - image["line"], float(pixel) - image["pixel"]))
    return np.array(errors).reshape(-1, 2)


def aoi_window(truth: dict) -> tuple[slice, slice]:
    """(rows, cols) of the AOI grid inside the world grid, from ``truth/world.json``'s grids: the truth
    rasters (world grid) cut to the pipeline's products (AOI grid)."""
    world, aoi = truth["world_grid"], truth["aoi_grid"]
    r0 = int(round((world["top"] - aoi["top"]) / world["resolution"]))
    c0 = int(round((aoi["left"] - world["left"]) / world["resolution"]))
    return slice(r0, r0 + aoi["height"]), slice(c0, c0 + aoi["width"])


def agreement_table(world_root: Path, results: Path) -> str:
    """Markdown table: per scene, layover and shadow IoU on the AOI (the workflow's distortion maps
    against the truth), then the corner reflectors' geocoding RMS over all dates."""
    truth = json.loads((world_root / "truth" / "world.json").read_text())
    window = aoi_window(truth)
    rows = ["| scene | layover IoU | shadow IoU | layover px truth / pipeline | shadow px truth / pipeline |",
            "|---|---:|---:|---:|---:|"]
    for record in truth["sentinel1"]:
        scene = record["id"]
        with rasterio.open(world_root / "truth" / f"{scene}_distortion.tif") as src:
            truth_flags = src.read(1)[window]
        with rasterio.open(results / "distortion" / f"{scene}_flags.tif") as src:
            flags = src.read(1)
        a = distortion_agreement(flags, truth_flags)
        rows.append(f"| {scene[:32]}... | {a.layover_iou:.3f} | {a.shadow_iou:.3f} | "
                    f"{a.layover_truth_px} / {a.layover_pipeline_px} | {a.shadow_truth_px} / {a.shadow_pipeline_px} |")
    e = reflector_errors(world_root)
    rms = np.sqrt(np.mean(e**2, axis=0))
    rows.append("")
    rows.append(f"Corner reflectors ({len(e)} images): geocoding minus truth RMS {rms[0]:.4f} lines, "
                f"{rms[1]:.4f} pixels; largest {np.abs(e).max():.4f} px.")
    return "\n".join(rows)
