"""Shared fixtures: real product metadata and small simulated worlds (built once per session)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.config import validate
from pipeline.simulate import scene
from pipeline.simulate.app import write_world
from pipeline.simulate.world import WorldSpec

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent
REAL_S1_DESCENDING = DATA / "s1" / "s1b-iw-grd-vv-20210401t052623-20210401t052648-026269-032297-001.xml"
REAL_S1_ASCENDING = DATA / "s1" / "s1a-iw-grd-vv-20210809t173953-20210809t174018-039156-049f13-001.xml"


# Tests that need a fixture built by a whole Snakemake run (or a large world) are slow: `python -m pytest`
# leaves them out; `python -m pytest -m slow` runs them (.ci/run runs both tiers).
SLOW_FIXTURES = {"built", "stac_run", "optical_world"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def default_simulation() -> dict:
    """The default config's 'simulation' section, validated with defaults."""
    return validate(yaml.safe_load((REPO / "config.yaml").read_text()))["simulation"]


def small_simulation(**overrides) -> dict:
    """A small world for tests: 5.12 km AOI, the default dates unless overridden."""
    sim = copy.deepcopy(default_simulation())
    sim["aoi"]["size_m"] = 5120
    sim["margin_m"] = 500
    for key, value in overrides.items():
        sim[key] = value
    sim.pop("directory", None)
    return sim


@dataclass(frozen=True)
class BuiltWorld:
    world: scene.World
    root: Path

    @property
    def truth(self) -> dict:
        return json.loads((self.root / "truth" / "world.json").read_text())

    def s1_safes(self) -> list[Path]:
        return sorted((self.root / "sentinel1").glob("*.SAFE"))

    def s2_safes(self) -> list[Path]:
        return sorted((self.root / "sentinel2").glob("*.SAFE"))


@pytest.fixture(scope="session")
def alpine_world(tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    """Alpine relief, two dates written with the real writers: summer on the descending track, autumn on
    the ascending one (its evening pass)."""
    sim = small_simulation()
    sim["dates"] = [sim["dates"][1], dict(sim["dates"][2], s1="2020-10-24T17:25:10", **{"pass": "ascending"})]
    world = scene.build_world(WorldSpec.from_config(sim))
    root = tmp_path_factory.mktemp("alpine") / "simulated"
    write_world(world, root)
    return BuiltWorld(world, root)


@pytest.fixture(scope="session")
def flat_world(tmp_path_factory: pytest.TempPathFactory) -> BuiltWorld:
    """A flat world at 1000 m, one cloud-free date."""
    sim = small_simulation(relief="flat")
    sim["dates"] = [dict(sim["dates"][1], cloud_fraction=0.0)]
    sim["sentinel1"]["orbit_tube_m"] = 0  # the date flies the reference orbit: world.facets["descending"] is its geometry
    world = scene.build_world(WorldSpec.from_config(sim))
    root = tmp_path_factory.mktemp("flat") / "simulated"
    write_world(world, root)
    return BuiltWorld(world, root)


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative POSIX path -> hex digest), but those whose path starts
    with one of ``skip``; ``root``'s own path inside the bytes (cache tags and local items name where their
    files came from) is replaced by a placeholder, so that runs in two directories compare."""
    here = str(root).encode()
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes().replace(here, b"<root>")).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(skip)
    }


def workflow_copy(tmp_path: Path) -> Path:
    """The workflow files in a scratch directory (outputs and logs stay out of the repository)."""
    work = tmp_path / "wf"
    work.mkdir()
    shutil.copy(REPO / "Snakefile", work)
    shutil.copy(REPO / "config.yaml", work)
    shutil.copytree(REPO / "workflow", work / "workflow")
    shutil.copytree(REPO / "envs", work / "envs")
    shutil.copytree(REPO / "config", work / "config")
    return work


def small_config(**dataset) -> dict:
    sim = small_simulation()
    sim["aoi"]["size_m"] = 5120  # 2 x 2 patches per triplet
    sim["dates"][2]["cloud_fraction"] = 1.0  # a fully cloudy optical scene
    cfg = {"simulation": dict(sim, directory="resources/simulated")}
    cfg["dataset"] = {"max_masked_fraction": 0.6, "split_block_patches": 1, **dataset}
    # let the cloudy scene through the search, to exercise the skip of too-masked scenes downstream
    cfg["search"] = {"max_cloud_cover": 100}
    return cfg


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """The dataset target of a small world (source simulated), built once per session."""
    work = workflow_copy(tmp_path_factory.mktemp("dataset"))
    (work / "test.yaml").write_text(yaml.safe_dump(small_config()))
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "test.yaml"], work)
    assert res.returncode == 0, res.stderr[-4000:]
    return work
