"""Command line of the simulator: ``python -m pipeline.simulate {world,quicklooks,agreement} --help``.

The simulator sits beside the pipeline: it writes products in the real formats that the
pipeline then reads like real data; nothing in the pipeline imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import UserError


def _world(args: argparse.Namespace) -> None:
    from pipeline.config import load_config, validated_simulation
    from pipeline.simulate.app import simulate

    if args.simulation and args.config:
        raise UserError("give either --simulation or --config, not both")
    if args.config:
        sim = load_config(args.config)["simulation"]
    else:
        try:
            sim = json.loads(args.simulation or "{}")
        except json.JSONDecodeError as exc:
            raise UserError(f"--simulation is not valid JSON: {exc}") from exc
        sim = validated_simulation(sim)
    out = Path(args.out or sim.get("directory", "resources/simulated"))
    sim = {k: v for k, v in sim.items() if k != "directory"}
    print(simulate(sim, out, args.geoid_grid or None, args.threads))


def _quicklooks(args: argparse.Namespace) -> None:
    from pipeline.simulate.inspect import world_quicklooks

    for path in world_quicklooks(args.world, args.out, args.date):
        print(path)


def _agreement(args: argparse.Namespace) -> None:
    from pipeline.simulate.agreement import agreement_table

    print(agreement_table(Path(args.world), Path(args.results)))


def _sar_stats(args: argparse.Namespace) -> None:
    from pipeline.simulate.sar_stats import sar_stats_table

    print(sar_stats_table(Path(args.world), Path(args.results)))


def build_parser() -> argparse.ArgumentParser:
    from pipeline.cli import base_parser

    parser = base_parser("python -m pipeline.simulate", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("world", help="simulate the offline Alpine world (S1 GRD, S2 L2A, SRTM, truth, STAC)")
    p.add_argument("--simulation", help="the config's 'simulation' section as JSON (what the rule passes)")
    p.add_argument("--config", help="or a config.yaml to read the 'simulation' section from")
    p.add_argument("--out", help="output directory (default: simulation.directory)")
    p.add_argument("--geoid-grid", default="", help="EGM96 grid path (default: vendored, then PROJ/Debian)")
    p.add_argument("--threads", type=int, default=1,
                   help="dates simulated at a time (a speed setting: the bytes do not depend on it)")
    p.set_defaults(func=_world)

    p = sub.add_parser("quicklooks", help="PNG quicklooks of one date of a simulated world")
    p.add_argument("--world", required=True, help="directory of the simulated world (catalog.json at its root)")
    p.add_argument("--out", required=True, help="directory for the PNGs")
    p.add_argument("--date", type=int, default=0, help="index of the date (default 0)")
    p.set_defaults(func=_quicklooks)

    p = sub.add_parser("agreement", help="the pipeline's distortion maps and geocoding against the simulator's truth")
    p.add_argument("--world", required=True, help="directory of the simulated world (truth/ inside)")
    p.add_argument("--results", required=True, help="the workflow's results directory (distortion/ inside)")
    p.set_defaults(func=_agreement)

    p = sub.add_parser("sar-stats", help="backscatter per land-cover class and its dependence on local incidence")
    p.add_argument("--world", required=True, help="directory of the simulated world (truth/ inside)")
    p.add_argument("--results", required=True, help="the workflow's results directory (sar/, distortion/ inside)")
    p.set_defaults(func=_sar_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipeline.cli import run_parser

    return run_parser(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
