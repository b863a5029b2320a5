"""The workflow: configuration validation, the command line, real Snakemake runs, determinism."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.errors import UserError
from pipeline.config import load_config, validate

from .conftest import REPO, run, small_simulation, tree_digest, workflow_copy


def test_default_config_is_valid_and_complete() -> None:
    cfg = load_config(REPO / "config.yaml")
    assert cfg["source"] == "simulated"
    assert len(cfg["simulation"]["dates"]) >= 3
    # defaults fill an empty configuration
    assert validate({})["simulation"]["aoi"]["size_m"] == 12800


def test_bench_configuration_is_the_promised_world_and_plans(tmp_path: Path) -> None:
    """config/bench.yaml: a 40 km AOI, 32 dates over two years from both passes (each track's dates whole
    12-day cycles apart), everything it writes apart from the default world's; it plans offline."""
    import numpy as np

    from pipeline.simulate.world import WorldSpec

    cfg = validate(yaml.safe_load((REPO / "config" / "bench.yaml").read_text()))
    spec = WorldSpec.from_config(cfg["simulation"])
    assert spec.aoi_size_m == 40000 and len(spec.dates) >= 24  # the issue asks for 24 or more
    assert {d.pass_direction for d in spec.dates} == {"descending", "ascending"}
    s1 = np.array([d.s1_time for d in spec.dates])
    assert (s1.max() - s1.min()) / np.timedelta64(1, "D") > 540  # two seasons
    for p in spec.passes:
        days = np.array([(d.s1_time - s1[spec.first_dates[p]]) / np.timedelta64(1, "s") / 86400
                         for d in spec.dates if d.pass_direction == p])
        assert np.allclose(days % 12, 0)
    default = validate(yaml.safe_load((REPO / "config.yaml").read_text()))
    for key in (("simulation", "directory"), ("results",), ("dataset", "directory"), ("download", "cache"),
                ("training", "directory"), ("evaluation", "directory")):
        a, b = cfg, default
        for k in key:
            a, b = a[k], b[k]
        assert a != b, key
    assert cfg["search"]["orbit_state"] is None
    work = workflow_copy(tmp_path)
    res = run(["snakemake", "-n", "dataset", "--cores", "1", "--configfile", "config/bench.yaml"], work)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "resources/simulated_bench/catalog.json" in res.stdout


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"simulation": {"aoi": {"center_lat": 95.0}}}, "simulation.aoi.center_lat"),
        ({"simulation": {"sentinel1": {"incidence_deg": 60}}}, "simulation.sentinel1.incidence_deg"),
        ({"source": "scihub"}, "source"),
        ({"simulation": {"seed": "seven"}}, "simulation.seed"),
    ],
)
def test_invalid_value_names_the_key(patch: dict, key: str) -> None:
    with pytest.raises(UserError, match=f"'{key}'"):
        validate(patch)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"search": {"start": "2020-02-30"}}, "'search.start': '2020-02-30' is not a calendar date"),
        ({"search": {"start": "2021-03-01", "end": "2021-01-01"}}, "'search.start': 2021-03-01 is after search.end"),
        ({"simulation": {"dates": [{"s1": "2020-13-01T05:34:20", "s2": "2020-05-21T10:37:31", "snow_line_m": 1900,
                                    "wet_snow": True, "cloud_fraction": 0.1}]}},
         "'simulation.dates.0.s1': '2020-13-01T05:34:20' is not a calendar date"),
        ({"aoi": {"bbox": [6.5, 95.0, 6.6, 45.4]}}, "'aoi.bbox.1': 95.0 is greater than the maximum of 90"),
        ({"aoi": {"bbox": [6.6, 45.3, 6.5, 45.4]}}, "with west < east"),
        ({"source": "stac", "aoi": {"bbox": [-10.0, 35.0, 30.0, 60.0]}}, "more than aoi_max_area_km2 = 40,000 km^2"),
        ({"aoi": {"bbox": [8.0, 45.3, 8.1, 45.4]}}, "is outside the simulated world"),
        ({"sar": {"db_flor": -30}}, "unknown key 'db_flor' (did you mean 'db_floor'?) in 'sar'"),
        ({"aoi": {"bbx": [6.55, 45.4, 6.6, 45.45]}}, "unknown key 'bbx' (did you mean 'bbox'?) in 'aoi'"),
    ],
)
def test_values_a_schema_cannot_check_are_checked(patch: dict, message: str) -> None:
    with pytest.raises(UserError) as info:
        validate(patch)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_geojson_aoi_is_checked_too(tmp_path: Path) -> None:
    continent = tmp_path / "europe.geojson"
    continent.write_text('{"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 60], [-10, 60], [-10, 35]]]}')
    with pytest.raises(UserError, match="aoi.geojson.*more than aoi_max_area_km2"):
        validate({"source": "stac", "aoi": {"geojson": str(continent)}})
    assert validate({"source": "stac", "aoi": {"geojson": str(continent)}, "aoi_max_area_km2": 1e7})


def test_snakemake_rejects_an_invalid_config_before_any_job(tmp_path: Path) -> None:
    work = workflow_copy(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"simulation": {"aoi": {"size_m": 12345}}}))
    res = run(["snakemake", "simulate", "-n", "--cores", "1", "--configfile", str(bad)], work)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "size_m" in out and "multiple of" in out
    assert not (work / "resources").exists() and not (work / "logs").exists()
    # an unknown key: one line with a suggestion, not the schema
    bad.write_text(yaml.safe_dump({"dataset": {"strech_percentiles": [2, 98]}}))
    res = run(["snakemake", "simulate", "-n", "--cores", "1", "--configfile", str(bad)], work)
    assert res.returncode != 0
    errors = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "did you mean 'stretch_percentiles'" in errors[0]
    assert len((res.stdout + res.stderr).splitlines()) < 10 and "properties" not in res.stdout + res.stderr


def test_cli_help_lists_the_stages() -> None:
    res = run([sys.executable, "-m", "pipeline", "--help"], REPO)
    assert res.returncode == 0 and "terrain-correct" in res.stdout
    res = run([sys.executable, "-m", "pipeline.simulate", "--help"], REPO)
    assert res.returncode == 0 and "world" in res.stdout
    res = run([sys.executable, "-m", "pipeline.simulate", "world", "--simulation", "{not json"], REPO)
    assert res.returncode == 2 and "not valid JSON" in res.stderr


def test_cli_reports_a_missing_input_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "dem_egm96.tif"
    res = run([sys.executable, "-m", "pipeline", "dem-normalise", "--dem", str(missing), "--out",
               str(tmp_path / "out.tif")], REPO)
    assert res.returncode == 2 and f"{missing}: cannot open the DEM (no such file)" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out.tif").exists()
    res = run([sys.executable, "-m", "pipeline", "--debug", "dem-normalise", "--dem", str(missing), "--out",
               str(tmp_path / "out.tif")], REPO)
    assert res.returncode != 0 and "Traceback" in res.stderr and "RasterError" in res.stderr


def test_snakemake_lint_and_format_are_clean(tmp_path: Path) -> None:
    work = workflow_copy(tmp_path)
    lint = run(["snakemake", "--lint"], work)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run(["snakefmt", "--check", "Snakefile", "workflow"], work)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_snakemake_simulate_is_deterministic_and_reruns_on_parameter_change(tmp_path: Path) -> None:
    """A real Snakemake run of the simulate rule; the same seed gives identical bytes; a changed seed reruns it."""
    work = workflow_copy(tmp_path)
    sim = small_simulation()
    sim["aoi"]["size_m"] = 2560
    sim["dates"] = sim["dates"][:1]
    cfg = {"simulation": dict(sim, directory="resources/simulated")}
    (work / "test.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "simulate", "--cores", "2", "--configfile", "test.yaml"], work)
    assert res.returncode == 0, res.stderr[-3000:]
    root = work / "resources" / "simulated"
    first = tree_digest(root)
    assert "catalog.json" in first and any(k.endswith(".tiff") for k in first)
    assert (work / "logs" / "simulate.log").read_text().count("simulated 1 dates") == 1
    # nothing to do when nothing changed
    res = run(["snakemake", "simulate", "-n", "--cores", "2", "--configfile", "test.yaml"], work)
    assert "Nothing to be done" in res.stdout + res.stderr
    # the same parameters again from scratch: identical bytes
    shutil.rmtree(root)
    res = run(["snakemake", "simulate", "--cores", "2", "--configfile", "test.yaml"], work)
    assert res.returncode == 0
    assert tree_digest(root) == first
    # the SAR chain on top: DEM and one terrain-corrected product per scene
    res = run(["snakemake", "sar", "--cores", "2", "--configfile", "test.yaml"], work)
    assert res.returncode == 0, res.stderr[-3000:]
    outputs = sorted((work / "results" / "sar").glob("*_backscatter.tif"))
    assert len(outputs) == 1 and (work / "results" / "dem" / "dem_wgs84.tif").exists()
    # changing a terrain-correction parameter reruns only the terrain correction
    cfg["sar"] = {"db_floor": -30}
    (work / "test.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "sar", "-n", "--cores", "2", "--configfile", "test.yaml"], work)
    planned = res.stdout + res.stderr
    assert "terrain_correct" in planned
    assert "rule dem" not in planned and "checkpoint simulate" not in planned and "rule simulate" not in planned
    # a changed simulation parameter reruns the simulation
    cfg["simulation"]["seed"] = 8
    (work / "test.yaml").write_text(yaml.safe_dump(cfg))
    res = run(["snakemake", "simulate", "-n", "--cores", "2", "--configfile", "test.yaml"], work)
    assert "simulate" in res.stdout and "Nothing to be done" not in res.stdout
