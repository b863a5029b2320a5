"""The dataset card (Markdown): splits, triplets, skipped scenes."""

from __future__ import annotations

import pandas as pd

from pipeline.dataset.tiling import SPLITS


def dataset_card(index: pd.DataFrame, triplets: list[dict], optical_infos: list[dict], dem_max_m: float,
                 skipped_sar: dict[str, str] | None = None) -> str:
    """The dataset card (Markdown)."""
    lines = ["# Dataset card", "", f"{len(index)} patches of 256 x 256 at 10 m from {index['triplet'].nunique()} "
             f"SAR-DEM-optical triplets; DEM normalised by {dem_max_m:.1f} m.", "", "## Splits", "",
             "| split | patches | shadow | foreshortening | masked optical |", "|---|---|---|---|---|"]
    for name in SPLITS:
        part = index[index["split"] == name]
        lines.append(f"| {name} | {len(part)} | {part['shadow_fraction'].mean():.3f} | "
                     f"{part['foreshortening_fraction'].mean():.3f} | {part['masked_fraction'].mean():.3f} |")
    lines += ["", "## Triplets", "", "| triplet | Sentinel-1 | Sentinel-2 | days apart | patches |", "|---|---|---|---|---|"]
    for t in triplets:
        lines.append(f"| {t['id']} | {t['s1']} | {t['s2']} | {t['days_apart']} | {(index['triplet'] == t['id']).sum()} |")
    skipped = [o for o in optical_infos if o["skipped"]]
    if skipped:
        lines += ["", "## Skipped optical scenes", ""] + [f"- {o['id']}: {o['reason']}" for o in skipped]
    if skipped_sar:
        lines += ["", "## Skipped Sentinel-1 scenes", ""] + [f"- {k}: {v}" for k, v in skipped_sar.items()]
    return "\n".join(lines) + "\n"
