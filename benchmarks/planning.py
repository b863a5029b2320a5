"""Benchmark: planning time of ``snakemake -n dataset`` from a frozen search result, by its size.

Builds synthetic frozen results of paper scale and beyond (every 12 days one Sentinel-1 pass of
one slice and one Sentinel-2 acquisition of four MGRS tiles, from copies of the simulated world's
items with shifted dates and new ids) and times a dry run of the paper's configuration with
``search.frozen`` set to each, in a scratch copy of the workflow. Needs the default simulated
world's search result (``snakemake --cores 8 dataset``).

    python benchmarks/planning.py [--passes 30 120 300]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def synthetic_result(template: dict, passes: int) -> dict:
    s1, s2 = template["sentinel-1-grd"][0], template["sentinel-2-l2a"][0]
    out = copy.deepcopy(template)
    out["sentinel-1-grd"], out["sentinel-2-l2a"] = [], []
    t0 = dt.datetime(2018, 1, 3, 5, 34, 20, tzinfo=dt.timezone.utc)
    for k in range(passes):
        t = t0 + dt.timedelta(days=12 * k)
        a = copy.deepcopy(s1)
        a["id"] = f"S1A_IW_GRDH_1SDV_{t:%Y%m%dT%H%M%S}_SYNTH_{k:04d}"
        a["properties"].update(datetime=t.isoformat().replace("+00:00", "Z"), start_datetime=None,
                               end_datetime=None)
        a["properties"]["sat:absolute_orbit"] = 20000 + 175 * k
        out["sentinel-1-grd"].append(a)
        for tile in ("T31TGL", "T31TGK", "T32TLR", "T32TLQ"):
            b = copy.deepcopy(s2)
            b["id"] = f"S2A_MSIL2A_{t + dt.timedelta(hours=5):%Y%m%dT%H%M%S}_N0500_R108_{tile}_SYNTH{k:04d}"
            b["properties"]["datetime"] = (t + dt.timedelta(hours=5)).isoformat().replace("+00:00", "Z")
            out["sentinel-2-l2a"].append(b)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, nargs="+", default=[30, 120, 300])
    ap.add_argument("--search-result", default="results/search/result.json")
    args = ap.parse_args()
    template = json.loads(Path(args.search_result).read_text())
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    print(f"{'S1 passes':>9s} {'S2 items':>8s} {'result MB':>9s} {'jobs':>6s} {'dry run s':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("Snakefile", "config.yaml"):
            shutil.copy(REPO / name, work)
        for name in ("workflow", "envs", "config"):
            shutil.copytree(REPO / name, work / name)
        for n in args.passes:
            result = synthetic_result(template, n)
            (work / "frozen.json").write_text(json.dumps(result))
            t0 = time.perf_counter()
            res = subprocess.run(["snakemake", "-n", "dataset", "--configfile", "config/paper.yaml", "--config",
                                  "search={'frozen': 'frozen.json'}"], cwd=work, env=env, capture_output=True,
                                 text=True)
            elapsed = time.perf_counter() - t0
            if res.returncode != 0:
                sys.exit(res.stderr[-3000:])
            jobs = res.stdout.split("Job stats:")[1].split("total")[1].split()[0]
            size = (work / "frozen.json").stat().st_size / 1e6
            print(f"{n:9d} {len(result['sentinel-2-l2a']):8d} {size:9.1f} {jobs:>6s} {elapsed:9.1f}")


if __name__ == "__main__":
    main()
