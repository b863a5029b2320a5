"""Statistics of the simulated Sentinel-1 backscatter as the pipeline delivers it.

What a reader compares with published Sentinel-1 values over the Alps: per land-cover class (the
simulator's truth) the medians of sigma0 VV and VH and of VV - VH (dB), over all its pixels and over
flat ground alone (slope below :data:`FLAT_SLOPE_DEG`, where the ellipsoid-referenced sigma0 is the
surface's own, without the foreshortening gain of slopes), and the dependence on the local incidence
angle (least-squares slope of sigma0 in dB on the local incidence angle, dB/deg, slopes included);
then how much of the spread of VV over the AOI the relief explains and how much the land cover does
(the share of variance explained by each grouping's means, an R^2). Pixels in layover or shadow
(the pipeline's flags) are left out of the class rows; snow-covered ground (the simulator's snow
truth) has rows of its own, wet and dry.

``python -m pipeline.simulate sar-stats --world DIR --results DIR`` prints the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray

from pipeline.errors import UserError
from pipeline.sar.flags import LAYOVER, SHADOW
from pipeline.simulate.agreement import aoi_window
from pipeline.simulate.landcover import COVER_NAMES, SNOW_CAN_COVER, Cover

#: local incidence bins (deg) of the relief's share of the variance
INCIDENCE_BIN_DEG = 2.0
#: terrain slope (deg) under which ground counts as flat
FLAT_SLOPE_DEG = 3.0
#: group labels of snow-covered open ground (after the cover classes)
SNOW_GROUPS = {"snow (wet)": len(Cover), "snow (dry)": len(Cover) + 1, "snow": len(Cover) + 2}


@dataclass(frozen=True)
class ClassStatistics:
    """Backscatter of one class: pixel count, medians (dB) over all its pixels and over its flat ones,
    and the slope of sigma0 (dB) on the local incidence angle (dB/deg) with the angles' 5th-95th
    percentile range it was fitted over (deg)."""

    name: str
    pixels: int
    vv_median_db: float
    vh_median_db: float
    vv_minus_vh_median_db: float
    flat_pixels: int
    flat_vv_median_db: float
    flat_vh_median_db: float
    vv_slope_db_per_deg: float
    vh_slope_db_per_deg: float
    incidence_range_deg: tuple[float, float]


def slope_per_unit(x: NDArray, y: NDArray) -> float:
    """Least-squares slope of ``y`` on ``x`` (nan with fewer than 2 distinct ``x``)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.size < 2:
        return float("nan")
    dx = x - x.mean()
    denominator = float((dx * dx).sum())
    return float((dx * (y - y.mean())).sum() / denominator) if denominator > 0 else float("nan")


def _median(x: NDArray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def class_statistics(name: str, vv_db: NDArray, vh_db: NDArray, local_incidence_deg: NDArray,
                     flat: NDArray[np.bool_] | None = None) -> ClassStatistics:
    """:class:`ClassStatistics` of the pixels given (1-D arrays, one value per pixel; ``flat``: which
    are flat ground, default none)."""
    flat = np.zeros(vv_db.shape, bool) if flat is None else np.asarray(flat, bool)
    nan = float("nan")
    low, high = np.percentile(local_incidence_deg, [5, 95]) if vv_db.size else (nan, nan)
    return ClassStatistics(
        name, int(vv_db.size), _median(vv_db), _median(vh_db), _median(vv_db - vh_db),
        int(flat.sum()), _median(vv_db[flat]), _median(vh_db[flat]),
        slope_per_unit(local_incidence_deg, vv_db), slope_per_unit(local_incidence_deg, vh_db),
        (float(low), float(high)),
    )


def variance_explained(values: NDArray, groups: NDArray) -> float:
    """Share of the variance of ``values`` that the means of ``groups`` (integer labels) explain:
    1 - within-group sum of squares / total sum of squares."""
    values = np.asarray(values, np.float64)
    labels, index = np.unique(groups, return_inverse=True)
    counts = np.bincount(index, minlength=labels.size)
    means = np.bincount(index, weights=values, minlength=labels.size) / np.maximum(counts, 1)
    total = float(((values - values.mean()) ** 2).sum())
    within = float(((values - means[index]) ** 2).sum())
    return 1.0 - within / total if total > 0 else float("nan")


@dataclass(frozen=True)
class SarStatistics:
    """The table's content: class rows (snow-free classes, then snow-covered ground wet and dry), the
    variance of VV explained by the land cover (class and snow state) and by the local incidence
    (bins of :data:`INCIDENCE_BIN_DEG`), and the pixels they were computed over."""

    classes: tuple[ClassStatistics, ...]
    vv_r2_land_cover: float
    vv_r2_local_incidence: float
    pixels: int
    scenes: int


def sar_statistics(world_root: Path, results: Path) -> SarStatistics:
    """Pool every scene of a simulated world: the pipeline's terrain-corrected sigma0 (dB), its local
    incidence angles and distortion flags, the simulator's land cover and snow."""
    truth = json.loads((Path(world_root) / "truth" / "world.json").read_text())
    window = aoi_window(truth)
    with rasterio.open(Path(world_root) / "truth" / "landcover.tif") as src:
        cover = src.read(1)[window]
    pooled: dict[str, list[NDArray]] = {k: [] for k in ("vv", "vh", "theta", "slope", "group")}
    for s1, s2 in zip(truth["sentinel1"], truth["sentinel2"]):
        scene = s1["id"]
        with rasterio.open(Path(results) / "sar" / f"{scene}_backscatter.tif") as src:
            vv, vh = src.read().astype(np.float64)
        geometry = Path(results) / "distortion" / f"{scene}_geometry.tif"
        if not geometry.exists():
            raise UserError(f"{geometry}: missing; the distortion geometry layers are written on demand: "
                            "snakemake --cores 8 distortion_geometry_all")
        with rasterio.open(geometry) as src:
            theta, slope = src.read(1).astype(np.float64), src.read(2).astype(np.float64)
        with rasterio.open(Path(results) / "distortion" / f"{scene}_flags.tif") as src:
            flags = src.read(1)
        with rasterio.open(Path(world_root) / "truth" / f"{s2['id']}_snow.tif") as src:
            snow = src.read(1)[window] > 0
        # group: the cover class, or snow (wet / dry as the date's truth records it) on open ground
        group = cover.astype(np.int64)
        wet = s1.get("snow", {}).get("wet")
        snow_group = SNOW_GROUPS["snow" if wet is None else "snow (wet)" if wet else "snow (dry)"]
        group[snow & np.isin(cover, SNOW_CAN_COVER)] = snow_group
        usable = np.isfinite(vv) & np.isfinite(vh) & np.isfinite(theta) & ((flags & (LAYOVER | SHADOW)) == 0)
        for key, value in (("vv", vv), ("vh", vh), ("theta", theta), ("slope", slope), ("group", group)):
            pooled[key].append(value[usable])
    vv, vh, theta, slope, group = (np.concatenate(pooled[k]) for k in ("vv", "vh", "theta", "slope", "group"))
    flat = slope < FLAT_SLOPE_DEG
    names = {**COVER_NAMES, **{label: name for name, label in SNOW_GROUPS.items()}}
    rows = tuple(class_statistics(names[g], vv[group == g], vh[group == g], theta[group == g], flat[group == g])
                 for g in sorted(names) if (group == g).any())
    bins = np.floor(theta / INCIDENCE_BIN_DEG).astype(np.int64)
    return SarStatistics(rows, variance_explained(vv, group), variance_explained(vv, bins), int(vv.size),
                         len(truth["sentinel1"]))


def sar_stats_table(world_root: Path, results: Path) -> str:
    """Markdown: :func:`sar_statistics` of a simulated world and the pipeline's results for it."""
    s = sar_statistics(world_root, results)
    rows = ["| class | pixels | VV median dB | VH median dB | VV - VH median dB | flat pixels | VV flat dB | "
            "VH flat dB | VV slope dB/deg | VH slope dB/deg | local incidence 5-95 % (deg) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in s.classes:
        rows.append(f"| {c.name} | {c.pixels} | {c.vv_median_db:.1f} | {c.vh_median_db:.1f} | "
                    f"{c.vv_minus_vh_median_db:.1f} | {c.flat_pixels} | {c.flat_vv_median_db:.1f} | "
                    f"{c.flat_vh_median_db:.1f} | {c.vv_slope_db_per_deg:+.3f} | {c.vh_slope_db_per_deg:+.3f} | "
                    f"{c.incidence_range_deg[0]:.0f}-{c.incidence_range_deg[1]:.0f} |")
    rows.append("")
    rows.append(f"{s.scenes} scenes, {s.pixels} pixels outside layover and shadow; flat: slope under "
                f"{FLAT_SLOPE_DEG:g} deg. Share of the variance of "
                f"VV (dB) explained by the land cover (class and snow state): {s.vv_r2_land_cover:.2f}; by "
                f"the local incidence angle ({INCIDENCE_BIN_DEG:g} deg bins): {s.vv_r2_local_incidence:.2f}.")
    return "\n".join(rows)
