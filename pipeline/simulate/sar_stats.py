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

Scenes are read one at a time and reduced to histograms and sums (:class:`ClassAccumulator`,
:class:`GroupMoments`), so memory does not grow with the number of scenes: medians and incidence
percentiles are within half a histogram step (:data:`DB_STEP` dB, :data:`DEG_STEP` deg) of the exact
ones, slopes and variance shares exact.

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


#: histogram steps and spans of the medians (dB) and of the incidence percentiles (deg): a large world's
#: pooled pixels do not fit in memory (the bench world's 32 scenes, ~0.5 G pixels), their histograms do; a
#: median is then within half a step of the exact one
DB_STEP, DB_SPAN = 0.01, (-80.0, 40.0)
DEG_STEP, DEG_SPAN = 0.1, (0.0, 180.0)


def _histogram(values: NDArray, span: tuple[float, float], step: float) -> NDArray[np.int64]:
    """Counts of ``values`` in bins of ``step`` over ``span`` (values outside it in the edge bins)."""
    n = round((span[1] - span[0]) / step)
    bins = np.clip(np.floor((np.asarray(values, np.float64) - span[0]) / step), 0, n - 1).astype(np.int64)
    return np.bincount(bins, minlength=n)


def _quantile(hist: NDArray[np.int64], span: tuple[float, float], step: float, q: float) -> float:
    """The ``q`` quantile of a histogram's values as :func:`numpy.quantile` interpolates it (linearly between
    the two order statistics around rank ``q`` (n - 1)), each order statistic taken at its bin's centre: within
    half a step of the exact quantile (nan when empty)."""
    total = int(hist.sum())
    if total == 0:
        return float("nan")
    rank = q * (total - 1)
    low, high = int(np.floor(rank)), int(np.ceil(rank))
    # the bin of the k-th order statistic (from 0): the first whose cumulative count exceeds k
    bins = np.searchsorted(np.cumsum(hist), [low + 1, high + 1])
    v_low, v_high = span[0] + (bins + 0.5) * step
    return float(v_low + (rank - low) * (v_high - v_low))


def _slope(n: float, sx: float, sxx: float, sy: float, sxy: float) -> float:
    """Least-squares slope from the sums of x, x^2, y and x*y over ``n`` points (nan when x does not vary)."""
    if n < 2:
        return float("nan")
    denominator = sxx - sx * sx / n
    return (sxy - sx * sy / n) / denominator if denominator > 1e-12 * max(sxx, 1.0) else float("nan")


class ClassAccumulator:
    """One class's pixels, added scene after scene, reduced to what :class:`ClassStatistics` needs: histograms
    for the medians (:data:`DB_STEP`) and the incidence percentiles (:data:`DEG_STEP`), sums for the slopes
    (exact)."""

    #: incidence angles are summed as (angle - this), deg, for the sums' precision
    THETA_SHIFT_DEG = 40.0

    def __init__(self) -> None:
        self.db_hist = {k: _histogram(np.empty(0), DB_SPAN, DB_STEP) for k in ("vv", "vh", "diff", "flat_vv",
                                                                               "flat_vh")}
        self.theta_hist = _histogram(np.empty(0), DEG_SPAN, DEG_STEP)
        self.sums = np.zeros(6)  # x, x^2, VV, x VV, VH, x VH (x: shifted incidence)
        self.pixels = 0
        self.flat_pixels = 0

    def add(self, vv_db: NDArray, vh_db: NDArray, local_incidence_deg: NDArray,
            flat: NDArray[np.bool_] | None = None) -> None:
        """Add pixels (1-D arrays, one value per pixel; ``flat``: which are flat ground, default none)."""
        vv = np.asarray(vv_db, np.float64)
        vh = np.asarray(vh_db, np.float64)
        flat = np.zeros(vv.shape, bool) if flat is None else np.asarray(flat, bool)
        for key, values in (("vv", vv), ("vh", vh), ("diff", vv - vh), ("flat_vv", vv[flat]),
                            ("flat_vh", vh[flat])):
            self.db_hist[key] += _histogram(values, DB_SPAN, DB_STEP)
        self.theta_hist += _histogram(local_incidence_deg, DEG_SPAN, DEG_STEP)
        x = np.asarray(local_incidence_deg, np.float64) - self.THETA_SHIFT_DEG
        self.sums += [x.sum(), (x * x).sum(), vv.sum(), (x * vv).sum(), vh.sum(), (x * vh).sum()]
        self.pixels += int(vv.size)
        self.flat_pixels += int(flat.sum())

    def statistics(self, name: str) -> ClassStatistics:
        """The class's :class:`ClassStatistics` from what was added (nan medians and slopes when empty)."""
        sx, sxx, svv, sxvv, svh, sxvh = self.sums
        n = self.pixels

        def median(key: str) -> float:
            return _quantile(self.db_hist[key], DB_SPAN, DB_STEP, 0.5)

        low, high = (_quantile(self.theta_hist, DEG_SPAN, DEG_STEP, q) for q in (0.05, 0.95))
        return ClassStatistics(
            name, n, median("vv"), median("vh"), median("diff"), self.flat_pixels, median("flat_vv"),
            median("flat_vh"), _slope(n, sx, sxx, svv, sxvv), _slope(n, sx, sxx, svh, sxvh), (low, high),
        )


def class_statistics(name: str, vv_db: NDArray, vh_db: NDArray, local_incidence_deg: NDArray,
                     flat: NDArray[np.bool_] | None = None) -> ClassStatistics:
    """:class:`ClassStatistics` of the pixels given (1-D arrays, one value per pixel; ``flat``: which
    are flat ground, default none)."""
    acc = ClassAccumulator()
    acc.add(vv_db, vh_db, local_incidence_deg, flat)
    return acc.statistics(name)


class GroupMoments:
    """Count, sum and sum of squares of values per non-negative integer label, added scene after scene: the
    share of the variance that the labels' means explain."""

    def __init__(self) -> None:
        self.moments = np.zeros((3, 0))

    def add(self, values: NDArray, labels: NDArray) -> None:
        values = np.asarray(values, np.float64)
        labels = np.asarray(labels, np.int64)
        size = max(self.moments.shape[1], int(labels.max()) + 1 if labels.size else 0)
        self.moments = np.pad(self.moments, ((0, 0), (0, size - self.moments.shape[1])))
        self.moments += [np.bincount(labels, minlength=size), np.bincount(labels, values, size),
                         np.bincount(labels, values * values, size)]

    @property
    def count(self) -> int:
        return int(self.moments[0].sum())

    def variance_explained(self) -> float:
        """1 - within-label sum of squares / total sum of squares (nan when the values do not vary)."""
        n, s, ss = self.moments
        total = ss.sum() - s.sum() ** 2 / max(n.sum(), 1)
        seen = n > 0
        within = (ss[seen] - s[seen] ** 2 / n[seen]).sum()
        return 1.0 - within / total if total > 1e-12 * max(ss.sum(), 1.0) else float("nan")


def variance_explained(values: NDArray, groups: NDArray) -> float:
    """Share of the variance of ``values`` that the means of ``groups`` (integer labels) explain:
    1 - within-group sum of squares / total sum of squares."""
    moments = GroupMoments()
    moments.add(values, np.unique(groups, return_inverse=True)[1].ravel())
    return moments.variance_explained()


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
    names = {**COVER_NAMES, **{label: name for name, label in SNOW_GROUPS.items()}}
    classes = {g: ClassAccumulator() for g in names}
    by_cover, by_incidence = GroupMoments(), GroupMoments()
    for s1, s2 in zip(truth["sentinel1"], truth["sentinel2"]):
        scene = s1["id"]
        with rasterio.open(Path(results) / "sar" / f"{scene}_backscatter.tif") as src:
            vv, vh = src.read()
        geometry = Path(results) / "distortion" / f"{scene}_geometry.tif"
        if not geometry.exists():
            raise UserError(f"{geometry}: missing; the distortion geometry layers are written on demand: "
                            "snakemake --cores 8 distortion_geometry_all")
        with rasterio.open(geometry) as src:
            theta, slope = src.read(1), src.read(2)
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
        vv, vh, theta, slope, group = (a[usable] for a in (vv, vh, theta, slope, group))
        order = np.argsort(group, kind="stable")  # each class's pixels as one slice
        starts = np.searchsorted(group[order], np.arange(max(names) + 2))
        for g in names:
            sel = order[starts[g]:starts[g + 1]]
            if sel.size:
                classes[g].add(vv[sel], vh[sel], theta[sel], slope[sel] < FLAT_SLOPE_DEG)
        by_cover.add(vv, group)
        by_incidence.add(vv, np.floor(np.maximum(theta, 0) / INCIDENCE_BIN_DEG).astype(np.int64))
    rows = tuple(classes[g].statistics(names[g]) for g in sorted(names) if classes[g].pixels)
    return SarStatistics(rows, by_cover.variance_explained(), by_incidence.variance_explained(),
                         by_cover.count, len(truth["sentinel1"]))


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
