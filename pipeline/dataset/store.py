"""The patch store: the writer of ``patches.zarr`` and ``index.parquet`` from the per-triplet shards.

Store layout (``<dataset>/patches.zarr``, zarr v3, sharded, dimensions (patch, <array>_channel, y, x),
readable with ``xarray.open_zarr(path)``):
``sar`` float32 (VV, VH in dB), ``dem`` float32 (normalised by the maximum elevation),
``optical`` uint8 (R, G, B stretched to [0, 255], masked pixels 0), ``valid`` uint8 (optical
validity, 1 valid), ``flags`` uint8 (distortion bits, :mod:`pipeline.sar.distortion`).
``<dataset>/index.parquet`` has one row per patch: id, triplet, scene ids, dates, bounds, CRS,
split and the fractions of shadow, foreshortening and masked optical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.dataset.layout import SPLITS
from pipeline.dataset.tiling import assign_splits
from pipeline.errors import DatasetError
from pipeline.io.atomic import atomic_path


LAYER_ATTRS = {
    "sar": {"long_name": "backscatter (VV, VH)", "units": "dB"},
    "dem": {"long_name": "EGM96 elevation divided by the dataset's maximum elevation", "units": "1"},
    "optical": {"long_name": "Sentinel-2 red, green, blue stretched to 1..255 (0: masked)", "units": "1"},
    "valid": {"long_name": "optical pixel valid (1) or masked (0)", "units": "1"},
    "flags": {"long_name": "distortion bits: 1 foreshortening, 2 active layover, 4 passive layover, "
                           "8 active shadow, 16 passive shadow", "units": "1"},
}


def patch_coordinates(index: pd.DataFrame, patch_size: int, resolution_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre eastings (patch, x) and northings (patch, y), metres in the index's CRS."""
    offsets = (np.arange(patch_size) + 0.5) * resolution_m
    easting = index["left"].to_numpy()[:, None] + offsets[None, :]
    northing = index["top"].to_numpy()[:, None] - offsets[None, :]
    return easting, northing


def assemble_store(shards: list[Path], out_dir: Path, split_mode: str, fractions: tuple[float, float, float],
                   seed: int, split_block_px: int, patch_size: int, provenance: dict | None = None) -> pd.DataFrame:
    """One sharded zarr store for all patches (``patches.zarr``) and the Parquet index with splits
    (``index.parquet``) in ``out_dir``, from the per-triplet shards of :mod:`pipeline.stages.tiles`.

    The store is self-describing: pixel-centre ``easting_m`` (patch, x) and ``northing_m`` (patch, y),
    a per-patch GDAL ``geotransform`` (patch, 6) and the CRS as a CF ``spatial_ref`` grid mapping
    (see :func:`open_patch`); ``provenance`` (parameters, products, versions) goes into its attributes.
    Its metadata is consolidated, so ``xarray.open_zarr(path)`` opens it directly.
    """
    import warnings

    import pyproj
    import zarr

    loaded = []
    for p in shards:
        try:
            loaded.append(np.load(p))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{p}: not a readable shard ({exc})") from exc
    rows = [r for z in loaded for r in json.loads(str(z["index"]))]
    if not rows:
        raise DatasetError("the dataset is empty: no triplet produced a patch (see the logs: skipped scenes, "
                           "no S1/S2 pair within dataset.max_days, or patches dropped for no data or masking)")
    index = pd.DataFrame(rows)
    index.insert(0, "patch", np.arange(len(index)))
    # strata of the stratified split: whether a patch shows radar shadow, foreshortening (per-region metrics)
    strata = np.column_stack([index["shadow_fraction"] > 0, index["foreshortening_fraction"] > 0]).astype(float)
    split = assign_splits(index["row"].to_numpy(), index["col"].to_numpy(), fractions, seed, split_mode,
                          split_block_px, strata)
    index["split"] = [SPLITS[s] for s in split]
    crs_names = index["crs"].unique()
    if len(crs_names) != 1:
        raise DatasetError(f"the shards mix coordinate systems ({', '.join(crs_names)}): one AOI grid expected")
    crs = pyproj.CRS(crs_names[0])
    resolution = float((index["right"] - index["left"]).iloc[0]) / patch_size
    easting, northing = patch_coordinates(index, patch_size, resolution)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "patches.zarr") as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        n = len(index)
        coordinates = "easting_m northing_m spatial_ref"
        for name, dtype in (("sar", "float32"), ("dem", "float32"), ("optical", "uint8"), ("valid", "uint8"),
                            ("flags", "uint8")):
            arr = _copy_layer(root, name, dtype, loaded, n)
            arr.attrs.update({**LAYER_ATTRS[name], "grid_mapping": "spatial_ref", "coordinates": coordinates})
        for name, values, dim, axis in (("easting_m", easting, "x", "X"), ("northing_m", northing, "y", "Y")):
            arr = root.create_array(name, shape=values.shape, dtype="float64", chunks=values.shape,
                                    dimension_names=("patch", dim))
            arr[:] = values
            arr.attrs.update({"standard_name": f"projection_{dim}_coordinate", "units": "m", "axis": axis,
                              "long_name": f"pixel-centre {'easting' if dim == 'x' else 'northing'} of each patch"})
        geotransform = np.stack([index["left"], np.full(n, resolution), np.zeros(n), index["top"], np.zeros(n),
                                 np.full(n, -resolution)], axis=1).astype("float64")
        arr = root.create_array("geotransform", shape=geotransform.shape, dtype="float64", chunks=geotransform.shape,
                                dimension_names=("patch", "geotransform_coefficient"))
        arr[:] = geotransform
        arr.attrs.update({"long_name": "GDAL geotransform of each patch: left, pixel width, 0, top, 0, -pixel height",
                          "units": "m"})
        ref = root.create_array("spatial_ref", shape=(), dtype="int32")
        ref[...] = 0
        ref.attrs.update({**crs.to_cf(), "spatial_ref": crs.to_wkt(), "crs_wkt": crs.to_wkt()})
        root.attrs.update({"channels": {"sar": ["VV_dB", "VH_dB"], "dem": ["elevation_over_max"],
                                        "optical": ["red", "green", "blue"], "valid": ["optical_valid"],
                                        "flags": ["distortion_bits"]},
                           "patch_size": patch_size, "crs": crs_names[0], "resolution_m": resolution,
                           **({"provenance": provenance} if provenance else {})})
        with warnings.catch_warnings():  # zarr notes that consolidated metadata is not yet in the v3 spec
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(str(tmp))
    with atomic_path(out_dir / "index.parquet") as tmp:
        index.to_parquet(tmp, index=False)
    return index


def _copy_layer(root, name: str, dtype: str, shards: list, n: int):
    """Create layer ``name`` (``n`` patches) in the zarr group ``root`` and fill it from the shards' layers, in
    order, whole zarr shards (64 patches) at a time: memory holds one triplet's patches and one zarr shard,
    not the layer (the paper's 53k patches of float32 SAR would be 28 GB). Returns the array."""
    arr, start, pending, held, total = None, 0, [], 0, 0
    per_shard = min(64, n)
    for z in shards:
        data = z[name]
        if data.ndim != 4:  # a triplet without patches
            continue
        total += len(data)
        if total > n:
            break
        if arr is None:
            arr = root.create_array(name, shape=(n,) + data.shape[1:], dtype=dtype, chunks=(1,) + data.shape[1:],
                                    shards=(per_shard,) + data.shape[1:],
                                    dimension_names=("patch", f"{name}_channel", "y", "x"))
        pending.append(data)
        held += len(data)
        if held < per_shard:
            continue
        joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
        whole = held - held % per_shard
        arr[start:start + whole] = joined[:whole]
        start += whole
        pending, held = [joined[whole:]], held - whole
    if total != n:
        raise DatasetError(f"the shards' {name!r} layers hold {total}{'+' if total > n else ''} patches, "
                           f"their indexes {n}")
    if held:
        arr[start:] = np.concatenate(pending)
    return arr


def open_patch(store: str | Path, patch: int):
    """One patch as an ``xarray.Dataset`` with ``x``/``y`` pixel-centre coordinates and its CRS written
    (``ds.rio.bounds()``, ``ds.rio.to_raster()`` work with rioxarray installed).

    The same with xarray alone: ``xr.open_zarr(store).isel(patch=i).swap_dims(x="easting_m", y="northing_m")``.
    """
    import xarray as xr

    ds = xr.open_zarr(store).isel(patch=patch)
    ds = ds.assign_coords(x=ds["easting_m"].values, y=ds["northing_m"].values)
    ds = ds.drop_vars(["easting_m", "northing_m"])
    for name in ds.data_vars:
        ds[name].encoding.pop("coordinates", None)
    return ds
