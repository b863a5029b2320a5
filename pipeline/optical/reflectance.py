"""Sentinel-2 L2A digital numbers <-> bottom-of-atmosphere reflectance.

From processing baseline 04.00 (25 January 2022): BOA = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE
with BOA_ADD_OFFSET = -1000 and QUANTIFICATION_VALUE = 10000; before it BOA = DN / 10000.
DN 0 is no data.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

NODATA_DN = 0


def dn_to_reflectance(dn: ArrayLike, offset: float, quantification: float = 10000.0) -> NDArray[np.float32]:
    """BOA reflectance (unitless) of L2A DNs; NaN where DN is 0 (no data)."""
    dn = np.asarray(dn)
    out = (dn.astype(np.float32) + np.float32(offset)) / np.float32(quantification)
    return np.where(dn == NODATA_DN, np.float32(np.nan), out).astype(np.float32)


def reflectance_to_dn(reflectance: ArrayLike, offset: float, quantification: float = 10000.0) -> NDArray[np.uint16]:
    """L2A DNs of reflectances: round(rho * Q - offset), clipped to 1..65535 (0 stays no data)."""
    r = np.asarray(reflectance, dtype=np.float64)
    dn = np.round(r * quantification - offset)
    return np.clip(dn, 1, 65535).astype(np.uint16)
