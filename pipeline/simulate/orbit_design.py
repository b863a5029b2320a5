"""A Sentinel-1-like orbit that sees a given target at a given incidence angle.

Pure numerics. The orbit is circular (radius ``WGS84_A_M + altitude``,
inclination 98.18 deg, sun-synchronous-like), expressed directly in ECEF by
letting the ascending node drift west at the Earth's rotation rate. It is
a smooth, physically consistent trajectory for zero-Doppler geometry; it
does not model the geoid, J2 or manoeuvres. Right-looking radar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.core.constants import EARTH_ROTATION_RAD_S, WGS84_A_M, WGS84_GM_M3_S2
from pipeline.sar.geocoding import incidence_angle_deg
from pipeline.sar.orbit import Orbit


@dataclass(frozen=True)
class CircularOrbit:
    """ECEF circular orbit: argument of latitude u(t) = u0 + n t, node longitude lambda(t) = lambda0 - w_E t.

    Times ``t`` are seconds from the design epoch.
    """

    radius_m: float
    inclination_deg: float
    node_longitude_rad: float
    arg_latitude0_rad: float

    @property
    def mean_motion_rad_s(self) -> float:
        return float(np.sqrt(WGS84_GM_M3_S2 / self.radius_m**3))

    def state(self, t_s: NDArray[np.float64] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """ECEF position (m) and velocity (m/s), shape (..., 3)."""
        t = np.asarray(t_s, dtype=np.float64)
        n = self.mean_motion_rad_s
        inc = np.radians(self.inclination_deg)
        u = self.arg_latitude0_rad + n * t
        lam = self.node_longitude_rad - EARTH_ROTATION_RAD_S * t
        cu, su, cl, sl, ci, si = np.cos(u), np.sin(u), np.cos(lam), np.sin(lam), np.cos(inc), np.sin(inc)
        r = self.radius_m
        pos = r * np.stack([cl * cu - sl * su * ci, sl * cu + cl * su * ci, su * si], axis=-1)
        d_du = r * np.stack([-cl * su - sl * cu * ci, -sl * su + cl * cu * ci, cu * si], axis=-1)
        d_dlam = r * np.stack([-sl * cu - cl * su * ci, cl * cu - sl * su * ci, np.zeros_like(u)], axis=-1)
        vel = d_du * n - d_dlam * EARTH_ROTATION_RAD_S
        return pos, vel

    def zero_doppler_time(self, target_m: NDArray[np.float64], descending: bool = True) -> float:
        """Zero-Doppler time (s) of one target on the descending (or ascending) pass that sees it.

        Brackets the closest approach within one orbital period around t = 0
        (f(t) = (P - S) . V turns from positive to negative; its other root is
        the farthest point) on a coarse grid, then refines it with Brent's method.
        """
        from scipy.optimize import brentq

        def f(t: float) -> float:
            s, v = self.state(t)
            return float(np.dot(target_m - s, v))

        period = 2 * np.pi / self.mean_motion_rad_s
        coarse = np.arange(-0.5 * period, 0.5 * period, 5.0)
        pos, vel = self.state(coarse)
        fc = np.einsum("ij,ij->i", target_m - pos, vel)
        # closest approaches: f goes from + (approaching) to - (receding)
        k = np.flatnonzero((fc[:-1] > 0) & (fc[1:] <= 0))
        k = k[(vel[k, 2] < 0) == descending]
        if k.size == 0:
            raise ValueError("the orbit never passes the target in the requested direction")
        best = k[np.argmin(np.linalg.norm(pos[k] - target_m, axis=-1))]
        return float(brentq(f, coarse[best], coarse[best + 1], xtol=1e-10))


def _right_looking(orbit: CircularOrbit, target_m: NDArray, t: float) -> bool:
    s, v = orbit.state(t)
    return float(np.dot(target_m - s, np.cross(v, s / np.linalg.norm(s)))) > 0


def _place(orbit: CircularOrbit, target_m: NDArray, descending: bool) -> CircularOrbit:
    """Shift u0 so that the target's zero-Doppler time on the chosen pass is t = 0."""
    for _ in range(4):
        t = orbit.zero_doppler_time(target_m, descending)
        orbit = CircularOrbit(
            orbit.radius_m, orbit.inclination_deg, orbit.node_longitude_rad,
            orbit.arg_latitude0_rad + orbit.mean_motion_rad_s * t,
        )
    return orbit


def design_orbit(
    target_m: NDArray[np.float64],
    incidence_deg: float,
    descending: bool = True,
    altitude_m: float = 693_000.0,
    inclination_deg: float = 98.18,
) -> CircularOrbit:
    """The circular orbit whose zero-Doppler time for ``target_m`` is t = 0 and whose geocentric
    incidence there is ``incidence_deg``, with the target on the right of the track.
    """
    target_m = np.asarray(target_m, dtype=np.float64)
    radius = WGS84_A_M + altitude_m
    lat = np.arcsin(target_m[2] / np.linalg.norm(target_m))
    inc = np.radians(inclination_deg)
    u_sat = np.arcsin(np.clip(np.sin(lat) / np.sin(inc), -1, 1))
    u0 = np.pi - u_sat if descending else u_sat

    def evaluate(node: float) -> tuple[float, bool]:
        try:
            orbit = _place(CircularOrbit(radius, inclination_deg, node, u0), target_m, descending)
        except ValueError:  # this node's closest pass runs the other way
            return float("nan"), False
        s, _ = orbit.state(0.0)
        return float(incidence_angle_deg(s, target_m)), _right_looking(orbit, target_m, 0.0)

    nodes = np.radians(np.arange(0.0, 360.0, 1.0))
    values = [evaluate(n) for n in nodes]
    best = None
    for k in range(len(nodes) - 1):
        (a, ra), (b, rb) = values[k], values[k + 1]
        if ra and rb and (a - incidence_deg) * (b - incidence_deg) <= 0 and max(a, b) < 60:
            lo, hi, flo = nodes[k], nodes[k + 1], a - incidence_deg
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                fm = evaluate(mid)[0] - incidence_deg
                if fm * flo <= 0:
                    hi = mid
                else:
                    lo, flo = mid, fm
            best = 0.5 * (lo + hi)
            break
    if best is None:
        raise ValueError(f"no right-looking orbit sees the target at {incidence_deg} deg incidence")
    orbit = _place(CircularOrbit(radius, inclination_deg, best, u0), target_m, descending)
    s, v = orbit.state(0.0)
    if descending != (v[2] < 0):
        raise ValueError("designed orbit has the wrong pass direction")
    return orbit


def offset_orbit(
    orbit: CircularOrbit, target_m: NDArray[np.float64], radial_m: float, east_m: float, descending: bool = True
) -> CircularOrbit:
    """The orbit raised by ``radial_m`` and moved ``east_m`` east at the target's latitude (the node
    longitude turned by east_m / (r cos lat)), then re-timed so that the target's zero-Doppler time
    is t = 0 again: a repeat pass off the reference track, as within Sentinel-1's orbital tube."""
    target_m = np.asarray(target_m, dtype=np.float64)
    lat = np.arcsin(target_m[2] / np.linalg.norm(target_m))
    radius = orbit.radius_m + radial_m
    node = orbit.node_longitude_rad + east_m / (radius * np.cos(lat))
    return _place(CircularOrbit(radius, orbit.inclination_deg, node, orbit.arg_latitude0_rad), target_m, descending)


def state_vectors(
    orbit: CircularOrbit, epoch: np.datetime64, start_s: float, stop_s: float, step_s: float = 10.0
) -> Orbit:
    """State vectors on whole multiples of ``step_s`` covering [start_s, stop_s] (s from ``epoch``)."""
    times = np.arange(np.floor(start_s / step_s) * step_s, stop_s + step_s, step_s)
    pos, vel = orbit.state(times)
    return Orbit(epoch=epoch, time_s=times, position_m=pos, velocity_m_s=vel)


def ascending_node_time_s(orbit: CircularOrbit) -> float:
    """Time (s from the design epoch) of the last ascending node crossing before t = 0."""
    u0 = orbit.arg_latitude0_rad % (2 * np.pi)
    return -u0 / orbit.mean_motion_rad_s
