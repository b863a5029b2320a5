"""The package's layout: imports point one way, the simulator sits beside the pipeline, every CLI option
has help, the schema ships with the package."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

# A module may import its own package, and packages of a lower layer; never one of its own layer or above.
LAYERS = [
    {"errors"},
    {"core"},
    {"io"},
    {"dem", "sar", "optical", "models", "config"},
    {"sources", "dataset"},
    {"training", "evaluation"},
    {"stages"},
    {"cli"},
    {"__main__"},
    {"simulate"},  # beside the pipeline: it may use it, nothing in it may use the simulator
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every module's imports of the package (module level and inside functions), resolved to modules."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t == "pipeline" or t.startswith("pipeline."))
    return graph


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_top_level_module_has_a_layer() -> None:
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert names <= set(LAYER), f"give {sorted(names - set(LAYER))} a layer in LAYERS"


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, targets in import_graph().items():
        for target in targets:
            a, b = top(module), top(target)
            if a != b and (b == "" or LAYER[b] >= LAYER[a]):
                upward.append(f"{module} imports {target}")
    assert not upward, "\n".join(sorted(upward))


def test_nothing_in_the_pipeline_imports_the_simulator() -> None:
    offenders = [m for m, targets in import_graph().items() if top(m) != "simulate"
                 and any(top(t) == "simulate" for t in targets)]
    assert not offenders


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_violations() -> None:
    """The layer rule rejects an upward import (the checker itself can fail)."""
    assert LAYER["sar"] < LAYER["stages"] and LAYER["dem"] == LAYER["sar"]
    assert top("pipeline.sar.distortion") == "sar" and top("pipeline") == ""


@pytest.mark.parametrize("prog", ["pipeline.cli", "pipeline.simulate.__main__"])
def test_every_cli_option_has_help(prog: str) -> None:
    import importlib

    parser = importlib.import_module(prog).build_parser()
    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(parser, prog)
    assert not missing, missing


def test_the_schema_is_a_package_resource() -> None:
    from pipeline.config import SCHEMA_PATH

    text = resources.files("pipeline").joinpath("schema/config.schema.yaml").read_text()
    assert text == SCHEMA_PATH.read_text() and "properties" in text
    snakefile = (PACKAGE.parent / "Snakefile").read_text()
    assert "configure(config)" in snakefile  # the workflow validates with the same code, against the same file


# What a bare GPU machine has (torch, numpy, pandas, scipy, tqdm), and what it lacks.
GEOSPATIAL_STACK = ("rasterio", "pyproj", "lxml", "zarr", "xarray", "snakemake", "pystac", "pystac_client",
                    "planetary_computer", "jsonschema", "numba")
TORCH_ONLY_MODULES = ("pipeline.training.loop", "pipeline.stages.train", "pipeline.stages.evaluate",
                      "pipeline.evaluation.figures", "benchmarks.train")


def import_blocking(modules: tuple[str, ...], blocked: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Import ``modules`` in a fresh interpreter in which importing any of ``blocked`` fails."""
    code = (
        "import importlib, importlib.abc, sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True)


def test_training_and_evaluation_import_with_torch_alone() -> None:
    # A GPU node often has torch but not GDAL/PROJ: training, evaluation and the training benchmark
    # must not pull the geospatial stack in at import (the patch store is opened with zarr only when read).
    result = import_blocking(TORCH_ONLY_MODULES, GEOSPATIAL_STACK)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_import_blocker_blocks() -> None:
    result = import_blocking(("pipeline.core.grid",), GEOSPATIAL_STACK)
    assert result.returncode != 0 and "pyproj is blocked" in result.stderr
