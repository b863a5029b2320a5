# Helpers shared by the workflow: config slices as plain, JSON-serialisable parameters.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pipeline.grid import aoi_grid_around


def as_json(value):
    """A config slice as a compact JSON string: a change of any value changes the string (rerun trigger)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def parent_dir(path):
    """The directory of an output file, as a string (for commands that take a directory)."""
    return str(Path(path).parent)


def aoi_grid():
    """The AOI's 10 m UTM grid (snapped: all scenes of the AOI share it) as a plain dict."""
    aoi = config["simulation"]["aoi"]
    grid = aoi_grid_around(aoi["center_lat"], aoi["center_lon"], aoi["size_m"])
    return {
        "epsg": grid.epsg,
        "left": grid.left,
        "top": grid.top,
        "resolution": grid.resolution,
        "width": grid.width,
        "height": grid.height,
    }


def sentinel1_scenes(wildcards):
    """Sentinel-1 product ids of the simulated world (known once the simulate checkpoint ran)."""
    catalog = Path(checkpoints.simulate.get().output.catalog)
    return sorted(
        p.name for p in (catalog.parent / "sentinel-1-grd").iterdir() if p.is_dir()
    )


def s2_scenes(wildcards):
    """Sentinel-2 product ids of the simulated world (known once the simulate checkpoint ran)."""
    catalog = Path(checkpoints.simulate.get().output.catalog)
    return sorted(
        p.name for p in (catalog.parent / "sentinel-2-l2a").iterdir() if p.is_dir()
    )


def triplet_ids(wildcards):
    with open(checkpoints.triplets.get().output.triplets) as fh:
        return [t["id"] for t in json.load(fh)]


def triplet_of(wildcards):
    with open(checkpoints.triplets.get().output.triplets) as fh:
        return next(t for t in json.load(fh) if t["id"] == wildcards.triplet)


if config["source"] != "simulated":
    raise WorkflowError(
        f"source: {config['source']!r}: searching and downloading real Sentinel data is not wired into "
        "the workflow yet (the downloader exists: pipeline.io.download); use source: simulated"
    )

SIM_DIR = config["simulation"]["directory"]
RESULTS = config["results"]
DATASET = config["dataset"]["directory"]
