# Helpers shared by the workflow: config slices as plain, JSON-serialisable parameters; the scene lists.
import json
import math
import os
import sys
from pathlib import Path

from pipeline.core.grid import aoi_grid_around, aoi_grid_for_bbox, lonlat_bounds
from pipeline.io.aoi import geojson_bbox
from pipeline.dem.tiles import tiles_covering
from pipeline.sources.query import S1_COLLECTION, S2_COLLECTION, pair_scenes
from pipeline.sources.search import read_result
from pipeline.stages.sources import changed_markers, note_changed_cache


def as_json(value):
    """A config slice as a compact JSON string: a change of any value changes the string (rerun trigger)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def parent_dir(path):
    """The directory of an output file, as a string (for commands that take a directory)."""
    return str(Path(path).parent)


def _aoi_grid():
    if config["aoi"] is not None and "geojson" in config["aoi"]:
        return aoi_grid_for_bbox(*geojson_bbox(config["aoi"]["geojson"]))
    if config["aoi"] is not None:
        return aoi_grid_for_bbox(*config["aoi"]["bbox"])
    aoi = config["simulation"]["aoi"]
    return aoi_grid_around(aoi["center_lat"], aoi["center_lon"], aoi["size_m"])


def aoi_grid(margin_m=0):
    """The AOI's 10 m UTM grid (snapped: all scenes of the AOI share it) as a plain dict;
    with ``margin_m``, grown by that margin (whole pixels) on every side."""
    grid = _aoi_grid().expanded(margin_m) if margin_m else _aoi_grid()
    return {
        "epsg": grid.epsg,
        "left": grid.left,
        "top": grid.top,
        "resolution": grid.resolution,
        "width": grid.width,
        "height": grid.height,
    }


# Resource requests from measured peaks (benchmarks/resources.py over the `benchmark:` files of two runs; README
# "On a SLURM cluster"): a job's peak memory and run time grow linearly with the AOI's size in Mpx of the 10 m grid.
_AOI = _aoi_grid()
AOI_MPX = _AOI.width * _AOI.height / 1e6
# on a cluster, a job's own Snakemake process runs beside the rule's command (about 210 MB measured)
JOB_OVERHEAD_MB = 250


def mem_mb(base_mb, per_mpx_mb=0, headroom=1.5):
    """A rule's memory request (MB): its measured peak ``base_mb + per_mpx_mb * AOI_MPX`` with 50 % headroom
    (``headroom=1`` where ``base_mb`` is an estimate, not a measurement), plus the job's own Snakemake; doubled
    at each retry (a job killed for memory asks for twice as much)."""

    def request(wildcards, attempt):
        need = (base_mb + per_mpx_mb * AOI_MPX) * headroom + JOB_OVERHEAD_MB
        return math.ceil(need * 2 ** (attempt - 1))

    return request


def runtime_min(base_s, per_mpx_s=0):
    """A rule's run-time request (minutes): three times its measured ``base_s + per_mpx_s * AOI_MPX`` seconds,
    at least 10 minutes (a busy shared file system is slower than the machine it was measured on); growing with
    the attempt (a job killed for time gets more)."""

    def request(wildcards, attempt):
        return math.ceil(max(10.0, 3 * (base_s + per_mpx_s * AOI_MPX) / 60) * attempt)

    return request


def search_query():
    """The search criteria (pipeline.sources.query.SceneQuery as a dict): the AOI's lon/lat box and the filters."""
    s = config["search"]
    return {
        "bbox": list(lonlat_bounds(_aoi_grid())),
        "start": s["start"],
        "end": s["end"],
        "instrument_mode": "IW",
        "polarisations": config["sar"]["polarisations"],
        "orbit_state": s["orbit_state"],
        "relative_orbit": s["relative_orbit"],
        "max_cloud_cover": s["max_cloud_cover"],
    }


def search_endpoints():
    """Where each collection is searched: the simulated world's static catalog, or the STAC APIs."""
    if SIMULATED:
        return {S1_COLLECTION: SIM_CATALOG, S2_COLLECTION: SIM_CATALOG}
    return {
        S1_COLLECTION: config["search"]["sentinel1"]["api"],
        S2_COLLECTION: config["search"]["sentinel2"]["api"],
    }


def search_collections():
    """Catalog collection ids that differ from the canonical names (Earth Search's Collection 1)."""
    wanted = config["search"]["sentinel2"]["collection"]
    if SIMULATED or wanted == S2_COLLECTION:
        return {}
    return {S2_COLLECTION: wanted}


def dataset_configuration():
    """The config sections that shape the dataset (recorded in the store): each change of one of them
    already reruns the store through its inputs; performance knobs are left out."""
    sections = {
        "source": config["source"],
        "aoi": (
            config["aoi"]
            if config["aoi"] is not None
            else {"simulation": config["simulation"]["aoi"]}
        ),
        "search": {k: v for k, v in config["search"].items() if k != "frozen"},
        "sar": {k: v for k, v in config["sar"].items() if k != "tile_size"},
        "distortion": config["distortion"],
        "dataset": {k: v for k, v in config["dataset"].items() if k != "directory"},
        "geoid_grid": config["geoid_grid"],
    }
    if SIMULATED:
        sections["simulation"] = {
            k: v for k, v in config["simulation"].items() if k != "directory"
        }
    return sections


def dem_tiles():
    """SRTM tiles under the AOI plus the distortion margin (and 1 km more)."""
    grid = _aoi_grid().expanded(config["distortion"]["margin_m"] + 1000)
    return tiles_covering(*lonlat_bounds(grid))


def dem_url_template():
    if config["download"]["dem_url"]:
        return config["download"]["dem_url"]
    if SIMULATED:
        return f"{SIM_DIR}/dem/{{tile}}.SRTMGL1.hgt.zip"
    return "https://step.esa.int/auxdata/dem/SRTMGL1/{tile}.SRTMGL1.hgt.zip"


_TRIPLETS = {}


def triplet_list():
    """The triplets of the frozen search result (the configured file, or the search checkpoint's
    output), read and paired once per version of the file: input functions call this per job.
    """
    path = FROZEN or checkpoints.search.get().output.result
    key = (str(path), os.stat(path).st_mtime_ns)
    if key not in _TRIPLETS:
        result = read_result(path)
        _TRIPLETS[key] = pair_scenes(
            result[S1_COLLECTION], result[S2_COLLECTION], config["dataset"]["max_days"]
        )
    return _TRIPLETS[key]


def sentinel1_scenes(wildcards):
    """Sentinel-1 product ids (slices) of the triplets (known once the search result is)."""
    return sorted({i for t in triplet_list() for i in t["s1_items"]})


def s1_acquisition(name):
    return next(t for t in triplet_list() if t["s1"] == name)["s1_items"]


def sar_of(triplet):
    """The terrain-corrected backscatter and flags of a triplet's pass: its one slice's, or the mosaic's."""
    if len(triplet["s1_items"]) == 1:
        return (
            f"{RESULTS}/sar/{triplet['s1']}_backscatter.tif",
            f"{RESULTS}/distortion/{triplet['s1']}_flags.tif",
        )
    return (
        f"{RESULTS}/sar/mosaic/{triplet['s1']}_backscatter.tif",
        f"{RESULTS}/sar/mosaic/{triplet['s1']}_flags.tif",
    )


def s2_scenes(wildcards):
    """Sentinel-2 acquisitions of the triplets (named by their first tile's id)."""
    return sorted({t["s2"] for t in triplet_list()})


def s2_items(wildcards):
    """Sentinel-2 product ids (MGRS tiles) of the triplets' acquisitions."""
    return sorted({i for t in triplet_list() for i in t["s2_items"]})


def s2_acquisition_tiles(wildcards):
    """The Sentinel-2 product ids (MGRS tiles) of one acquisition (wildcard s2)."""
    return next(t for t in triplet_list() if t["s2"] == wildcards.s2)["s2_items"]


def s2_acquisition_items(wildcards):
    """The local items of the tiles of one acquisition (wildcard s2)."""
    return [
        f"{PRODUCTS}/sentinel-2-l2a/{i}.json" for i in s2_acquisition_tiles(wildcards)
    ]


def triplet_ids(wildcards):
    return [t["id"] for t in triplet_list()]


def triplet_of(wildcards):
    return next(t for t in triplet_list() if t["id"] == wildcards.triplet)


SIMULATED = config["source"] == "simulated"
SIM_DIR = config["simulation"]["directory"]
SIM_CATALOG = f"{SIM_DIR}/catalog.json"
RESULTS = config["results"]
LOGS = config["logs"]
DATASET = config["dataset"]["directory"]
CACHE = f"{config['download']['cache']}/{config['source']}"  # simulated tiles never mix with real ones
FROZEN = config["search"]["frozen"]
SEARCH_RESULT = FROZEN or f"{RESULTS}/search/result.json"
PRODUCTS = f"{RESULTS}/products"
# the tile file's name after the tile id: ".SRTMGL1.hgt.zip" (ESA), ".hgt.gz" (skadi)
DEM_SUFFIX = Path(dem_url_template().split("?")[0]).name.split("{tile}")[-1]

# a product or DEM tile whose cached files changed since they were fetched gets a mark (a file touched now);
# the mark is an input of its fetch job and of the jobs that read the product, so they rerun, the fetch first.
# Checked once, by the Snakemake that plans the run: a cluster job parses this file again and must not.
CHANGED = f"{RESULTS}/cache_changed"
if workflow.is_main_process:
    for message in note_changed_cache(
        PRODUCTS, [f"{CACHE}/dem/{tile}{DEM_SUFFIX}" for tile in dem_tiles()], CHANGED
    ):
        print(f"warning: {message}", file=sys.stderr)


def changed(*names):
    """The marks of products or tiles (file names) whose cached files changed (none in a normal run)."""
    return changed_markers(CHANGED, list(names))


def changed_dem_tiles(wildcards):
    return changed(*[f"{tile}{DEM_SUFFIX}" for tile in dem_tiles()])


def changed_s2_of_acquisition(wildcards):
    return changed(*s2_acquisition_tiles(wildcards))


wildcard_constraints:
    scene="[^/]+",
    s1="[^/]+",
    s2="[^/]+",
    triplet="[^/]+",
    tile="[NS][0-9]{2}[EW][0-9]{3}",


# --- training and evaluation -------------------------------------------------------------------
MODELS = config["training"]["directory"]
#: The models of the paper's Table 1, in its order (pipeline.models.REGISTRY names).
MODEL_NAMES = [
    "cyclegan",
    "pix2pix",
    "sardinet",
    "sardinet_late",
    "sardinet_early",
    "sardinet_intermediate",
]


def training_params(model):
    """The training settings that change ``model``'s result: its family's section and the input scaling."""
    t = config["training"]
    fam = "sardinet" if model.startswith("sardinet") else model
    return {
        "sar_db_range": t["sar_db_range"],
        "deterministic": t["deterministic"],
        fam: t[fam],
    }


def training_runtime_flags():
    """Runtime-only training options as command-line flags (a resource: changing them reruns nothing)."""
    r = config["training"]["runtime"]
    flags = [f"--device {r['device']}"]
    flags += [
        f"--{'' if r[k] else 'no-'}{k}" for k in ("amp", "compile", "tensorboard")
    ]
    return " ".join(flags)


def trained_models(model):
    """``model.pt`` of every configured seed of ``model``."""
    return expand(
        f"{MODELS}/{model}/seed{{seed}}/model.pt", seed=config["training"]["seeds"]
    )


wildcard_constraints:
    model="|".join(MODEL_NAMES),
    seed="[0-9]+",


EVALUATION = config["evaluation"]["directory"]
EVAL_MODELS = [m for m in MODEL_NAMES if m in config["evaluation"]["models"]]


def evaluation_params():
    """The evaluation settings that change its numbers (not where it writes, which models, the device)."""
    e = config["evaluation"]
    return {
        k: e[k]
        for k in (
            "min_region_pixels",
            "fid_weights",
            "laplacian_strength",
            "wiener_kernel_size",
            "wiener_sigma",
            "wiener_nsr",
        )
    }


def evaluation_outputs(name):
    """One evaluation file of every evaluated model and seed."""
    return [
        f"{EVALUATION}/{m}/seed{s}/{name}"
        for m in EVAL_MODELS
        for s in config["training"]["seeds"]
    ]
