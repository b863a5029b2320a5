"""Configuration: load config.yaml, validate it against the package's JSON schema, fill defaults.

The schema is a package resource (``pipeline/schema/config.schema.yaml``), so an installed
package validates without the repository; the Snakefile validates against the same file with
``snakemake.utils.validate``. Defaults are stated in the schema only: the typed parameter
objects of the stages are built from validated sections (``Params.from_dict``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datetime as dt
import difflib
import functools

import jsonschema
import yaml

from pipeline.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "config.schema.yaml"


@functools.cache
def _schema() -> dict[str, Any]:
    """The parsed schema (read once a process; nobody changes it), by libyaml where PyYAML has it (10x the
    pure-Python parser: the schema took 0.1 s, a fifth of a small terrain-correction job's fixed costs)."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _fill_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    if schema.get("type") == "object" and isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = _copy(sub["default"])
            if key in instance:
                instance[key] = _fill_defaults(instance[key], sub)
    return instance


def _copy(value: Any) -> Any:
    """A copy of plain configuration data, sequences as lists (as YAML would give them)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def _message(error: jsonschema.ValidationError, schema: dict[str, Any]) -> str:
    """One line naming the key: unknown keys get a 'did you mean' from the known ones; a value that fits none
    of several forms (oneOf) is explained by the form it came closest to."""
    path = list(error.absolute_path)
    key = ".".join(str(p) for p in path) or "(top level)"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        where = f"'{key}'" if path else "the top level"
        return f"unknown key {', '.join(hints)} in {where}; known keys: {', '.join(known)}"
    if error.validator == "oneOf" and error.context:
        # the form it came closest to: the error found deepest inside the value (a wrong latitude
        # inside a bbox, rather than "not null")
        depth = max(len(e.absolute_path) for e in error.context)
        deepest = [e for e in error.context if len(e.absolute_path) == depth]
        specific = [e for e in deepest if e.validator != "type"] or deepest  # "not null" says least
        specific.sort(key=lambda e: e.validator != "additionalProperties")
        return _message(specific[0], schema)
    text = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"invalid configuration at '{key}': {text}"


def validate(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill defaults, validate against the schema, then check what a schema cannot say (real calendar
    dates in order, a sensible AOI); raise UserError naming the offending key."""
    schema = schema or _schema()
    config = _fill_defaults(_copy(config) if config else {}, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise UserError(_message(errors[0], schema))
    check_values(config)
    return config


def _date(value: str, key: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"invalid configuration at '{key}': {value!r} is not a calendar date ({exc})") from None


def check_values(config: dict[str, Any]) -> None:
    """Checks across keys, on a configuration the schema accepted (sections absent: nothing to check)."""
    search = config.get("search") or {}
    start, end = search.get("start"), search.get("end")
    if start:
        start_date = _date(start, "search.start")
    if end:
        end_date = _date(end, "search.end")
    if start and end and start_date > end_date:
        raise UserError(f"invalid configuration at 'search.start': {start} is after search.end {end}")
    for k, date in enumerate((config.get("simulation") or {}).get("dates") or []):
        for sensor in ("s1", "s2"):
            if sensor in date:
                _date(date[sensor], f"simulation.dates.{k}.{sensor}")
    aoi = config.get("aoi")
    if aoi and ("bbox" in aoi or "geojson" in aoi):
        if "bbox" in aoi:
            bbox, key = list(aoi["bbox"]), "aoi.bbox"
        else:
            from pipeline.io.aoi import geojson_bbox  # reads the file: the schema cannot see inside it

            bbox, key = list(geojson_bbox(aoi["geojson"])), f"aoi.geojson ({aoi['geojson']})"
        check_bbox(bbox, key, config.get("aoi_max_area_km2"))
        if config.get("source") == "simulated" and config.get("simulation"):
            check_inside_simulated_world(bbox, config["simulation"], key)


def bbox_area_km2(west: float, south: float, east: float, north: float) -> float:
    """Area (km^2) of a lon/lat box on the authalic sphere (R = 6371.007 km)."""
    import math

    r = 6371.007
    return r * r * math.radians(east - west) * (math.sin(math.radians(north)) - math.sin(math.radians(south)))


def check_bbox(bbox: list[float], key: str, max_area_km2: float | None) -> None:
    """West < east, south < north, and the area under ``max_area_km2``; a UserError naming ``key`` otherwise."""
    west, south, east, north = bbox
    if not (west < east and south < north):
        raise UserError(f"invalid configuration at '{key}': {bbox} is not [west, south, east, north] with west < east "
                        "and south < north (boxes across the antimeridian are not supported)")
    area = bbox_area_km2(west, south, east, north)
    if max_area_km2 is not None and area > max_area_km2:
        raise UserError(f"invalid configuration at '{key}': the AOI covers {area:,.0f} km^2, more than "
                        f"aoi_max_area_km2 = {max_area_km2:,.0f} km^2 (a typo? raise aoi_max_area_km2 if it is meant)")


def check_inside_simulated_world(bbox: list[float], simulation: dict[str, Any], key: str) -> None:
    """With source 'simulated', the AOI must lie inside the simulated world (its AOI plus margin)."""
    from pipeline.core.grid import aoi_grid_around, lonlat_bounds

    sim_aoi = simulation["aoi"]
    world = aoi_grid_around(sim_aoi["center_lat"], sim_aoi["center_lon"], sim_aoi["size_m"]).expanded(
        simulation.get("margin_m", 0))
    w, s, e, n = lonlat_bounds(world)
    west, south, east, north = bbox
    if not (w <= west and e >= east and s <= south and n >= north):
        raise UserError(f"invalid configuration at '{key}': {bbox} is outside the simulated world "
                        f"[{w:.4f}, {s:.4f}, {e:.4f}, {n:.4f}] (source: simulated); move the box inside it, "
                        "change simulation.aoi, or use source: stac")


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


def configure(config: dict[str, Any]) -> None:
    """The Snakefile's validation: fill ``config`` in place with the schema's defaults, or stop before any
    job with one line naming the offending key (no traceback, no schema dump)."""
    import sys

    try:
        config.update(validate(dict(config)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
