"""Sentinel-2 L2A digital numbers <-> bottom-of-atmosphere reflectance.

From processing baseline 04.00 (25 January 2022): BOA = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE
with BOA_ADD_OFFSET = -1000 and QUANTIFICATION_VALUE = 10000; before it BOA = DN / 10000.
DN 0 is no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

NODATA_DN = 0

#: Layouts whose pixels may or may not carry BOA_ADD_OFFSET whatever the item says: Earth Search's
#: ``sentinel-2-l2a`` (the offset pre-applied to many scenes since 2022, its
#: ``earthsearch:boa_offset_applied`` flag and ``raster:bands`` offsets wrong both ways: Element84/earth-search
#: issues 9, 24, 66, 71). The optical step decides from the pixels (offset_evidence below).
#: Earth Search's ``sentinel-2-c1-l2a`` (layout earth_search_c1: ESA's Collection 1, MTD offered), the Planetary
#: Computer and CDSE serve ESA's DNs with the product metadata.
S2_LAYOUTS_OFFSET_UNRELIABLE = frozenset({"earth_search"})


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


#: Scene classes whose surfaces are dark in the visible: 2 dark area pixels (topographic shadow), 6 water.
DARK_SCL_CLASSES = (2, 6)
#: Fewest dark pixels (over the three bands) for a decision.
MIN_DARK_PIXELS = 200


@dataclass(frozen=True)
class OffsetEvidence:
    """Whether an L2A product's DNs already had BOA_ADD_OFFSET (-1000) applied, and why.

    Attributes
    ----------
    decision : {'esa_dn', 'offset_applied', 'inconclusive'}
        'esa_dn': ESA's DNs (reflectance = (DN - 1000) / 10000 from baseline 04.00);
        'offset_applied': the offset is already in the pixels (reflectance = DN / 10000).
    dark_pixels : int
        Valid (DN > 0) B02/B03/B04 values over SCL dark-area and water pixels.
    median_dn : float
        Their median (NaN without any).
    fraction_below_1000 : float
        Their fraction below DN 1000 (negative reflectance under ESA's coding).
    """

    decision: str
    dark_pixels: int
    median_dn: float
    fraction_below_1000: float

    def as_dict(self) -> dict:
        return {"decision": self.decision, "dark_pixels": self.dark_pixels, "median_dn": self.median_dn,
                "fraction_below_1000": self.fraction_below_1000}


def offset_evidence(dn_bands: list[NDArray], scl: NDArray, min_pixels: int = MIN_DARK_PIXELS) -> OffsetEvidence:
    """Decide from the pixels whether BOA_ADD_OFFSET was already applied to a baseline >= 04.00 product.

    Under ESA's coding a non-negative reflectance has DN >= 1000, so dark surfaces (water,
    topographic shadow: visible reflectance 0.01-0.06) sit at DN 1100-1600; with the offset
    pre-applied they sit at 100-600. The median DN of the dark pixels decides: below 900
    'offset_applied', above 1100 'esa_dn'; in between, or with fewer than ``min_pixels`` dark
    values (no water or shadow, a cloudy scene), 'inconclusive'.

    Parameters
    ----------
    dn_bands : list of ndarray
        B02, B03, B04 DNs (uint16, 0 no data), on the grid of ``scl``.
    scl : ndarray
        Scene classification (uint8).
    """
    dark = np.isin(scl, DARK_SCL_CLASSES)
    values = np.concatenate([np.asarray(b)[dark & (np.asarray(b) > 0)].astype(np.float64) for b in dn_bands])
    n = int(values.size)
    if n == 0:
        return OffsetEvidence("inconclusive", 0, float("nan"), float("nan"))
    median = float(np.median(values))
    below = float((values < 1000).mean())
    if n < min_pixels:
        decision = "inconclusive"
    elif median < 900:
        decision = "offset_applied"
    elif median > 1100:
        decision = "esa_dn"
    else:
        decision = "inconclusive"
    return OffsetEvidence(decision, n, median, below)
