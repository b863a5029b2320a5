"""Stage ``tiles``: cut one triplet into patches (an .npz shard with its rows of the index), with the
registration QA of both images against the DEM's predictions (:mod:`pipeline.dataset.registration`)."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import validate
from pipeline.core.grid import MapGrid
from pipeline.dataset import registration as reg
from pipeline.dataset.layout import LAYERS
from pipeline.dataset.tiling import cut_patches
from pipeline.errors import DatasetError
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import grid_of, open_raster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TilingParams:
    """What changes the shards (the config's ``dataset`` keys of the same names)."""

    patch_size: int
    stride: int
    max_masked_fraction: float
    registration_max_shift_px: float
    registration_min_quality: float
    registration_flag_sigmas: float
    drop_misregistered: bool

    KEYS = ("patch_size", "stride", "max_masked_fraction", "registration_max_shift_px", "registration_min_quality",
            "registration_flag_sigmas", "drop_misregistered")

    @classmethod
    def from_dict(cls, dataset: dict[str, Any]) -> TilingParams:
        """From (part of) the config's ``dataset`` section, completed with the schema's defaults."""
        d = validate({"dataset": {k: v for k, v in dataset.items() if k in cls.KEYS}})["dataset"]
        return cls(int(d["patch_size"]), int(d["stride"]), float(d["max_masked_fraction"]),
                   float(d["registration_max_shift_px"]), float(d["registration_min_quality"]),
                   float(d["registration_flag_sigmas"]), bool(d["drop_misregistered"]))


@dataclass(frozen=True)
class Registration:
    """Registration QA of one triplet: each sensor's shift per patch (by (row, col)) and for the scene, and
    the noise scale of its window estimates (:func:`pipeline.dataset.registration.noise_scale`)."""

    sar: dict[tuple[int, int], reg.Shift]
    optical: dict[tuple[int, int], reg.Shift]
    sar_scene: reg.Shift
    optical_scene: reg.Shift
    sar_noise: float
    optical_noise: float


def measure_registration(grid: MapGrid, sar_db: np.ndarray, sar_tags: dict, optical: np.ndarray, info: dict,
                         height_m: np.ndarray, patches: list[tuple[int, int]], patch_size: int,
                         min_quality: float) -> Registration:
    """Shifts of the SAR (VV dB) and of the optical luminance against the DEM's predictions.

    Measured on half-overlapping windows twice the patch size (more relief, fewer false peaks than
    one patch); a patch gets the window whose centre is nearest its own (at most a quarter window
    away), the scene the median of the windows whose quality reaches ``min_quality``.
    """
    size, windows = reg.grid_windows(grid.height, grid.width, 2 * patch_size)
    centres = np.array([(r + size / 2, c + size / 2) for r, c in windows])
    nearest = {p: int(np.argmin(np.hypot(*(centres - (p[0] + patch_size / 2, p[1] + patch_size / 2)).T)))
               for p in patches}
    images = []
    # the predictions and the optical luminance are computed window by window (memory of one window)
    if "platform_heading_deg" in sar_tags and "incidence_angle_deg" in sar_tags:
        predicted = reg.relief_per_window(height_m, functools.partial(
            reg.sar_prediction_db, resolution_m=grid.resolution, incidence_deg=float(sar_tags["incidence_angle_deg"]),
            heading_deg=float(sar_tags["platform_heading_deg"]),
            right_looking=sar_tags.get("look_side", "right") == "right"))
        images.append((sar_db, predicted, np.isfinite(sar_db)))
    else:
        log.warning("no viewing geometry in the backscatter's tags: no SAR registration QA")
        images.append(None)
    if info.get("sun_zenith_deg") is not None:
        predicted = reg.relief_per_window(height_m, functools.partial(
            reg.optical_prediction, resolution_m=grid.resolution, sun_zenith_deg=info["sun_zenith_deg"],
            sun_azimuth_deg=info["sun_azimuth_deg"]))
        luminance = reg.PerWindow(optical.shape[1:], lambda rows, cols: optical[:3, rows, cols].astype(np.float32)
                                  .mean(axis=0))
        images.append((luminance, predicted, optical[3] > 0))
    else:
        log.warning("no sun angles for %s: no optical registration QA", info.get("id"))
        images.append(None)
    per_patch, scenes, noise = [], [], []
    for image in images:
        if image is None:
            per_patch.append({p: reg.NO_SHIFT for p in patches})
            scenes.append(reg.NO_SHIFT)
            noise.append(float("nan"))
            continue
        shifts = reg.window_shifts(*image, windows, size)
        per_patch.append({p: shifts[k] for p, k in nearest.items()})
        scenes.append(reg.combine(shifts, min_quality))
        noise.append(reg.noise_scale(shifts, scenes[-1], min_quality))
    return Registration(per_patch[0], per_patch[1], scenes[0], scenes[1], noise[0], noise[1])


def _registration_columns(rows: list[dict], registration: Registration, params: TilingParams) -> list[bool]:
    """Add each patch's shifts to its index row; returns which patches are flagged misregistered."""
    flagged = []
    for row in rows:
        bad = False
        for name, shifts, scale in (("sar", registration.sar, registration.sar_noise),
                                    ("optical", registration.optical, registration.optical_noise)):
            s = shifts.get((row["row"], row["col"]), reg.NO_SHIFT)
            row.update({f"{name}_dx_px": s.dx_px, f"{name}_dy_px": s.dy_px, f"{name}_registration_quality": s.quality,
                        f"{name}_shift_sigma_px": reg.shift_sigma_px(s, scale)})
            bad |= bool(s.quality >= params.registration_min_quality
                        and reg.confidently_beyond(s, params.registration_max_shift_px, scale,
                                                   params.registration_flag_sigmas))
        row["misregistered"] = bad
        flagged.append(bad)
    return flagged


def tile_triplet(triplet: dict, sar_tif: Path, flags_tif: Path, optical_tif: Path, optical_json: Path,
                 dem_norm_tif: Path, out_npz: Path, params: TilingParams) -> int:
    """Cut one triplet into patches (an .npz shard and its rows of the index). Returns the patch count."""
    try:
        info = json.loads(Path(optical_json).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{optical_json}: cannot read the optical scene's record ({exc})") from exc
    with open_raster(sar_tif, "backscatter") as src:
        sar = src.read().astype(np.float32)
        sar_tags = src.tags()
        grid = grid_of(src)
    with open_raster(flags_tif, "distortion flags") as src:
        flags = src.read(1)
    with open_raster(optical_tif, "optical image") as src:
        opt = src.read()
    with open_raster(dem_norm_tif, "normalised DEM") as src:
        dem = src.read(1).astype(np.float32)
        dem_max_m = float(src.tags().get("dem_max_m", "nan"))
    rows: list[dict] = []
    arrays: dict[str, list] = {k: [] for k in LAYERS}
    scene: dict[str, Any] = {}
    if info["skipped"]:
        log.warning("triplet %s: optical scene %s skipped (%s)", triplet["id"], triplet["s2"], info["reason"])
    elif sar_tags.get("skipped", ""):
        log.warning("triplet %s: Sentinel-1 scene %s skipped (%s)", triplet["id"], triplet["s1"], sar_tags["skipped"])
    else:
        rows, arrays = cut_patches(triplet, grid, sar, flags, opt, dem, params.patch_size, params.stride,
                                   params.max_masked_fraction)
        registration = measure_registration(grid, sar[0], sar_tags, opt, info, dem * dem_max_m,
                                            [(r["row"], r["col"]) for r in rows], params.patch_size,
                                            params.registration_min_quality)
        scene = {"sar": asdict(registration.sar_scene), "optical": asdict(registration.optical_scene)}
        log.info("triplet %s registration against the DEM (px, east/south; quality): SAR %s, optical %s",
                 triplet["id"], registration.sar_scene, registration.optical_scene)
        flagged = _registration_columns(rows, registration, params)
        if any(flagged):
            log.warning("triplet %s: %d of %d patches misregistered by more than %.2f px%s", triplet["id"],
                        sum(flagged), len(rows), params.registration_max_shift_px,
                        " (dropped)" if params.drop_misregistered else " (flagged)")
        if params.drop_misregistered and any(flagged):
            keep = [i for i, bad in enumerate(flagged) if not bad]
            rows = [rows[i] for i in keep]
            arrays = {k: [v[i] for i in keep] for k, v in arrays.items()}
    with atomic_path(out_npz) as tmp:
        stacked = {k: np.stack(v) if v else np.zeros((0,)) for k, v in arrays.items()}
        with open(tmp, "wb") as fh:
            np.savez(fh, index=json.dumps(rows), registration=json.dumps({triplet["id"]: scene}), **stacked)
    log.info("triplet %s: %d patches of %d px at stride %d (max masked %.2f) -> %s", triplet["id"], len(rows),
             params.patch_size, params.stride, params.max_masked_fraction, out_npz)
    return len(rows)
