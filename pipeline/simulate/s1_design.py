"""Design of a simulated Sentinel-1 IW GRDH product: timing, range sampling, metadata grids.

Pure numerics. Builds the same :class:`~pipeline.sar.annotation.ProductAnnotation`
that the reader parses, with ESA's conventions (see the Sentinel-1 section of
shared/reference/s1-geometry.md):

- ground range is the arc length along the WGS84 ellipsoid raised by the
  reference terrain height, in the zero-Doppler plane, from the first
  sample; ``srgrCoefficients``/``grsrCoefficients`` records 1 s apart, each
  exact at its own azimuth time (readers must use the nearest record);
- image lines carry the bistatic delay: line time = t_zd - (tau - tau_mid) / 2;
- the geolocation grid's incidence angle is geocentric, its elevation angle
  is measured at the satellite from nadir;
- calibration LUTs follow the real IW GRD relations: betaNought = dn = const,
  sigmaNought = beta / sqrt(sin theta_e), gamma = beta / sqrt(tan theta_e),
  with theta_e the ellipsoid incidence angle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.core.constants import SPEED_OF_LIGHT_M_S, WGS84_A_M, WGS84_B_M
from pipeline.core.geodesy import ecef_to_geodetic, ellipsoid_normal, geodetic_to_ecef
from pipeline.sar.annotation import (
    AdsHeader,
    CalibrationAnnotation,
    CoordinateConversion,
    GeolocationGrid,
    ImageInformation,
    NoiseAnnotation,
    ProductAnnotation,
)
from pipeline.sar.calibration import LutVectors, NoiseAzimuthBlock
from pipeline.sar.geocoding import elevation_angle_deg, incidence_angle_deg, slant_to_ground_range, zero_doppler_time
from pipeline.sar.orbit import Orbit, OrbitPolynomial
from pipeline.sar.product import RadarGeometry
from pipeline.simulate.orbit_design import CircularOrbit, ascending_node_time_s, state_vectors

RADAR_FREQUENCY_HZ = 5.405000454334350e09
RANGE_SAMPLING_RATE_HZ = 6.434523812571428e07
BETA_NOUGHT_DN = 474.0
SRGR_DEGREE = 5
SRGR_COUNT = 9  # coefficients written per record, as in real products


@dataclass(frozen=True)
class S1Acquisition:
    """Identity and timing of one simulated acquisition.

    ``centre_time`` is the zero-Doppler time (UTC) of the scene centre.
    """

    mission: str
    centre_time: np.datetime64
    absolute_orbit: int
    relative_orbit: int
    data_take_id: int


@dataclass(frozen=True)
class ProductDesign:
    """Everything a product's metadata files hold, for one polarisation-independent geometry."""

    annotation: ProductAnnotation
    calibration: CalibrationAnnotation
    noise: NoiseAnnotation
    nesz_db: NDArray[np.float64]  # per calibration pixel of the first vector (for documentation)
    ascending_node_time: np.datetime64
    azimuth_pixel_spacing_m: float

    def for_polarisation(self, pol: str) -> "ProductDesign":
        """The same design with the polarisation in every header."""
        header = dataclasses.replace(self.annotation.header, polarisation=pol)
        return dataclasses.replace(
            self,
            annotation=dataclasses.replace(self.annotation, header=header),
            calibration=dataclasses.replace(self.calibration, polarisation=pol),
            noise=dataclasses.replace(self.noise, polarisation=pol),
        )


def _to_ns(epoch: np.datetime64, seconds: float) -> np.datetime64:
    return epoch + np.timedelta64(int(round(seconds * 1e9)), "ns")


def _zero_doppler_frame(s: NDArray, v: NDArray) -> tuple[NDArray, NDArray]:
    """Unit vectors of the zero-Doppler plane: towards nadir and to the right of the track."""
    vhat = v / np.linalg.norm(v)
    down = -(s - np.dot(s, vhat) * vhat)
    down /= np.linalg.norm(down)
    right = np.cross(vhat, s / np.linalg.norm(s))
    right -= np.dot(right, vhat) * vhat
    right /= np.linalg.norm(right)
    return down, right


def ground_profile(
    s: NDArray, v: NDArray, height_m: float, look_deg: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points (n, 3) and slant ranges (n,) where look directions in the zero-Doppler plane
    hit the ellipsoid raised by ``height_m`` (axes a + h, b + h)."""
    down, right = _zero_doppler_frame(s, v)
    look = np.radians(look_deg)
    d = np.cos(look)[:, None] * down + np.sin(look)[:, None] * right
    a2, b2 = (WGS84_A_M + height_m) ** 2, (WGS84_B_M + height_m) ** 2
    w = np.array([1 / a2, 1 / a2, 1 / b2])
    qa = np.sum(d * d * w, axis=1)
    qb = 2 * np.sum(d * s * w, axis=1)
    qc = np.sum(s * s * w) - 1.0
    r = (-qb - np.sqrt(qb**2 - 4 * qa * qc)) / (2 * qa)
    return s + r[:, None] * d, r


def _arc_length(points: NDArray) -> NDArray[np.float64]:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def _fit_raw(x: NDArray, y: NDArray, degree: int) -> NDArray[np.float64]:
    """Least-squares polynomial y(x), coefficients of raw powers of x (increasing), padded to SRGR_COUNT."""
    poly = np.polynomial.Polynomial.fit(x, y, degree)
    coef = poly.convert().coef
    return np.concatenate([coef, np.zeros(SRGR_COUNT - coef.size)])


def design_product(
    orbit: CircularOrbit,
    acquisition: S1Acquisition,
    footprint_m: NDArray[np.float64],
    reference_height_m: float,
    margin_s: float = 0.1,
    margin_m: float = 300.0,
    range_pixel_spacing_m: float = 10.0,
    azimuth_pixel_spacing_m: float = 10.0,
    nesz_db: float = -24.0,
) -> ProductDesign:
    """Timing, sampling and metadata of a GRD product that covers ``footprint_m``.

    Parameters
    ----------
    orbit : CircularOrbit
        Orbit whose t = 0 is ``acquisition.centre_time``.
    acquisition : S1Acquisition
        Mission, time and identifiers.
    footprint_m : (k, 3) array
        ECEF points (corners at their lowest and highest heights) to cover.
    reference_height_m : float
        Ellipsoidal height of the ground range reference surface and of the
        geolocation grid (the annotation's terrainHeight).
    margin_s, margin_m : float
        Extra azimuth time and slant range around the footprint.
    """
    design_epoch = acquisition.centre_time
    sv = state_vectors(orbit, design_epoch, -95.0, 95.0)
    poly = OrbitPolynomial(sv)
    t_fp = zero_doppler_time(poly, footprint_m, 0.0)
    r_fp = np.linalg.norm(footprint_m - poly.position(t_fp), axis=-1)
    s_c, v_c = orbit.state(0.0)
    p_c = footprint_m.mean(axis=0)
    ground_speed = np.linalg.norm(v_c) * np.linalg.norm(p_c) / np.linalg.norm(s_c)
    dt = azimuth_pixel_spacing_m / ground_speed
    t_first = float(t_fp.min() - margin_s)
    n_lines = int(np.ceil((t_fp.max() + margin_s - t_first) / dt)) + 1
    first_line_time = _to_ns(design_epoch, t_first)
    shift = float((first_line_time - design_epoch) / np.timedelta64(1, "ns")) * 1e-9
    orbit_rel = Orbit(first_line_time, sv.time_s - shift, sv.position_m, sv.velocity_m_s)
    t_last = (n_lines - 1) * dt

    r_near = float(r_fp.min() - margin_m)
    r_far = float(r_fp.max() + margin_m)

    # slant <-> ground range records, 1 s apart, each exact at its own time
    record_times = np.arange(-2.0, t_last + 2.0 + 1e-9, 1.0)
    looks = np.linspace(15.0, 50.0, 6000)
    srgr, grsr = [], []
    for t in record_times:
        s, v = orbit.state(t + shift)
        points, ranges = ground_profile(s, v, reference_height_m, looks)
        gr = _arc_length(points)
        gr -= np.interp(r_near, ranges, gr)
        sel = (ranges > r_near - 3000) & (ranges < r_far + 3000)
        srgr.append(_fit_raw(ranges[sel] - r_near, gr[sel], SRGR_DEGREE))
        grsr.append(_fit_raw(gr[sel], ranges[sel], SRGR_DEGREE))
    srgr_a, grsr_a = np.array(srgr), np.array(grsr)
    gr_far = float(np.polynomial.polynomial.polyval(r_far - r_near, srgr_a[len(srgr_a) // 2]))
    n_samples = int(np.ceil(gr_far / range_pixel_spacing_m)) + 1
    conversion = CoordinateConversion(
        azimuth_time_s=record_times,
        slant_range_time_s=np.full(record_times.size, 2 * r_near / SPEED_OF_LIGHT_M_S),
        sr0_m=np.full(record_times.size, r_near),
        srgr=srgr_a,
        gr0_m=np.zeros(record_times.size),
        grsr=grsr_a,
    )

    header = AdsHeader(
        mission_id=acquisition.mission,
        product_type="GRD",
        polarisation="VV",
        mode="IW",
        swath="IW",
        start_time=first_line_time,
        stop_time=_to_ns(first_line_time, t_last),
        absolute_orbit=acquisition.absolute_orbit,
        mission_data_take_id=acquisition.data_take_id,
    )
    image = ImageInformation(
        first_line_time=first_line_time,
        last_line_time_s=t_last,
        ascending_node_time=_to_ns(design_epoch, ascending_node_time_s(orbit)),
        slant_range_time_s=2 * r_near / SPEED_OF_LIGHT_M_S,
        range_pixel_spacing_m=range_pixel_spacing_m,
        azimuth_pixel_spacing_m=azimuth_pixel_spacing_m,
        azimuth_time_interval_s=dt,
        number_of_samples=n_samples,
        number_of_lines=n_lines,
        incidence_angle_mid_swath_deg=0.0,
    )
    placeholder = GeolocationGrid(*(np.zeros(1) for _ in range(9)))
    s_mid, v_mid = orbit.state(shift + 0.5 * t_last)
    heading = _heading_deg(s_mid, v_mid)
    annotation = ProductAnnotation(
        header=header,
        pass_direction="Descending" if v_c[2] < 0 else "Ascending",
        platform_heading_deg=heading,
        radar_frequency_hz=RADAR_FREQUENCY_HZ,
        range_sampling_rate_hz=RANGE_SAMPLING_RATE_HZ,
        image=image,
        orbit=orbit_rel,
        coordinate_conversion=conversion,
        geolocation_grid=placeholder,
        terrain_height_m=reference_height_m,
        bistatic_delay_applied=True,
    )
    geometry = RadarGeometry(annotation)
    grid = geolocation_grid(geometry, reference_height_m, footprint_m.mean(axis=0))
    mid = np.argmin(np.abs(grid.pixel - (n_samples - 1) / 2) + np.abs(grid.line - grid.line.max() / 2))
    image = dataclasses.replace(image, incidence_angle_mid_swath_deg=float(grid.incidence_angle_deg[mid]))
    annotation = dataclasses.replace(annotation, geolocation_grid=grid, image=image)

    calibration, noise, nesz = _radiometric_luts(annotation, geometry, reference_height_m, nesz_db)
    return ProductDesign(
        annotation=annotation,
        calibration=calibration,
        noise=noise,
        nesz_db=nesz,
        ascending_node_time=image.ascending_node_time,
        azimuth_pixel_spacing_m=azimuth_pixel_spacing_m,
    )


def _heading_deg(s: NDArray, v: NDArray) -> float:
    lat, lon, _ = ecef_to_geodetic(s)
    lat_r, lon_r = np.radians(lat), np.radians(lon)
    east = np.array([-np.sin(lon_r), np.cos(lon_r), 0.0])
    north = np.array([-np.sin(lat_r) * np.cos(lon_r), -np.sin(lat_r) * np.sin(lon_r), np.cos(lat_r)])
    return float(np.degrees(np.arctan2(np.dot(v, east), np.dot(v, north))))


def radar_to_geographic(
    geometry: RadarGeometry,
    line: NDArray[np.float64],
    pixel: NDArray[np.float64],
    height_m: NDArray[np.float64] | float,
    first_guess_ecef: NDArray[np.float64],
    iterations: int = 8,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Latitude and longitude (deg) of the points at (line, pixel) and ellipsoidal height, by Newton
    iteration on :meth:`RadarGeometry.geographic_to_radar` with a numerical Jacobian."""
    lat0, lon0, _ = ecef_to_geodetic(first_guess_ecef)
    lat = np.full(np.shape(line), float(lat0))
    lon = np.full(np.shape(line), float(lon0))
    h = np.broadcast_to(height_m, np.shape(line))
    eps = 1e-5
    for _ in range(iterations):
        l0, p0 = geometry.geographic_to_radar(lat, lon, h)
        l1, p1 = geometry.geographic_to_radar(lat + eps, lon, h)
        l2, p2 = geometry.geographic_to_radar(lat, lon + eps, h)
        j11, j12 = (l1 - l0) / eps, (l2 - l0) / eps
        j21, j22 = (p1 - p0) / eps, (p2 - p0) / eps
        det = j11 * j22 - j12 * j21
        dl, dp = line - l0, pixel - p0
        lat = lat + (j22 * dl - j12 * dp) / det
        lon = lon + (-j21 * dl + j11 * dp) / det
    return lat, lon


def geolocation_grid(
    geometry: RadarGeometry, height_m: float, guess_ecef: NDArray, n_lines: int = 10, n_pixels: int = 21
) -> GeolocationGrid:
    """Tie-point grid over the image at one ellipsoidal height (ESA: geocentric incidence angles)."""
    image = geometry.annotation.image
    lines = np.linspace(0, image.number_of_lines - 1, n_lines).round()
    pixels = np.linspace(0, image.number_of_samples - 1, n_pixels).round()
    ll, pp = np.meshgrid(lines, pixels, indexing="ij")
    ll, pp = ll.ravel(), pp.ravel()
    lat, lon = radar_to_geographic(geometry, ll, pp, height_m, guess_ecef)
    h = np.full(ll.shape, height_m)
    target = geodetic_to_ecef(lat, lon, h)
    rc = geometry.ecef_to_radar(target)
    sat = geometry.orbit.position(rc.zero_doppler_time_s)
    return GeolocationGrid(
        azimuth_time_s=rc.zero_doppler_time_s,
        slant_range_time_s=2 * rc.slant_range_m / SPEED_OF_LIGHT_M_S,
        line=ll,
        pixel=pp,
        latitude_deg=lat,
        longitude_deg=lon,
        height_m=h,
        incidence_angle_deg=incidence_angle_deg(sat, target),
        elevation_angle_deg=elevation_angle_deg(sat, target),
    )


def ellipsoid_incidence_profile(
    geometry: RadarGeometry, time_s: float, height_m: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ground range (m) and ellipsoid incidence angle (deg, geodetic normal) across the swath at one time."""
    s, v = geometry.orbit.position(time_s), geometry.orbit.velocity(time_s)
    points, ranges = ground_profile(s, v, height_m, np.linspace(15.0, 50.0, 3000))
    lat, lon, _ = ecef_to_geodetic(points)
    inc = incidence_angle_deg(s, points, ellipsoid_normal(lat, lon))
    cc = geometry.annotation.coordinate_conversion
    gr = slant_to_ground_range(cc.azimuth_time_s, cc.sr0_m, cc.srgr, time_s, ranges)
    return gr, inc


def _radiometric_luts(
    annotation: ProductAnnotation, geometry: RadarGeometry, height_m: float, nesz_db: float
) -> tuple[CalibrationAnnotation, NoiseAnnotation, NDArray[np.float64]]:
    image = annotation.image
    n_lines, n_samples, dt = image.number_of_lines, image.number_of_samples, image.azimuth_time_interval_s
    pixels = np.unique(np.concatenate([np.arange(0, n_samples, 40), [n_samples - 1]])).astype(float)
    # calibration vectors about 1 s apart, the last one beyond the last line (as in real products)
    step = int(round(1.0 / dt))
    cal_lines = np.arange(0, n_lines + step, step).astype(float)
    sigma, beta, gamma, dn, noise_vals = [], [], [], [], []
    for line in cal_lines:
        gr, inc = ellipsoid_incidence_profile(geometry, line * dt, height_m)
        theta = np.radians(np.interp(pixels * image.range_pixel_spacing_m, gr, inc))
        sigma.append(BETA_NOUGHT_DN / np.sqrt(np.sin(theta)))
        beta.append(np.full(pixels.size, BETA_NOUGHT_DN))
        gamma.append(BETA_NOUGHT_DN / np.sqrt(np.tan(theta)))
        dn.append(np.full(pixels.size, BETA_NOUGHT_DN))
        # NESZ across the cropped swath: an elevation-beam pattern around nesz_db
        phase = 2 * np.pi * (np.degrees(theta) - 30.0) / 7.5
        nesz = nesz_db + 1.5 * np.cos(phase)
        noise_vals.append(sigma[-1] ** 2 * 10 ** (nesz / 10))
    as_vectors = lambda values: LutVectors(cal_lines, tuple(pixels for _ in cal_lines), tuple(values))  # noqa: E731
    calibration = CalibrationAnnotation(
        polarisation="VV",
        absolute_calibration_constant=1.0,
        sigma_nought=as_vectors(sigma),
        beta_nought=as_vectors(beta),
        gamma=as_vectors(gamma),
        dn=as_vectors(dn),
    )
    az_lines = np.arange(0, n_lines, 10).astype(float)
    if az_lines[-1] != n_lines - 1:
        az_lines = np.append(az_lines, n_lines - 1)
    az_values = 1.0 + 0.03 * np.sin(2 * np.pi * az_lines / 700.0)
    block = NoiseAzimuthBlock("IW2", 0, n_lines - 1, 0, n_samples - 1, az_lines, az_values)
    noise_lines = cal_lines[cal_lines < n_lines]
    noise = NoiseAnnotation(
        polarisation="VV",
        range_vectors=LutVectors(
            noise_lines, tuple(pixels for _ in noise_lines), tuple(noise_vals[: noise_lines.size])
        ),
        azimuth_blocks=(block,),
        has_azimuth_vectors=True,
    )
    return calibration, noise, 10 * np.log10(noise_vals[0] / sigma[0] ** 2)
