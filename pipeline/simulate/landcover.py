"""Land cover shared by both sensors, seasonal snow, and per-class C-band backscatter.

Pure numerics on map grids (rows north to south).

Classes (uint8): 0 water, 1 built-up, 2 meadow/fields, 3 forest, 4 bare rock,
5 glacier/permanent snow. Seasonal snow is a separate boolean layer per date.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray


class Cover(IntEnum):
    WATER = 0
    BUILT_UP = 1
    MEADOW = 2
    FOREST = 3
    ROCK = 4
    GLACIER = 5


COVER_NAMES = {c.value: c.name.lower() for c in Cover}
#: the classes seasonal snow replaces in the radar (open ground; forest and built-up stay themselves)
SNOW_CAN_COVER = (Cover.MEADOW, Cover.ROCK, Cover.GLACIER)


def classify(
    height_m: NDArray,
    slope_deg: NDArray,
    aspect_deg: NDArray,
    water: NDArray[np.bool_],
    valley: NDArray,
    noise: tuple[NDArray, NDArray, NDArray],
    treeline_m: float = 2000.0,
    glacier_m: float = 3000.0,
) -> NDArray[np.uint8]:
    """Land cover from terrain.

    Parameters
    ----------
    height_m, slope_deg, aspect_deg : arrays
        Orthometric height (m), slope (deg) and aspect (deg clockwise from north, downslope).
    water : bool array
        Lake surfaces.
    valley : array
        0 on valley floors, 1 on mountain sides.
    noise : three arrays in [-1, 1]
        Smooth random fields (settlements, treeline jitter, patchiness).
    treeline_m : float
        Mean treeline; lower on steep and north-facing slopes.
    glacier_m : float
        Lower limit of glaciers on north-facing slopes (south-facing: +300 m).
    """
    n_settle, n_tree, n_patch = noise
    north = np.cos(np.radians(aspect_deg))  # +1 facing north
    cover = np.full(height_m.shape, Cover.MEADOW, np.uint8)
    treeline = treeline_m - 150.0 * north - 4.0 * np.maximum(slope_deg - 25.0, 0.0) + 150.0 * n_tree
    forest = (height_m < treeline) & (slope_deg < 48.0) & (n_patch > -0.45) & (valley > 0.05)
    cover[forest] = Cover.FOREST
    rock = (slope_deg > 42.0 + 6.0 * n_patch) | (height_m > 2750.0 + 150.0 * n_tree)
    cover[rock] = Cover.ROCK
    glacier = (height_m > glacier_m + 150.0 * (1.0 - north) + 100.0 * n_patch) & (slope_deg < 38.0)
    cover[glacier] = Cover.GLACIER
    built = (valley < 0.08) & (slope_deg < 6.0) & (n_settle > 0.35)
    cover[built] = Cover.BUILT_UP
    cover[water] = Cover.WATER
    return cover


def seasonal_snow(
    height_m: NDArray, slope_deg: NDArray, aspect_deg: NDArray, noise: NDArray, snow_line_m: float
) -> NDArray[np.bool_]:
    """Seasonal snow above the date's snow line (lower on north faces), not on slopes over 50 deg."""
    north = np.cos(np.radians(aspect_deg))
    line = snow_line_m - 150.0 * north + 120.0 * noise
    return (height_m > line) & (slope_deg < 50.0)


@dataclass(frozen=True)
class Backscatter:
    """sigma0 (linear, per unit true surface area) = 10^(dB/10) * (cos theta_l / cos 38 deg)^p."""

    vv_db: float
    vh_db: float
    exponent: float


#: Per-class C-band backscatter at 38 deg local incidence, and its fall with the local incidence angle.
#: The exponents carry the relief, which dominates Sentinel-1 over mountains (Small 2011, "Flattening
#: Gamma", IEEE TGRS 49(8)): a volume (forest) keeps gamma0 = sigma0 / cos(theta) about constant
#: (p = 1); rough surfaces (meadow, rock, wet snow) fall faster (p = 2.5-3: about 0.15-0.2 dB/deg at
#: 38 deg, several dB between 20 and 60 deg); water, specular, fastest. Wet snow sits about 6 dB under
#: snow-free ground, beyond the -2 to -3 dB ratio used to map it (Nagler et al. 2016, Remote Sensing
#: 8(4), 348). The magnitudes are typical Sentinel-1 IW values, not fitted to a cited survey.
BACKSCATTER: dict[str, Backscatter] = {
    "water": Backscatter(-21.0, -28.0, 6.0),  # specular: falls fast with incidence
    # built-up ground between buildings (streets, gardens, roofs turned away) ...
    "built_up": Backscatter(-9.0, -16.0, 1.0),
    # ... and its cells holding a building wall that faces the radar across open ground: a dihedral
    # (double bounce: strong, co-polarised, little dependence on the ground's tilt)
    "built_up_scatterer": Backscatter(5.0, -5.0, 0.0),
    "meadow": Backscatter(-11.0, -18.5, 3.0),  # rough surface
    "forest": Backscatter(-9.0, -15.0, 1.0),  # volume
    "rock": Backscatter(-10.0, -17.5, 2.5),
    "glacier": Backscatter(-10.0, -17.0, 2.0),  # dry firn: volume from the snowpack
    "dry_snow": Backscatter(-11.5, -19.5, 2.5),
    "wet_snow": Backscatter(-17.0, -24.5, 3.0),  # liquid water absorbs
}

REFERENCE_INCIDENCE_DEG = 38.0
#: share of built-up 10 m cells that hold a double-bounce scatterer (area mean with the rest: VV
#: about -2.4 dB, VH -11.6 dB, as bright as Alpine villages; median the darker ground's)
BUILT_UP_SCATTERER_FRACTION = 0.15


def built_up_scatterers(cover: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.bool_]:
    """The built-up cells (a random :data:`BUILT_UP_SCATTERER_FRACTION` of them) that hold a
    double-bounce scatterer; drawn once per world, since buildings stay where they are."""
    draw = rng.random(cover.shape, dtype=np.float32)
    return (cover == Cover.BUILT_UP) & (draw < BUILT_UP_SCATTERER_FRACTION)


def sigma0(
    cover: NDArray[np.uint8],
    snow: NDArray[np.bool_],
    wet_snow: bool,
    cos_local_incidence: NDArray,
    polarisation: str,
    texture_db: NDArray | None = None,
    scatterers: NDArray[np.bool_] | None = None,
) -> NDArray[np.float32]:
    """Backscatter coefficient (linear) per surface element; 0 where the element faces away.
    ``scatterers``: built-up cells with a double-bounce scatterer (:func:`built_up_scatterers`);
    ``texture_db`` (dB) multiplies every element but those."""
    pol = polarisation.lower()
    cos_ref = np.cos(np.radians(REFERENCE_INCIDENCE_DEG))
    c = np.clip(cos_local_incidence, 0.0, 1.0)
    out = np.zeros(cover.shape, np.float32)
    keys = {Cover.WATER: "water", Cover.BUILT_UP: "built_up", Cover.MEADOW: "meadow",
            Cover.FOREST: "forest", Cover.ROCK: "rock", Cover.GLACIER: "glacier"}
    for cls, key in keys.items():
        m = cover == cls
        if cls in SNOW_CAN_COVER:
            m = m & ~snow
        _assign(out, m, BACKSCATTER[key], pol, c, cos_ref)
    snowy = snow & np.isin(cover, SNOW_CAN_COVER)
    _assign(out, snowy, BACKSCATTER["wet_snow" if wet_snow else "dry_snow"], pol, c, cos_ref)
    # forest stays forest under snow, built-up too; wet snow on the ground darkens forest a little
    if wet_snow:
        out[snow & (cover == Cover.FOREST)] *= 10 ** (-1.5 / 10)
    if texture_db is not None:
        out *= (10 ** (texture_db / 10)).astype(np.float32)
    if scatterers is not None:
        points = scatterers & (cover == Cover.BUILT_UP)
        _assign(out, points, BACKSCATTER["built_up_scatterer"], pol, c, cos_ref)
    return out


def _assign(out: NDArray, mask: NDArray, b: Backscatter, pol: str, c: NDArray, cos_ref: float) -> None:
    if not mask.any():
        return
    db = b.vv_db if pol == "vv" else b.vh_db
    out[mask] = 10 ** (db / 10) * (c[mask] / cos_ref) ** b.exponent
