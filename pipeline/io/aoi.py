"""Reading an AOI from a GeoJSON file (WGS84 longitude, latitude, as RFC 7946 requires)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import UserError


def _coordinates(obj: dict) -> list[list[float]]:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [c for f in obj.get("features", []) for c in _coordinates(f)]
    if kind == "Feature":
        return _coordinates(obj.get("geometry") or {})
    if kind == "GeometryCollection":
        return [c for g in obj.get("geometries", []) for c in _coordinates(g)]
    if kind in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        out: list[list[float]] = []

        def walk(node) -> None:
            if node and isinstance(node[0], (int, float)):
                out.append([float(node[0]), float(node[1])])
            else:
                for child in node:
                    walk(child)

        walk(obj.get("coordinates", []))
        return out
    raise ValueError(f"unknown GeoJSON type {kind!r}")


def geojson_bbox(path: str | Path) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of every coordinate in a GeoJSON file."""
    path = Path(path)
    try:
        coords = _coordinates(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise UserError(f"{path}: not a readable GeoJSON AOI ({exc})") from exc
    if not coords:
        raise UserError(f"{path}: the GeoJSON has no coordinates")
    lon = [c[0] for c in coords]
    lat = [c[1] for c in coords]
    if not (-180 <= min(lon) <= max(lon) <= 180 and -90 <= min(lat) <= max(lat) <= 90):
        raise UserError(f"{path}: coordinates are not longitude/latitude in degrees (GeoJSON is WGS84)")
    return min(lon), min(lat), max(lon), max(lat)
