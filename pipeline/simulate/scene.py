"""The simulated world in memory: terrain, land cover, radar facets, and the products of each date.

Numerics only (no files): :func:`build_world` makes the static world,
:func:`simulate_sentinel1` and :func:`simulate_sentinel2` the products of
one date. Writers live in :mod:`pipeline.io`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline.dem.prepare import grid_lat_lon, sample_lonlat
from pipeline.core.geodesy import geodetic_to_ecef
from pipeline.dem.geoid import find_grid
from pipeline.core.grid import MapGrid, covering_grid
from pipeline.dem.tiles import LonLatRaster
from pipeline.sar.calibration import interpolate_lut, noise_power
from pipeline.sar.product import RadarGeometry
from pipeline.simulate import landcover, terrain
from pipeline.simulate.orbit_design import CircularOrbit, design_orbit, offset_orbit
from pipeline.simulate.radar_truth import image_coordinates, solve_zero_doppler
from pipeline.simulate.s1_design import ProductDesign, S1Acquisition, design_product
from pipeline.simulate.s1_forward import (
    FacetGeometry,
    Surface,
    digital_numbers,
    facet_geometry,
    point_target_image,
    splat_oversampled,
    terrain_surface,
)
from pipeline.simulate.s2_forward import OpticalScene, simulate_optical, sun_angles
from pipeline.simulate.world import WorldSpec, aoi_grid

POLARISATIONS = ("VV", "VH")
#: trihedral corner reflector, inner leg 1.2 m: RCS = 4 pi a^4 / (3 lambda^2) at C band
CORNER_REFLECTOR_RCS_M2 = 4 * np.pi * 1.2**4 / (3 * (299_792_458.0 / 5.405e9) ** 2)


@dataclass(frozen=True)
class CornerReflector:
    """A point target at a known position (ellipsoidal height)."""

    name: str
    lat_deg: float
    lon_deg: float
    height_m: float
    easting_m: float
    northing_m: float
    rcs_m2: float


@dataclass(frozen=True)
class World:
    """The static simulated world."""

    spec: WorldSpec
    tile_height_m: NDArray[np.float32]  # true orthometric heights, 3601 x 3601
    tile_void: NDArray[np.bool_]
    tile_water: NDArray[np.bool_]
    grid: MapGrid  # 10 m
    height_m: NDArray[np.float32]  # orthometric on grid
    ellipsoidal_height_m: NDArray[np.float32]
    slope_deg: NDArray[np.float32]
    aspect_deg: NDArray[np.float32]
    cover: NDArray[np.uint8]
    snow_noise: NDArray[np.float32]
    texture_db: NDArray[np.float32]
    scatterers: NDArray[np.bool_]  # built-up cells holding a double-bounce scatterer
    surface: Surface  # the grid's terrain (ECEF, normals, areas), whatever the orbit
    #: per pass direction the dates fly ("descending", "ascending"): one facet per grid pixel as the
    #: first date of that pass sees it (corner reflectors are placed where these see open ground)
    facets: dict[str, FacetGeometry]
    #: per pass direction: the reference orbit; each date of that pass flies off it within the orbital tube
    orbits: dict[str, CircularOrbit]
    scene_centre_m: NDArray[np.float64]  # ECEF point the orbit sees at t = 0
    reference_height_m: float
    product_footprint_m: NDArray[np.float64]  # ECEF points every product must cover
    reflectors: tuple[CornerReflector, ...]

    @property
    def hgt_heights(self) -> NDArray[np.int16]:
        """The tile as the HGT file stores it: rounded metres, voids -32768."""
        h = np.round(self.tile_height_m).astype(np.int16)
        h[self.tile_void] = -32768
        return h


def sample_tile(tile: NDArray, south: int, west: int, lat: NDArray, lon: NDArray, order: int = 1) -> NDArray:
    """Values of a 1" tile (rows north to south) at lat/lon (deg): bilinear (order 1) or nearest (0)."""
    return sample_lonlat(LonLatRaster(tile, south + 1.0, float(west), 1.0 / 3600.0), lat, lon, order)


def build_world(spec: WorldSpec, geoid_grid: str | None = None) -> World:
    """Terrain, land cover, the reference orbit of each pass direction with the radar facets of its
    first date, and corner reflectors of a world."""
    rng = np.random.default_rng(spec.seed)
    south, west = spec.tile_south_west
    aoi = aoi_grid(spec)
    region = aoi.expanded(spec.margin_m + 6000.0)
    lat, lon = grid_lat_lon(region.coarsened(100.0))
    rows = (south + 1 - lat) * 3600.0
    cols = (lon - west) * 3600.0
    protect = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    relief = (
        terrain.alpine_terrain(float(south), int(rng.integers(2**31)), protect=protect)
        if spec.relief == "alpine"
        else terrain.flat_terrain(spec.flat_height_m)
    )
    tile_h = np.round(relief.height_m).astype(np.float32)  # the true surface is what SRTM stores
    geoid = find_grid(lat, lon, geoid_grid)
    region_h = sample_tile(tile_h, south, west, lat, lon) + geoid.undulation(lat, lon)

    # the product covers the AOI plus the margin; the world covers what the product sees
    product_area = aoi.expanded(spec.margin_m).coarsened(100.0)
    plat, plon = grid_lat_lon(product_area)
    footprint = geodetic_to_ecef(plat, plon, sample_tile(tile_h, south, west, plat, plon) + geoid.undulation(plat, plon))
    footprint = footprint.reshape(-1, 3)
    centre = geodetic_to_ecef(spec.center_lat, spec.center_lon, float(np.median(region_h)))
    reference_height = float(np.round(np.median(region_h)))
    # one reference orbit per pass direction; the first date of each pass (its orbit and product design)
    # sets what the world must cover (the other dates fly within the orbital tube: the margin covers them)
    first = spec.first_dates
    orbits = {p: design_orbit(centre, spec.track(p).incidence_deg, descending=p == "descending")
              for p in first}
    first_orbits = {p: _date_orbit(spec, orbits[p], centre, i) for p, i in first.items()}
    designs = {p: design_product(first_orbits[p], _acquisition(spec, i), footprint, reference_height)
               for p, i in first.items()}
    # the images are rectangles in (line, pixel), turned against the map by the heading (about 12 deg):
    # their corners reach beyond the AOI by up to a quarter of its side
    candidates = aoi.expanded(spec.margin_m + 6000.0 + 0.25 * spec.aoi_size_m).coarsened(100.0)
    grid = _seen_grid([RadarGeometry(d.annotation) for d in designs.values()], aoi, candidates,
                      ell_of=lambda la, lo: (sample_tile(tile_h, south, west, la, lo)
                                             + geoid.undulation(la, lo)),
                      margin_m=1000.0)

    lat, lon = grid_lat_lon(grid)
    height = sample_tile(tile_h, south, west, lat, lon).astype(np.float32)
    water = sample_tile(relief.water.astype(np.float32), south, west, lat, lon, order=0) > 0.5
    valley = sample_tile(relief.valley, south, west, lat, lon).astype(np.float32)
    ell = (height + geoid.undulation(lat, lon)).astype(np.float32)
    slope, aspect = terrain.slope_aspect(height, (grid.resolution, grid.resolution))
    shape = (grid.height, grid.width)
    pix = (grid.resolution, grid.resolution)
    # the fields that place settlements, jitter the treeline and break up the cover: fBm down to
    # 37-50 m wavelengths, so that cover boundaries are ragged at every scale
    noises = tuple(terrain.unit_range(terrain.fractal_noise(rng, shape, pix, largest, octaves, 0.6))
                   for largest, octaves in ((1500.0, 6), (800.0, 5), (300.0, 3)))
    cover = landcover.classify(height, slope, aspect, water, valley, noises)
    scatterers = landcover.built_up_scatterers(cover, rng)
    snow_noise = terrain.value_noise(rng, shape, pix, 600.0)
    texture_db = (1.2 * terrain.value_noise(rng, shape, pix, 60.0)).astype(np.float32)
    surface = terrain_surface(spec.crs, grid.easting, grid.northing, ell.astype(np.float64))
    facets = {p: facet_geometry(first_orbits[p], designs[p], _acquisition(spec, i).centre_time, surface)
              for p, i in first.items()}

    world = World(
        spec=spec, tile_height_m=tile_h, tile_void=relief.void, tile_water=relief.water, grid=grid,
        height_m=height, ellipsoidal_height_m=ell, slope_deg=slope.astype(np.float32),
        aspect_deg=aspect.astype(np.float32), cover=cover, snow_noise=snow_noise, texture_db=texture_db,
        scatterers=scatterers,
        surface=surface, facets=facets, orbits=orbits, scene_centre_m=centre,
        reference_height_m=reference_height, product_footprint_m=footprint, reflectors=(),
    )
    return dataclasses.replace(world, reflectors=_place_reflectors(world, rng, lat, lon))


def _seen_grid(
    geometries: list[RadarGeometry], aoi: MapGrid, candidates: MapGrid, ell_of, margin_m: float
) -> MapGrid:
    """The grid (aligned with the AOI) of the ground, on its real heights, that falls in any of the images,
    plus a margin."""
    lat, lon = grid_lat_lon(candidates)
    ell = ell_of(lat, lon)
    inside = np.zeros(lat.shape, bool)
    for geometry in geometries:
        line, pixel = geometry.geographic_to_radar(lat, lon, ell)
        image = geometry.annotation.image
        inside |= ((line >= -1) & (line <= image.number_of_lines)
                   & (pixel >= -1) & (pixel <= image.number_of_samples))
    ee, nn = np.meshgrid(candidates.easting, candidates.northing)
    if inside[[0, -1]].any() or inside[:, [0, -1]].any():
        raise RuntimeError(f"the candidate region does not contain the whole image footprint; enlarge it ({inside.sum()} of {inside.size}, rows {np.flatnonzero(inside.any(1))[[0,-1]]}, cols {np.flatnonzero(inside.any(0))[[0,-1]]})")
    grid = covering_grid(aoi, ee[inside], nn[inside], margin_m + candidates.resolution)
    # even sizes, so that the 20 m Sentinel-2 grid nests exactly
    return MapGrid(grid.epsg, grid.left, grid.top, grid.resolution, grid.width + grid.width % 2, grid.height + grid.height % 2)


def _acquisition(spec: WorldSpec, index: int) -> S1Acquisition:
    date = spec.dates[index]
    # Sentinel-1 flies 175 orbits in its 12-day repeat cycle
    orbits_since_first = (date.s1_time - spec.dates[0].s1_time) / np.timedelta64(12, "D") * 175
    absolute = spec.first_absolute_orbit + int(round(orbits_since_first))
    return S1Acquisition(
        mission=spec.mission,
        centre_time=date.s1_time,
        absolute_orbit=absolute,
        relative_orbit=spec.track(date.pass_direction).relative_orbit,
        data_take_id=(0x03A000 + 0x1D3 * index + spec.seed) & 0xFFFFFF,
    )


def _place_reflectors(world: World, rng: np.random.Generator, lat: NDArray, lon: NDArray) -> tuple[CornerReflector, ...]:
    """Reflectors on open, flat ground inside the AOI that every pass sees (no layover), at least 1 km
    apart."""
    grid, spec = world.grid, world.spec
    vis10 = np.logical_and.reduce([f.visible & ~f.layover for f in world.facets.values()])
    ok = (
        (world.cover == landcover.Cover.MEADOW)  # open ground as at calibration sites (no buildings)
        & (ndimage.maximum_filter(world.slope_deg, 5) < 4.0)
        & ndimage.binary_erosion(vis10, iterations=3)
    )
    aoi = aoi_grid(spec)
    inner = np.zeros_like(ok)
    r0 = int(round((grid.top - aoi.top) / grid.resolution))
    c0 = int(round((aoi.left - grid.left) / grid.resolution))
    inner[r0 + 20 : r0 + aoi.height - 20, c0 + 20 : c0 + aoi.width - 20] = True
    candidates = np.argwhere(ok & inner)
    rng.shuffle(candidates)
    chosen: list[tuple[int, int]] = []
    for r, c in candidates:
        if all((r - r2) ** 2 + (c - c2) ** 2 > 100**2 for r2, c2 in chosen):
            chosen.append((int(r), int(c)))
        if len(chosen) == spec.corner_reflectors:
            break
    out = []
    for i, (r, c) in enumerate(chosen):
        out.append(
            CornerReflector(
                name=f"CR{i + 1:02d}", lat_deg=float(lat[r, c]), lon_deg=float(lon[r, c]),
                height_m=float(world.ellipsoidal_height_m[r, c]), easting_m=float(grid.easting[c]),
                northing_m=float(grid.northing[r]), rcs_m2=float(CORNER_REFLECTOR_RCS_M2),
            )
        )
    return tuple(out)


def date_orbit(world: World, index: int) -> CircularOrbit:
    """The orbit of date ``index``: its pass's reference orbit offset radially and east-west by normal
    draws of RMS ``spec.orbit_tube_m`` (seeded per date); the reference orbit itself when 0."""
    reference = world.orbits[world.spec.dates[index].pass_direction]
    return _date_orbit(world.spec, reference, world.scene_centre_m, index)


def _date_orbit(spec: WorldSpec, reference: CircularOrbit, centre_m: NDArray, index: int) -> CircularOrbit:
    if spec.orbit_tube_m == 0:
        return reference
    radial, east = np.random.default_rng([spec.seed, index, 3]).normal(0.0, spec.orbit_tube_m, 2)
    return offset_orbit(reference, centre_m, float(radial), float(east),
                        descending=spec.dates[index].pass_direction == "descending")


def baseline_m(reference: CircularOrbit, orbit: CircularOrbit, target_m: NDArray) -> tuple[float, float]:
    """(perpendicular, parallel) baseline (m) of ``orbit`` against ``reference`` seen from the target:
    the offset between the two antennas at the target's zero-Doppler times, across and along the line
    of sight (perpendicular positive when the orbit is further from the target's zenith)."""
    a = solve_zero_doppler(reference, target_m)
    b = solve_zero_doppler(orbit, target_m)
    s_a, _ = reference.state(a.time_s)
    s_b, _ = orbit.state(b.time_s)
    offset = s_b - s_a
    parallel = float(np.dot(offset, a.line_of_sight))
    across = offset - parallel * a.line_of_sight
    up = target_m / np.linalg.norm(target_m)
    sign = -1.0 if np.dot(across, up) > 0 else 1.0
    return sign * float(np.linalg.norm(across)), parallel


@dataclass(frozen=True)
class Sentinel1Scene:
    """One simulated GRD acquisition in memory."""

    acquisition: S1Acquisition
    design: ProductDesign  # VV; ``design.for_polarisation('VH')`` for VH
    dn: dict[str, NDArray[np.uint16]]
    sigma0_true: dict[str, NDArray[np.float32]]  # noise-free, speckle-free, radar geometry (linear)
    reflector_radar: tuple[tuple[float, float], ...]  # exact zero-based (line, pixel) per reflector
    facets: FacetGeometry  # this date's geometry, visibility and layover of the world grid
    baseline_m: tuple[float, float]  # (perpendicular, parallel) against the reference orbit


def simulate_sentinel1(world: World, index: int) -> Sentinel1Scene:
    """The VV and VH GRD images of date ``index``."""
    spec = world.spec
    date = spec.dates[index]
    rng = np.random.default_rng([spec.seed, index, 1])
    acq = _acquisition(spec, index)
    orbit = date_orbit(world, index)
    reference = world.orbits[date.pass_direction]
    geometry_design = design_product(orbit, acq, world.product_footprint_m, world.reference_height_m)
    if index == spec.first_dates[date.pass_direction] or orbit is reference:  # the world's facets are its own
        f = world.facets[date.pass_direction]
    else:
        f = facet_geometry(orbit, geometry_design, acq.centre_time, world.surface)
    image = geometry_design.annotation.image
    shape = (image.number_of_lines, image.number_of_samples)
    lines, pixels = np.arange(shape[0]), np.arange(shape[1])
    sigma_lut = interpolate_lut(geometry_design.calibration.sigma_nought, lines, pixels)
    noise = noise_power(geometry_design.noise.range_vectors, geometry_design.noise.azimuth_blocks, lines, pixels)
    snow = landcover.seasonal_snow(world.height_m, world.slope_deg, world.aspect_deg, world.snow_noise, date.snow_line_m)
    pixel_area = image.range_pixel_spacing_m * geometry_design.azimuth_pixel_spacing_m
    reflector_rc = []
    for cr in world.reflectors:
        # the simulator's own solver on the analytic orbit (not the pipeline's geocoding)
        zd = solve_zero_doppler(orbit, geodetic_to_ecef(cr.lat_deg, cr.lon_deg, cr.height_m))
        line, pixel = image_coordinates(geometry_design, acq.centre_time, zd.time_s, zd.slant_range_m)
        reflector_rc.append((float(line), float(pixel)))
    dn, truth = {}, {}
    visible = f.visible
    power = [np.where(visible, landcover.sigma0(world.cover, snow, date.wet_snow, f.cos_local_incidence, pol,
                                                world.texture_db, world.scatterers) * f.area_m2, 0.0)
             for pol in POLARISATIONS]
    images = splat_oversampled(f.line, f.pixel, power, shape, spec.splat_oversampling)
    del power
    for pol, rendered in zip(POLARISATIONS, images):
        sigma0_radar = rendered / pixel_area
        points = np.zeros(shape)
        for cr, (line, pixel) in zip(world.reflectors, reflector_rc):
            window, values = point_target_image(line, pixel, cr.rcs_m2 * (1.0 if pol == "VV" else 0.01), shape, pixel_area)
            points[window] += values
        dn[pol] = digital_numbers(sigma0_radar, sigma_lut, noise, rng, spec.enl, points)
        truth[pol] = (sigma0_radar + points).astype(np.float32)
    return Sentinel1Scene(acq, geometry_design, dn, truth, tuple(reflector_rc), f,
                          baseline_m(reference, orbit, world.scene_centre_m))


def s2_tile_name(spec: WorldSpec) -> str:
    """A plausible MGRS tile id for the AOI's UTM zone (the simulated world has one granule)."""
    zone = spec.utm_epsg % 100
    bands = "CDEFGHJKLMNPQRSTUVWX"
    band = bands[int((spec.center_lat + 80) // 8)]
    return f"{zone:02d}{band}LR"


def simulate_sentinel2(world: World, index: int) -> OpticalScene:
    """The L2A scene of date ``index`` on the world grid."""
    spec = world.spec
    date = spec.dates[index]
    rng = np.random.default_rng([spec.seed, index, 2])
    zenith, azimuth = sun_angles(date.s2_time, spec.center_lat, spec.center_lon)
    snow = landcover.seasonal_snow(world.height_m, world.slope_deg, world.aspect_deg, world.snow_noise,
                                   date.snow_line_m)
    month = int(str(np.datetime64(date.s2_time, "M"))[-2:])
    return simulate_optical(
        rng, world.cover, snow, world.height_m, world.slope_deg, world.aspect_deg, world.grid.resolution,
        zenith, azimuth, date.cloud_fraction, winter=month in (11, 12, 1, 2, 3, 4),
    )
