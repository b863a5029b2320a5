"""Stage ``store``: the shards into the patch store (``patches.zarr``, ``index.parquet``), the dataset
card and a quicklook per triplet."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import validate
from pipeline.dataset.card import dataset_card
from pipeline.dataset.quicklooks import dem_grey, triplet_panel
from pipeline.dataset.store import assemble_store
from pipeline.errors import DatasetError
from pipeline.io import quicklook as q
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import open_raster, raster_tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreParams:
    """What changes the store (the config's ``dataset`` keys of the same names)."""

    split: str
    split_fractions: tuple[float, float, float]
    seed: int
    split_block_patches: int
    patch_size: int

    KEYS = ("split", "split_fractions", "seed", "split_block_patches", "patch_size")

    @classmethod
    def from_dict(cls, dataset: dict[str, Any]) -> StoreParams:
        """From (part of) the config's ``dataset`` section, completed with the schema's defaults."""
        d = validate({"dataset": {k: v for k, v in dataset.items() if k in cls.KEYS}})["dataset"]
        return cls(d["split"], tuple(float(f) for f in d["split_fractions"]), int(d["seed"]),
                   int(d["split_block_patches"]), int(d["patch_size"]))


def software_versions() -> dict[str, str]:
    """The package's version and git commit (when run from a checkout), and the libraries' versions."""
    import subprocess

    import pyproj
    import rasterio

    versions = {"sardem": _version("sardem", "unknown")}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=10)
        versions["sardem_git_commit"] = commit.stdout.strip() if commit.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=10)
        if dirty.returncode == 0 and dirty.stdout.strip():
            versions["sardem_git_commit"] += " (modified)"
    except (OSError, subprocess.SubprocessError):
        versions["sardem_git_commit"] = "unknown"
    for name in ("numpy", "scipy", "pandas", "zarr", "xarray", "rasterio", "pyproj", "numba"):
        versions[name] = _version(name, "absent")
    versions["gdal"] = rasterio.__gdal_version__
    versions["proj"] = pyproj.proj_version_str
    return versions


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None (strict JSON for the store's attributes)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _version(name: str, missing: str) -> str:
    """An installed distribution's version, or ``missing``."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return missing


def build_store(shards: list[Path], optical_json: list[Path], triplets_json: Path, dem: Path, sar: list[Path],
                flags: list[Path], optical: list[Path], params: StoreParams, out_dir: Path,
                configuration: dict[str, Any] | None = None) -> Path:
    """Write ``patches.zarr``, ``index.parquet``, ``README.md`` (the card) and ``quicklooks/`` in ``out_dir``.

    ``sar``, ``flags`` and ``optical`` are each triplet's rasters, in the order of ``triplets_json``;
    ``dem`` is the normalised DEM (its ``dem_max_m`` tag goes into the card). ``configuration``: the
    config sections that shaped the data (recorded in the store's attributes with the products and
    the software versions).
    """
    triplets = json.loads(Path(triplets_json).read_text())
    if not len(triplets) == len(sar) == len(flags) == len(optical):
        raise DatasetError(f"{triplets_json}: {len(triplets)} triplets, but {len(sar)} backscatter, "
                           f"{len(flags)} flags and {len(optical)} optical files")
    log.info("store from %d shards of %d triplets; parameters %s", len(shards), len(triplets), params)
    registration = {}
    for shard in shards:
        with np.load(shard) as z:
            if "registration" in z:
                registration.update(json.loads(str(z["registration"])))
    infos = [json.loads(Path(x).read_text()) for x in optical_json]
    dem_max = float(raster_tag(dem, "dem_max_m"))
    provenance = {
        "configuration": configuration or {},
        "store_parameters": {k: getattr(params, k) for k in StoreParams.KEYS},
        "dem_max_m": dem_max,
        "products": {t["id"]: {"sentinel1": t["s1"], "sentinel2": t["s2"]} for t in triplets},
        "optical_scenes": {i["id"]: {"items": i.get("items", [i["id"]]), "skipped": i["skipped"],
                                     "masked_fraction": i["masked_fraction"]} for i in infos},
        "registration": registration,
        "software": software_versions(),
    }
    index = assemble_store([Path(x) for x in shards], out_dir, params.split, params.split_fractions, params.seed,
                           params.split_block_patches * params.patch_size, params.patch_size, _json_safe(provenance))
    skipped_sar = {}
    for t, path in zip(triplets, sar):
        reason = raster_tag(path, "skipped", "")
        if reason:
            skipped_sar[t["s1"]] = reason
    card = dataset_card(index, triplets, infos, dem_max, skipped_sar, params.split_fractions, registration,
                        provenance, (configuration or {}).get("dataset", {}).get("registration_max_shift_px"),
                        params.patch_size)
    with atomic_path(out_dir / "README.md") as tmp:
        tmp.write_text(card)
    written = triplet_quicklooks(triplets, sar, flags, optical, dem, out_dir / "quicklooks")
    log.info("%d patches (%s); card %s; %d quicklooks", len(index), index["split"].value_counts().to_dict(),
             out_dir / "README.md", len(written))
    return out_dir


def _quicklook_read(src, bands: list[int], max_size: int) -> tuple[np.ndarray, float]:
    """``bands`` of an open raster at no more than about twice ``max_size`` pixels on its longer side (a
    whole-number decimation, nearest, from the COG's overviews where it has them) and the pixel size (m):
    a quicklook of a paper-scale AOI never reads the full-resolution rasters."""
    factor = max(1, max(src.height, src.width) // (2 * max_size))
    shape = (-(-src.height // factor), -(-src.width // factor))
    data = src.read(bands, out_shape=(len(bands), *shape)) if factor > 1 else src.read(bands)
    return data, float(src.transform.a) * src.width / shape[1]


def triplet_quicklooks(triplets: list[dict], sar: list[Path], flags: list[Path], optical: list[Path], dem: Path,
                       out_dir: Path, max_size: int = 700) -> list[Path]:
    """One PNG per triplet; ``sar``, ``flags`` and ``optical`` are the triplets' rasters, in their order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_raster(dem, "normalised DEM") as src:
        grey = dem_grey(_quicklook_read(src, [1], max_size)[0][0])
    written = []
    for t, sar_tif, flags_tif, optical_tif in zip(triplets, sar, flags, optical, strict=True):
        with open_raster(sar_tif, "backscatter") as src:
            (vv, vh), pixel_m = _quicklook_read(src, [1, 2], max_size)
        with open_raster(flags_tif, "distortion flags") as src:
            flag_values = _quicklook_read(src, [1], max_size)[0][0]
        with open_raster(optical_tif, "optical image") as src:
            rgb = np.dstack(_quicklook_read(src, [1, 2, 3], max_size)[0])
        titles = (f"Sentinel-1 {t['s1'][:3]} {t['s1_time'][:10]} [VV, VH, 0] dB", "DEM (EGM96)",
                  f"Sentinel-2 {t['s2'][:3]} {t['s2_time'][:10]} RGB (black: masked)",
                  "foreshortening, layover, shadow")
        panel = triplet_panel(vv, vh, grey, rgb, flag_values, pixel_m, titles, max_size)
        written.append(q.save_png(out_dir / f"{t['id']}.png", panel))
    return written
