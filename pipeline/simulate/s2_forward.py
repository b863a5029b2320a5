"""Forward model of a Sentinel-2 L2A scene: surface reflectance, terrain illumination, clouds, SCL.

Pure numerics on the world's 10 m map grid (rows north to south).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.simulate import terrain
from pipeline.simulate.landcover import Cover

BANDS = ("B02", "B03", "B04")  # blue, green, red

#: Surface reflectance (B02, B03, B04) per cover, summer / winter (dormant vegetation).
REFLECTANCE = {
    Cover.WATER: ((0.045, 0.065, 0.035), (0.040, 0.050, 0.030)),
    Cover.BUILT_UP: ((0.100, 0.110, 0.125), (0.100, 0.110, 0.120)),
    Cover.MEADOW: ((0.035, 0.075, 0.045), (0.055, 0.075, 0.090)),
    Cover.FOREST: ((0.020, 0.040, 0.022), (0.020, 0.035, 0.025)),
    Cover.ROCK: ((0.110, 0.130, 0.150), (0.110, 0.130, 0.150)),
    Cover.GLACIER: ((0.750, 0.760, 0.740), (0.850, 0.850, 0.830)),
}
SNOW = (0.880, 0.880, 0.860)
CLOUD = (0.700, 0.700, 0.690)
CIRRUS = (0.080, 0.080, 0.080)


class SCL:
    """Scene classification values (L2A)."""

    NO_DATA = 0
    SATURATED = 1
    DARK_AREA = 2
    CLOUD_SHADOW = 3
    VEGETATION = 4
    NOT_VEGETATED = 5
    WATER = 6
    UNCLASSIFIED = 7
    CLOUD_MEDIUM = 8
    CLOUD_HIGH = 9
    THIN_CIRRUS = 10
    SNOW = 11


def sun_angles(time_utc: np.datetime64, lat_deg: float, lon_deg: float) -> tuple[float, float]:
    """Solar zenith and azimuth (deg, azimuth clockwise from north) by NOAA's low-precision formulas (~0.1 deg)."""
    t = np.datetime64(time_utc, "s").astype(object)
    doy = t.timetuple().tm_yday
    hours = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * np.pi / 365 * (doy - 1 + (hours - 12) / 24)
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                       - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    true_solar_min = hours * 60 + eqtime + 4 * lon_deg
    ha = np.radians(true_solar_min / 4 - 180)
    lat = np.radians(lat_deg)
    cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(ha)
    zen = np.arccos(np.clip(cos_z, -1, 1))
    az = np.degrees(np.arctan2(np.sin(ha), np.cos(ha) * np.sin(lat) - np.tan(decl) * np.cos(lat))) + 180
    return float(np.degrees(zen)), float(az % 360)


def cast_shadow(height_m: NDArray, pixel_m: float, sun_zenith_deg: float, sun_azimuth_deg: float,
                max_distance_m: float = 6000.0) -> NDArray[np.bool_]:
    """Pixels whose line of sight to the sun is blocked by terrain (ray marching towards the sun)."""
    h = np.asarray(height_m, dtype=np.float32)
    rows, cols = h.shape
    tan_elev = np.tan(np.radians(90.0 - sun_zenith_deg))
    az = np.radians(sun_azimuth_deg)
    shadow = np.zeros(h.shape, bool)
    distances = np.unique(np.round(np.geomspace(pixel_m, max_distance_m, 120) / pixel_m).astype(int))
    for d in distances:
        dx = int(round(d * np.sin(az)))  # towards the sun: east component (cols)
        dy = int(round(-d * np.cos(az)))  # north is -rows
        if abs(dx) >= cols or abs(dy) >= rows:
            break
        dist = np.hypot(dx, dy) * pixel_m
        src_r = slice(max(dy, 0), rows + min(dy, 0))
        dst_r = slice(max(-dy, 0), rows + min(-dy, 0))
        src_c = slice(max(dx, 0), cols + min(dx, 0))
        dst_c = slice(max(-dx, 0), cols + min(-dx, 0))
        shadow[dst_r, dst_c] |= h[src_r, src_c] > h[dst_r, dst_c] + dist * tan_elev
    return shadow


def illumination(slope_deg: NDArray, aspect_deg: NDArray, sun_zenith_deg: float, sun_azimuth_deg: float) -> NDArray:
    """cos of the local solar incidence angle (negative: self-shadowed)."""
    s, a = np.radians(slope_deg), np.radians(aspect_deg)
    z, phi = np.radians(sun_zenith_deg), np.radians(sun_azimuth_deg)
    return np.cos(z) * np.cos(s) + np.sin(z) * np.sin(s) * np.cos(phi - a)


@dataclass(frozen=True)
class OpticalScene:
    """A simulated L2A scene: reflectance (3, rows, cols) in B02, B03, B04 order, SCL at 10 m, cloud stats."""

    reflectance: NDArray[np.float32]
    scl: NDArray[np.uint8]
    sun_zenith_deg: float
    sun_azimuth_deg: float
    cloud_percent: float
    snow_percent: float


def threshold_for_fraction(field: NDArray, fraction: float) -> float:
    """The value above which ``fraction`` of ``field`` lies."""
    if fraction <= 0:
        return float(np.inf)
    return float(np.quantile(field, 1.0 - min(fraction, 1.0)))


def simulate_optical(
    rng: np.random.Generator,
    cover: NDArray[np.uint8],
    snow: NDArray[np.bool_],
    height_m: NDArray,
    slope_deg: NDArray,
    aspect_deg: NDArray,
    pixel_m: float,
    sun_zenith_deg: float,
    sun_azimuth_deg: float,
    cloud_fraction: float,
    winter: bool,
    cloud_height_m: float = 2500.0,
) -> OpticalScene:
    """Surface reflectance under the sun and the clouds of one date, with its scene classification."""
    shape = cover.shape
    rho = np.zeros((3,) + shape, np.float32)
    for cls, (summer_r, winter_r) in REFLECTANCE.items():
        m = cover == cls
        rho[:, m] = np.array(winter_r if winter else summer_r, np.float32)[:, None]
    snowy = snow & (cover != Cover.WATER)
    rho[:, snowy] = np.array(SNOW, np.float32)[:, None]
    texture = 1.0 + 0.18 * terrain.fractal_noise(rng, shape, (pixel_m, pixel_m), 400.0, 4)
    rho *= texture[None]

    # terrain illumination: Minnaert-like direct part plus a diffuse sky part
    cos_i = illumination(slope_deg, aspect_deg, sun_zenith_deg, sun_azimuth_deg)
    cast = cast_shadow(height_m, pixel_m, sun_zenith_deg, sun_azimuth_deg)
    lit = np.clip(cos_i, 0.0, None) / np.cos(np.radians(sun_zenith_deg))
    lit[cast] = 0.0
    diffuse = 0.18
    rho *= (diffuse + (1 - diffuse) * lit)[None]
    terrain_dark = (cos_i <= 0.05) | cast

    # clouds: thresholded fBm with soft edges; thin cirrus; shadows displaced along the sun azimuth
    field = terrain.fractal_noise(rng, shape, (pixel_m, pixel_m), 6000.0, 6)
    thr = threshold_for_fraction(field, cloud_fraction)
    opacity = np.clip((field - thr) / 0.08, 0.0, 1.0) if np.isfinite(thr) else np.zeros(shape, np.float32)
    cirrus_field = terrain.fractal_noise(rng, shape, (pixel_m, pixel_m), 12000.0, 4)
    cirrus = np.clip((cirrus_field - threshold_for_fraction(cirrus_field, 0.5 * cloud_fraction)) / 0.2, 0, 0.6) \
        if cloud_fraction > 0 else np.zeros(shape, np.float32)
    shift_m = cloud_height_m * np.tan(np.radians(sun_zenith_deg))
    dx = int(round(-shift_m * np.sin(np.radians(sun_azimuth_deg)) / pixel_m))
    dy = int(round(shift_m * np.cos(np.radians(sun_azimuth_deg)) / pixel_m))
    shadow_opacity = np.zeros(shape, np.float32)
    rows, cols = shape
    if abs(dx) < cols and abs(dy) < rows:
        shadow_opacity[max(dy, 0) : rows + min(dy, 0), max(dx, 0) : cols + min(dx, 0)] = opacity[
            max(-dy, 0) : rows + min(-dy, 0), max(-dx, 0) : cols + min(-dx, 0)
        ]
    rho *= (1.0 - 0.75 * shadow_opacity)[None]
    rho = rho * (1 - cirrus)[None] + np.array(CIRRUS, np.float32)[:, None, None] * cirrus[None] * 2
    rho = rho * (1 - opacity)[None] + np.array(CLOUD, np.float32)[:, None, None] * opacity[None]

    scl = np.full(shape, SCL.VEGETATION, np.uint8)
    scl[np.isin(cover, (Cover.ROCK, Cover.BUILT_UP))] = SCL.NOT_VEGETATED
    scl[cover == Cover.WATER] = SCL.WATER
    scl[terrain_dark & (cover != Cover.WATER)] = SCL.DARK_AREA
    scl[snowy | (cover == Cover.GLACIER)] = SCL.SNOW
    scl[shadow_opacity > 0.3] = SCL.CLOUD_SHADOW
    scl[cirrus > 0.25] = SCL.THIN_CIRRUS
    scl[opacity > 0.2] = SCL.CLOUD_MEDIUM
    scl[opacity > 0.6] = SCL.CLOUD_HIGH
    cloudy = np.isin(scl, (SCL.CLOUD_MEDIUM, SCL.CLOUD_HIGH, SCL.THIN_CIRRUS))
    return OpticalScene(
        reflectance=np.clip(rho, 0.0, 1.5).astype(np.float32),
        scl=scl,
        sun_zenith_deg=sun_zenith_deg,
        sun_azimuth_deg=sun_azimuth_deg,
        cloud_percent=float(100.0 * cloudy.mean()),
        snow_percent=float(100.0 * (scl == SCL.SNOW).mean()),
    )


def scl_to_20m(scl_10m: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """SCL on the 20 m grid: the most frequent class of each 2 x 2 block (ties: the higher class,
    so clouds win over the ground, as the L2A processor favours)."""
    r, c = scl_10m.shape
    blocks = scl_10m[: r - r % 2, : c - c % 2].reshape(r // 2, 2, c // 2, 2).transpose(0, 2, 1, 3).reshape(r // 2, c // 2, 4)
    counts = np.stack([(blocks == k).sum(axis=-1) for k in range(12)], axis=-1)
    # argmax over reversed classes returns the highest class among ties
    return (11 - np.argmax(counts[..., ::-1], axis=-1)).astype(np.uint8)
