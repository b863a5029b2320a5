"""Reader of Sentinel-1 precise orbit files (AUX_POEORB / AUX_RESORB, Earth Explorer ``.EOF`` XML).

``Data_Block/List_of_OSVs/OSV`` holds UTC times (``UTC=2021-03-31T22:59:42.000000``) and ECEF
(Earth-fixed) positions ``X, Y, Z`` (m) and velocities ``VX, VY, VZ`` (m/s), 10 s apart over
about 26 hours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lxml import etree

from pipeline.sar.annotation import AnnotationError, seconds_since
from pipeline.sar.orbit import Orbit


def parse_eof(path: str | Path, epoch: np.datetime64) -> Orbit:
    """State vectors of an EOF file, times in seconds from ``epoch`` (UTC)."""
    try:
        root = etree.parse(str(path)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise AnnotationError(f"{path}: not a readable orbit file ({exc})") from exc
    osvs = root.findall(".//Data_Block/List_of_OSVs/OSV")
    if not osvs:
        raise AnnotationError(f"{path}: no Data_Block/List_of_OSVs/OSV state vectors")
    try:
        times = np.array([np.datetime64(o.findtext("UTC").split("=", 1)[1], "ns") for o in osvs])
        pos = np.array([[float(o.findtext(a)) for a in ("X", "Y", "Z")] for o in osvs])
        vel = np.array([[float(o.findtext(a)) for a in ("VX", "VY", "VZ")] for o in osvs])
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        raise AnnotationError(f"{path}: malformed state vector ({exc})") from exc
    return Orbit(epoch, seconds_since(times, epoch), pos, vel)
