"""Earth Search-style copies of a Sentinel-2 L2A product, with or without BOA_ADD_OFFSET in the pixels.

Earth Search's ``sentinel-2-l2a`` collection serves many scenes of processing baseline 04.00 and
later with the offset already subtracted from the COG pixels, and flags it wrongly in both
directions (``earthsearch:boa_offset_applied``); it offers no MTD_MSIL2A.xml. This builder makes
such a product from any local item (the Planetary Computer's keys, ESA's DNs), so the tests can
check that the optical chain decodes all of them to the same reflectance. Test-data builder: the
pipeline never imports it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from pipeline.optical.reflectance import NODATA_DN

BOA_ADD_OFFSET = -1000


def earth_search_item(local_item: dict[str, Any], out_dir: str | Path, offset_applied: bool, flag: bool,
                      scl_override: dict[int, int] | None = None) -> dict[str, Any]:
    """Write B02, B03, B04 (and SCL) under ``out_dir`` as Earth Search would serve them; return the local item.

    Parameters
    ----------
    local_item : dict
        A local item with ESA DNs (assets B02, B03, B04, SCL; product-metadata is dropped).
    offset_applied : bool
        Subtract 1000 from every valid DN (clipped to 1: DN 0 stays no data), as Earth Search did.
    flag : bool
        The ``earthsearch:boa_offset_applied`` value to write (may contradict ``offset_applied``).
    scl_override : dict, optional
        Scene classes to replace in SCL (e.g. {6: 4}: no water), to make scenes the detection
        cannot decide.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    item = copy.deepcopy(local_item)
    assets = {}
    for band in ("B02", "B03", "B04", "SCL"):
        src_path = Path(local_item["assets"][band]["href"])
        with rasterio.open(src_path) as src:
            data, profile = src.read(1), src.profile
        if band == "SCL":
            for old, new in (scl_override or {}).items():
                data = np.where(data == old, new, data).astype(data.dtype)
        elif offset_applied:
            valid = data != NODATA_DN
            shifted = np.clip(data.astype(np.int32) + BOA_ADD_OFFSET, 1, 65535)
            data = np.where(valid, shifted, NODATA_DN).astype(data.dtype)
        target = out_dir / src_path.name
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(data, 1)
        assets[band] = {**local_item["assets"][band], "href": str(target.resolve())}
    item["assets"] = assets
    item["properties"]["earthsearch:boa_offset_applied"] = bool(flag)
    item["properties"]["sardem:s2_asset_layout"] = "earth_search"
    return item
