"""The dataset card (Markdown): splits, warnings, registration QA, triplets, skipped scenes, provenance."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from pipeline.dataset.layout import SPLITS

FRACTION_TOLERANCE = 0.05  # a split further than this from its requested fraction is reported


def split_warnings(index: pd.DataFrame, fractions: tuple[float, float, float] | None) -> list[str]:
    """What a user should know before trusting the splits: empty splits, splits without a distortion
    region (per-region evaluation has nothing to measure there), fractions far from the request."""
    out = []
    for k, name in enumerate(SPLITS):
        part = index[index["split"] == name]
        if part.empty:
            out.append(f"the {name} split is empty")
            continue
        for column, region in (("shadow_fraction", "radar shadow"), ("foreshortening_fraction", "foreshortening")):
            if not (part[column] > 0).any():
                out.append(f"the {name} split has no {region} pixel: per-region metrics cannot be measured there")
        if fractions is not None:
            actual = len(part) / len(index)
            if abs(actual - fractions[k]) > FRACTION_TOLERANCE:
                out.append(f"the {name} split holds {100 * actual:.0f}% of the patches, {100 * fractions[k]:.0f}% "
                           "requested (spatial blocks on a small AOI: grow the AOI or use smaller split blocks)")
    return out


def _fmt(x: float, spec: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def registration_lines(index: pd.DataFrame, registration: dict[str, dict], max_shift_px: float | None,
                       flag_sigmas: float | None = None) -> list[str]:
    """Per triplet, each sensor's shift against the DEM's prediction; the distribution over patches."""
    lines = ["## Registration QA", "",
             "Each image against the image its DEM predicts (radar: local incidence; optical: hillshade under the "
             "scene's sun), by cross-correlation on patch-size windows (`pipeline.dataset.registration`). Shifts in "
             "pixels (dx east, dy south); quality is the correlation once aligned.", "",
             "| triplet | SAR dx | SAR dy | SAR quality | optical dx | optical dy | optical quality |",
             "|---|---|---|---|---|---|---|"]
    for triplet, scene in registration.items():
        if not scene:
            continue
        s, o = scene["sar"], scene["optical"]
        lines.append(f"| {triplet} | {_fmt(s['dx_px'])} | {_fmt(s['dy_px'])} | {_fmt(s['quality'])} | "
                     f"{_fmt(o['dx_px'])} | {_fmt(o['dy_px'])} | {_fmt(o['quality'])} |")
    if "sar_dx_px" in index:
        lines += ["", "| per patch, shift magnitude (px) | median | 90th percentile | max |", "|---|---|---|---|"]
        for name in ("sar", "optical"):
            mag = np.hypot(index[f"{name}_dx_px"], index[f"{name}_dy_px"]).dropna()
            if len(mag):
                lines.append(f"| {name} | {_fmt(float(mag.median()))} | {_fmt(float(mag.quantile(0.9)))} | "
                             f"{_fmt(float(mag.max()))} |")
        flagged = int(index["misregistered"].sum()) if "misregistered" in index else 0
        if max_shift_px is not None:
            beyond = f" by more than {flag_sigmas:g} times the estimate's noise" if flag_sigmas else ""
            lines += ["", f"{flagged} patches flagged `misregistered` (shift > {max_shift_px:g} px{beyond})."]
    return lines


def dataset_card(index: pd.DataFrame, triplets: list[dict], optical_infos: list[dict], dem_max_m: float,
                 skipped_sar: dict[str, str] | None = None, fractions: tuple[float, float, float] | None = None,
                 registration: dict[str, dict] | None = None, provenance: dict | None = None,
                 max_shift_px: float | None = None, patch_size: int = 256) -> str:
    """The dataset card (Markdown)."""
    size = patch_size
    res = float((index["right"] - index["left"]).iloc[0]) / patch_size
    lines = ["# Dataset card", "", f"{len(index)} patches of {size} x {size} at {res:g} m from "
             f"{index['triplet'].nunique()} SAR-DEM-optical triplets; DEM normalised by {dem_max_m:.1f} m.", ""]
    warnings = split_warnings(index, fractions)
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    lines += ["## Splits", "", "| split | patches | share | with shadow | with foreshortening | shadow | foreshortening "
              "| masked optical |", "|---|---|---|---|---|---|---|---|"]
    for name in SPLITS:
        part = index[index["split"] == name]
        lines.append(f"| {name} | {len(part)} | {len(part) / len(index):.1%} | {(part['shadow_fraction'] > 0).sum()} | "
                     f"{(part['foreshortening_fraction'] > 0).sum()} | {part['shadow_fraction'].mean():.3f} | "
                     f"{part['foreshortening_fraction'].mean():.3f} | {part['masked_fraction'].mean():.3f} |")
    if registration is not None:
        flag_sigmas = ((provenance or {}).get("configuration") or {}).get("dataset", {}).get("registration_flag_sigmas")
        lines += [""] + registration_lines(index, registration, max_shift_px, flag_sigmas)
    lines += ["", "## Triplets", "", "| triplet | Sentinel-1 | Sentinel-2 | days apart | patches |", "|---|---|---|---|---|"]
    for t in triplets:
        lines.append(f"| {t['id']} | {t['s1']} | {t['s2']} | {t['days_apart']} | {(index['triplet'] == t['id']).sum()} |")
    skipped = [o for o in optical_infos if o["skipped"]]
    if skipped:
        lines += ["", "## Skipped optical scenes", ""] + [f"- {o['id']}: {o['reason']}" for o in skipped]
    if skipped_sar:
        lines += ["", "## Skipped Sentinel-1 scenes", ""] + [f"- {k}: {v}" for k, v in skipped_sar.items()]
    if provenance:
        software = provenance.get("software", {})
        lines += ["", "## Provenance", "",
                  f"sardem {software.get('sardem', '?')} (git {software.get('sardem_git_commit', '?')}); "
                  + ", ".join(f"{k} {v}" for k, v in software.items() if not k.startswith("sardem")) + ".", "",
                  "Parameters (also in the store's attributes, `provenance`):", "", "```json",
                  json.dumps(provenance.get("configuration", {}), indent=1, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"

