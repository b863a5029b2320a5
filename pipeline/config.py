"""Configuration: load config.yaml, validate it against the package's JSON schema, fill defaults.

The schema is a package resource (``pipeline/schema/config.schema.yaml``), so an installed
package validates without the repository; the Snakefile validates against the same file with
``snakemake.utils.validate``. Defaults are stated in the schema only: the typed parameter
objects of the stages are built from validated sections (``Params.from_dict``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "config.schema.yaml"


def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _fill_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    if schema.get("type") == "object" and isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = _copy(sub["default"])
            if key in instance:
                instance[key] = _fill_defaults(instance[key], sub)
    return instance


def _copy(value: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(value))


def validate(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill defaults and validate; raise UserError naming the offending key."""
    schema = schema or _schema()
    config = _fill_defaults(_copy(config) if config else {}, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise UserError(f"invalid configuration at '{key}': {e.message}")
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read the configuration ({exc})") from exc
    try:
        return validate(raw)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc


def validated_simulation(sim: dict[str, Any]) -> dict[str, Any]:
    """The 'simulation' section alone, validated with defaults."""
    return validate({"simulation": sim})["simulation"]
