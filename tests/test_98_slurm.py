"""The workflow on a real one-node SLURM cluster, through Snakemake's SLURM executor plugin and the project's
SLURM profile (workflow/profiles/slurm): identical outputs, a cancelled job retried, a job killed for memory
retried with more. Slow tier; `.ci/run` installs Debian's slurmctld, slurmd and munge and sets
SARDEM_REQUIRE_SLURM=1, so there a missing SLURM fails these tests instead of skipping them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, run, small_config, tree_digest, workflow_copy
from .slurm_cluster import SlurmCluster, available

pytestmark = pytest.mark.slow

PROFILE = REPO / "workflow" / "profiles" / "slurm"
# squeue: the test cluster keeps no accounting database (no sacct); short first status query for a fast test
SLURM_FLAGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    missing = available()
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        missing = (missing + "; " if missing else "") + "snakemake-executor-plugin-slurm"
    if missing:
        if os.environ.get("SARDEM_REQUIRE_SLURM"):
            pytest.fail(f"SLURM required (SARDEM_REQUIRE_SLURM) but {missing}")
        pytest.skip(missing)
    with SlurmCluster(tmp_path_factory.mktemp("slurm"), memory_mb=12000) as c:
        yield c


def snakemake_env(cluster: SlurmCluster) -> dict[str, str]:
    return dict(cluster.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def squeue(cluster: SlurmCluster) -> list[tuple[str, str, str]]:
    """(job id, state, comment) of every job the cluster knows; the plugin puts the rule in the comment."""
    res = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T|%k"],
        env=cluster.env, capture_output=True, text=True, check=True,
    )
    return [tuple(line.split("|", 2)) for line in res.stdout.splitlines() if line.strip()]


def test_the_dataset_on_slurm_is_identical_to_the_local_run_and_survives_a_cancelled_job(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    config = yaml.safe_dump(small_config())
    # two run directories whose paths have the same length: files that name their path (cache tags, local
    # product items) keep their byte layout, so the path is all that differs between the two runs
    (tmp_path / "local").mkdir()
    (tmp_path / "slurm").mkdir()
    local, remote = workflow_copy(tmp_path / "local"), workflow_copy(tmp_path / "slurm")
    for work in (local, remote):
        (work / "test.yaml").write_text(config)
    res = run(["snakemake", "dataset", "--cores", "2", "--configfile", "test.yaml"], local)
    assert res.returncode == 0, res.stderr[-3000:]

    cmd = ["snakemake", "dataset", "--profile", str(PROFILE), "--configfile", "test.yaml", *SLURM_FLAGS]
    log = tmp_path / "slurm.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=remote, env=snakemake_env(cluster), stdout=out, stderr=subprocess.STDOUT)
        cancelled = None
        deadline = time.monotonic() + 900
        try:
            # cancel the first per-scene job (fetch, terrain correction, distortion) once it runs
            while proc.poll() is None and time.monotonic() < deadline:
                if cancelled is None:
                    running = [j for j, state, comment in squeue(cluster) if state == "RUNNING" and "scene" in comment]
                    if running:
                        time.sleep(3)  # well inside the job, its outputs partly written
                        subprocess.run(["scancel", running[0]], env=cluster.env, check=True)
                        cancelled = running[0]
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text[-4000:]
    assert cancelled is not None, "no per-scene job was seen running"
    # the cancelled job failed, and Snakemake submitted the same (group) job again, which then succeeded
    group = re.search(rf"Job (\S+) has been submitted with SLURM jobid {cancelled} ", text).group(1)
    assert f"Trying to restart job {group}." in text, text[-4000:]
    resubmitted = re.findall(rf"Job {re.escape(group)} has been submitted with SLURM jobid (\d+) ", text)
    assert resubmitted[0] == cancelled and len(resubmitted) == 2, resubmitted
    assert f"REQUEST_KILL_JOB JobId={cancelled} " in (cluster.root / "slurmctld.log").read_text()

    # what each job writes, byte for byte, but the runs' own records (timings, logs) and the cache's records
    # (checksums of the cached files, whose bytes name their path; the files themselves are compared)
    skip = ("results/benchmarks/", "logs/", ".snakemake/")
    tree_local, tree_slurm = (
        {k: v for k, v in tree_digest(work, skip).items() if not k.endswith("/.sardem-files.json")}
        for work in (local, remote)
    )
    produced = {k for k in tree_local if k.startswith(("results/", "resources/"))}
    assert {"results/dataset/index.parquet", "results/dem/dem_wgs84.tif"} <= produced
    assert any(k.startswith("results/dataset/patches.zarr/") for k in produced)
    differing = sorted(k for k in produced if tree_slurm.get(k) != tree_local[k])
    assert not differing, differing[:20]
    assert {k for k in tree_slurm if k.startswith(("results/", "resources/"))} == produced


MEMORY_WORKFLOW = '''
rule grow:
    output:
        "grown.txt",
    log:
        "logs/grow.log",
    threads: 1
    resources:
        # too little on the first attempt for the 800 MB the job holds; the retry asks for four times as much
        mem_mb=lambda wildcards, attempt: 500 * 4 ** (attempt - 1),
        runtime=5,
    shell:
        "python -c 'import numpy, time; a = numpy.ones(100_000_000); time.sleep(6); print(a.sum())' > {log} 2>&1 "
        "&& echo {resources.mem_mb} > {output}"
'''


def test_a_job_killed_for_memory_is_retried_with_more(cluster: SlurmCluster, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(MEMORY_WORKFLOW)
    cmd = ["snakemake", "--profile", str(PROFILE), *SLURM_FLAGS]
    res = subprocess.run(cmd, cwd=tmp_path, env=snakemake_env(cluster), capture_output=True, text=True, timeout=600)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-4000:]
    # the first attempt was killed by SLURM's memory enforcement, the second ran with four times the memory
    first, second = re.findall(r"has been submitted with SLURM jobid (\d+) ", text)
    assert f"SLURM-job '{first}' failed" in text, text[-4000:]
    slurmd = (cluster.root / "slurmd.log").read_text()
    assert re.search(rf"StepId={first}\.\d+ exceeded memory limit \(\d+ > 524288000\), being killed", slurmd)
    assert not re.search(rf"StepId={second}\.\d+ exceeded memory limit", slurmd)
    assert (tmp_path / "grown.txt").read_text().strip() == "2000"
