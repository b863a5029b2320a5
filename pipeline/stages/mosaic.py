"""Stage ``mosaic_slices``: one pass's terrain-corrected Sentinel-1 slices as one image."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.io.atomic import atomic_path
from pipeline.io.rasters import grid_of, open_raster, write_geotiff

log = logging.getLogger(__name__)


def mosaic_slices(backscatter: list[str | Path], flags: list[str | Path], out_backscatter: str | Path,
                  out_flags: str | Path) -> None:
    """One pass's terrain-corrected slices on the AOI grid as one image: each pixel, in every band,
    from the first slice (in the given order, by time) whose backscatter is valid there; its
    distortion flags come from the same slice. Tagged ``skipped`` only when every slice was.
    """
    if len(backscatter) != len(flags) or not backscatter:
        raise UserError("give one flags file per backscatter file, at least one")
    reasons, out, out_f, grid, names, tags = [], None, None, None, None, {}
    for bs_path, fl_path in zip(backscatter, flags):
        with open_raster(bs_path, "backscatter") as src:
            data = src.read()
            grid = grid_of(src)
            names = list(src.descriptions)
            tags = src.tags()
            if tags.get("skipped"):
                reasons.append(f"{Path(bs_path).name}: {tags['skipped']}")
        with open_raster(fl_path, "distortion flags") as src:
            fl = src.read(1)
        if out is None:
            out, out_f = np.full_like(data, np.nan), np.zeros_like(fl)
        take = np.isnan(out[0]) & np.isfinite(data).all(axis=0)
        out[:, take] = data[:, take]
        out_f[take] = fl[take]
    tags = {k: v for k, v in tags.items() if k not in ("skipped", "product")}
    tags["slices"] = ",".join(Path(p).name.removesuffix("_backscatter.tif") for p in backscatter)
    if len(reasons) == len(backscatter):
        tags["skipped"] = "; ".join(reasons)
    with atomic_path(out_backscatter) as tmp:
        write_geotiff(tmp, out, grid, np.nan, tags, names)
    with atomic_path(out_flags) as tmp:
        write_geotiff(tmp, out_f, grid, None, {"slices": tags["slices"]}, ["flags"])
    log.info("mosaic of %d slices -> %s%s", len(backscatter), out_backscatter,
             f" (skipped: {tags['skipped']})" if "skipped" in tags else "")
