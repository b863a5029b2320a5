"""Measured run time and peak memory per rule, from the `benchmark:` files of finished workflow runs.

Usage: python benchmarks/resources.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a workflow directory after `snakemake dataset` (its `results/benchmarks/<rule>/*.tsv`, one per
job, written by Snakemake: wall seconds `s`, peak resident memory `max_rss` in MB of the job's process tree).
Prints, per rule and run, the AOI size (Mpx of the 10 m grid), the number of jobs, the longest job and the
largest peak memory; then, where the runs differ in AOI size, a straight line through the largest peaks over
the AOI size (MB = base + slope x Mpx). The workflow's resource requests (`mem_mb`, `runtime` in
workflow/rules/common.smk) are set from this table, with headroom; the README shows it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio


def aoi_mpx(run: Path) -> float:
    with rasterio.open(run / "results" / "dem" / "dem_wgs84.tif") as dem:
        return dem.width * dem.height / 1e6


def rule_table(run: Path) -> pd.DataFrame:
    rows = []
    root = run / "results" / "benchmarks"
    for tsv in sorted(root.rglob("*.tsv")):
        rule = tsv.relative_to(root).parts[0].removesuffix(".tsv")
        bench = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "s": float(bench["s"].max()), "max_rss_mb": float(bench["max_rss"].max())})
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(jobs=("s", "size"), max_s=("s", "max"), max_rss_mb=("max_rss_mb", "max"))
    table.insert(0, "aoi_mpx", aoi_mpx(run))
    return table


def main(runs: list[Path]) -> None:
    tables = [rule_table(run) for run in runs]
    print("| rule | AOI Mpx | jobs | longest job s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    both = pd.concat(tables).reset_index().sort_values(["rule", "aoi_mpx"])
    for _, r in both.iterrows():
        print(f"| {r.rule} | {r.aoi_mpx:.2f} | {r.jobs} | {r.max_s:.1f} | {r.max_rss_mb:.0f} |")
    sizes = both["aoi_mpx"].unique()
    if len(sizes) > 1:
        print("\n| rule | peak RSS MB = base + slope x Mpx | longest s = base + slope x Mpx |")
        print("|---|---|---|")
        for rule, g in both.groupby("rule"):
            if g["aoi_mpx"].nunique() < 2:
                continue
            rss = np.polyfit(g["aoi_mpx"], g["max_rss_mb"], 1)
            sec = np.polyfit(g["aoi_mpx"], g["max_s"], 1)
            print(f"| {rule} | {rss[1]:.0f} + {rss[0]:.0f} x Mpx | {sec[1]:.1f} + {sec[0]:.1f} x Mpx |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main([Path(p) for p in sys.argv[1:]])
