"""Distortion flag bits (after Meier et al., 1993) and the evaluation regions made from them.

numpy only: the patch store, training and evaluation read these conventions without the geocoding
stack. :mod:`pipeline.sar.distortion` computes the flags and re-exports these names.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FORESHORTENING = 1
"""Terrain facing the radar (local incidence below the ellipsoid's), less steeply than the look angle."""
ACTIVE_LAYOVER = 2
"""Terrain facing the radar more steeply than the look angle (its top imaged before its foot)."""
PASSIVE_LAYOVER = 4
"""Ground whose slant ranges are shared with active layover on the same azimuth line."""
ACTIVE_SHADOW = 8
"""Terrain facing away more steeply than 90 deg minus the look angle."""
PASSIVE_SHADOW = 16
"""Ground hidden behind nearer terrain (its elevation angle at most the maximum of nearer ground)."""
LAYOVER = ACTIVE_LAYOVER | PASSIVE_LAYOVER
SHADOW = ACTIVE_SHADOW | PASSIVE_SHADOW

REGION_NON_DISTORTED = 0
REGION_FORESHORTENING = 1
REGION_SHADOW = 2


def evaluation_regions(flags: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """0 non-distorted, 1 foreshortening (incl. layover), 2 shadow (wins where both apply)."""
    regions = np.zeros(flags.shape, np.uint8)
    regions[(flags & (FORESHORTENING | LAYOVER)) > 0] = REGION_FORESHORTENING
    regions[(flags & SHADOW) > 0] = REGION_SHADOW
    return regions
