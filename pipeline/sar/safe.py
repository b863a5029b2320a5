"""Readers of the SAFE container: directory, zip, or a lone annotation file."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from .annotation import AnnotationError, ProductAnnotation, parse_annotation

ANNOTATION_RE = re.compile(r"(^|/)annotation/s1[abcd]-[a-z0-9]+-[a-z]+-(?P<pol>[hv]{2})-[^/]*\.xml$")


class SafeError(ValueError):
    """A SAFE product is incomplete or malformed."""


def read_annotations(path: Path) -> dict[str, ProductAnnotation]:
    """Product annotations by polarisation ('VV', 'VH', ...), from a SAFE dir, zip or one XML."""
    if not path.exists():
        raise SafeError(f"{path}: no such file or directory")
    if path.is_file() and path.suffix.lower() == ".xml":
        ann = parse_annotation(path)
        return {ann.header.polarisation: ann}
    found: dict[str, ProductAnnotation] = {}
    if path.is_dir():
        for f in sorted(path.glob("annotation/*.xml")):
            m = ANNOTATION_RE.search(f.as_posix())
            if m:
                found[m["pol"].upper()] = parse_annotation(f)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                m = ANNOTATION_RE.search(name)
                if m:
                    with z.open(name) as fh:
                        found[m["pol"].upper()] = parse_annotation(fh, f"{path}!{name}")
    else:
        raise SafeError(f"{path}: neither a SAFE directory, a SAFE zip nor an annotation XML")
    if not found:
        raise SafeError(f"{path}: no product annotation (annotation/s1?-*-*-<pol>-*.xml) found")
    return found


__all__ = ["AnnotationError", "SafeError", "read_annotations"]
