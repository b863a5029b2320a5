"""Co-registration QA (pure numerics): how far an image sits from the image its DEM predicts.

The DEM predicts, on the AOI grid, the relief's imprint on each sensor: the radar brightness from
the local incidence angle (slopes facing the antenna bright, slopes facing away dark, shadow at
the floor), and the optical brightness as a hillshade under the scene's sun. A misregistered
image is displaced from that prediction; the displacement is estimated by orientation
correlation (Fitch, Kadyrov, Christmas and Kittler 2002), window by window: both images are
reduced to the unit orientation of their gradients and cross-correlated (FFT), the peak searched
within a few pixels and refined by a parabola, iterating on the re-aligned image.

Why orientation correlation: the two images are different modalities related by an unknown,
locally varying mapping, and in mountains the land cover (forest, meadow, rock, snow) adds step
edges that the DEM does not predict. Correlating intensities lets every piecewise-constant
land-cover patch pull the peak (measured on the simulated world: biases of 1 to 10 px, windows
locked on land-cover edges); pure phase correlation gives speckle the weight of the relief.
Orientations weigh every pixel alike whatever its contrast, so the many relief gradients outvote
the sparse land-cover edges (measured: scene estimates within 0.12 px of zero on all dates of the
default world). The quality of an estimate is the mean cosine between the aligned orientations
(0 for unrelated images; 0.1-0.3 for speckled radar, 0.3-0.8 for optical).

Conventions: images are (rows, cols), rows north to south; a shift ``(dx_px, dy_px)`` is the
displacement of the measured image's content relative to the prediction, in pixels, ``dx`` east,
``dy`` down the rows (south).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


@dataclass(frozen=True)
class Shift:
    """Displacement of an image relative to its prediction (pixels: dx east, dy south) and the quality
    of the estimate (correlation coefficient once aligned; NaN when the window could not be measured)."""

    dx_px: float
    dy_px: float
    quality: float

    @property
    def magnitude_px(self) -> float:
        return float(np.hypot(self.dx_px, self.dy_px))

    def __str__(self) -> str:
        return f"dx {self.dx_px:+.2f} px, dy {self.dy_px:+.2f} px (quality {self.quality:.2f})"


NO_SHIFT = Shift(float("nan"), float("nan"), float("nan"))


def directional_cosine(height_m: NDArray, resolution_m: float, zenith_deg: float, azimuth_deg: float) -> NDArray:
    """cos of the angle between the terrain normal and the unit vector towards a source (sun or antenna).

    ``height_m`` (rows north to south, m); the source is at ``zenith_deg`` from the vertical and
    ``azimuth_deg`` clockwise from north as seen from the ground. Negative: the slope faces away.
    """
    dzdy, dzdx = np.gradient(np.asarray(height_m, dtype=np.float64), resolution_m)
    dz_north = -dzdy
    z, a = np.radians(zenith_deg), np.radians(azimuth_deg)
    ue, un, uu = np.sin(z) * np.sin(a), np.sin(z) * np.cos(a), np.cos(z)
    return (-dzdx * ue - dz_north * un + uu) / np.sqrt(1.0 + dzdx**2 + dz_north**2)


def sar_prediction_db(height_m: NDArray, resolution_m: float, incidence_deg: float, heading_deg: float,
                      right_looking: bool = True) -> NDArray[np.float32]:
    """Radar brightness (dB, up to a constant) that the relief alone predicts: 10 log10 cos(local incidence),
    floored at -13 dB (shadow and grazing slopes).

    ``heading_deg``: the platform heading (clockwise from north); the antenna looks right of it
    (left when ``right_looking`` is False), so seen from the ground it lies at heading -/+ 90 deg.
    """
    towards_antenna = heading_deg - 90.0 if right_looking else heading_deg + 90.0
    cos_local = directional_cosine(height_m, resolution_m, incidence_deg, towards_antenna)
    return (10.0 * np.log10(np.clip(cos_local, 0.05, 1.0))).astype(np.float32)


def optical_prediction(height_m: NDArray, resolution_m: float, sun_zenith_deg: float,
                       sun_azimuth_deg: float) -> NDArray[np.float32]:
    """Hillshade under the scene's sun: cos of the solar incidence angle, 0 on self-shadowed slopes."""
    return np.clip(directional_cosine(height_m, resolution_m, sun_zenith_deg, sun_azimuth_deg), 0.0, 1.0).astype(
        np.float32)


def _orientation(image: NDArray, valid: NDArray[np.bool_], smooth_px: float) -> NDArray[np.complex64]:
    """Unit gradient orientations (gx + i gy) / |g| of the smoothed image, Hann-tapered; 0 on and next to
    masked pixels. Magnitudes are dropped: only where edges run, not how strong they are, is compared.
    Single precision: unit vectors and a correlation peak need no more (and it halves the FFTs' work)."""
    x = np.asarray(image, dtype=np.float32)
    good = valid & np.isfinite(x)
    x = np.where(good, x, x[good].mean(dtype=np.float64).astype(np.float32))
    if smooth_px > 0:
        x = ndimage.gaussian_filter(x, smooth_px)
    gy, gx = np.gradient(x)
    g = gx + 1j * gy
    magnitude = np.abs(g)
    tiny = np.finfo(np.float32).tiny
    g = np.where(magnitude > 1e-12 * (magnitude.max() or 1.0), g / np.maximum(magnitude, tiny), 0)
    g[ndimage.binary_dilation(~good, iterations=2)] = 0
    return g * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1])).astype(np.float32)


def _peak_offset(a_spectrum_conj: NDArray[np.complex64], b: NDArray[np.complex64],
                 radius: int) -> tuple[float, float]:
    """(rows, cols) displacement of ``b``'s content relative to ``a`` at the cross-correlation maximum
    within ``radius`` pixels, refined by a 3-point parabola on each axis. ``a_spectrum_conj``:
    ``conj(fft2(a))``, computed once for all iterations."""
    cc = np.fft.ifft2(np.fft.fft2(b) * a_spectrum_conj).real  # sum of cos(angle between orientations)
    cc = np.fft.fftshift(cc)  # zero displacement at the centre
    cy, cx = cc.shape[0] // 2, cc.shape[1] // 2
    r = min(radius, cy - 1, cx - 1)
    win = cc[cy - r:cy + r + 1, cx - r:cx + r + 1]
    py, px = np.unravel_index(int(np.argmax(win)), win.shape)
    py, px = min(max(py, 1), 2 * r - 1), min(max(px, 1), 2 * r - 1)

    def vertex(m1: float, c0: float, p1: float) -> float:
        d = m1 - 2 * c0 + p1
        return 0.0 if d >= 0 else float(np.clip(0.5 * (m1 - p1) / d, -0.5, 0.5))

    dy = py - r + vertex(win[py - 1, px], win[py, px], win[py + 1, px])
    dx = px - r + vertex(win[py, px - 1], win[py, px], win[py, px + 1])
    return dy, dx


def estimate_shift(measured: NDArray, predicted: NDArray, valid: NDArray[np.bool_] | None = None,
                   smooth_px: float = 1.0, max_shift_px: int = 16, min_valid_fraction: float = 0.5,
                   iterations: int = 4) -> Shift:
    """Displacement of ``measured`` relative to ``predicted`` (same grid), searched within
    ``max_shift_px`` pixels (misregistrations are a few pixels; a wider search only adds false peaks
    on land-cover edges).

    ``valid``: pixels of ``measured`` to use (others set to its mean). The integer peak is refined by
    a parabola; the window that tapers the edges stays put while the content moves, which pulls an
    estimate towards zero, so the measured image is moved back by the estimate (Fourier phase ramp) and the
    residual measured again, ``iterations`` times (the parabola is unbiased at zero displacement).
    Returns :data:`NO_SHIFT` when fewer than ``min_valid_fraction`` of the pixels are valid.
    """
    measured = np.asarray(measured, dtype=np.float64)
    valid = np.isfinite(measured) if valid is None else (np.asarray(valid, bool) & np.isfinite(measured))
    valid &= np.isfinite(predicted)
    if valid.mean() < min_valid_fraction:
        return NO_SHIFT
    a = _orientation(predicted, valid, smooth_px)
    filled = np.where(valid, measured, measured[valid].mean()).astype(np.float32)
    spectrum = np.fft.rfft2(filled)
    rows_cycles = np.fft.fftfreq(filled.shape[0])[:, None]
    cols_cycles = np.fft.rfftfreq(filled.shape[1])[None, :]
    total = np.zeros(2)

    def moved_back() -> NDArray[np.complex64]:
        # the measured image (and its mask) moved back by the displacement found so far: f(x + total),
        # a phase ramp on the spectrum (band-limited interpolation; the wrap-around at the window's edges
        # falls under the taper)
        if not total.any():
            return _orientation(filled, valid, smooth_px)
        ramp = np.exp(2j * np.pi * (rows_cycles * total[0] + cols_cycles * total[1])).astype(np.complex64)
        moved = np.fft.irfft2(spectrum * ramp, s=filled.shape)
        moved_valid = ndimage.shift(valid.astype(np.float32), -total, order=1, mode="constant") > 0.5
        return _orientation(moved, moved_valid & valid, smooth_px)

    a_spectrum_conj = np.conj(np.fft.fft2(a))
    for k in range(iterations):
        step = np.array(_peak_offset(a_spectrum_conj, moved_back(), max_shift_px if k == 0 else 2))
        total += step
        if np.abs(step).max() < 0.005:
            break
    if np.abs(total).max() > max_shift_px:
        return NO_SHIFT
    b = moved_back()
    a, b = a.astype(np.complex128), b.astype(np.complex128)
    quality = float(np.real(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))  # mean cos, tapered
    return Shift(float(total[1]), float(total[0]), quality)


def window_shifts(measured: NDArray, predicted: NDArray, valid: NDArray[np.bool_] | None, windows: list[tuple[int, int]],
                  size: int, **kwargs) -> list[Shift]:
    """:func:`estimate_shift` on each ``size`` x ``size`` window (top-left (row, col))."""
    out = []
    for r, c in windows:
        win = (slice(r, r + size), slice(c, c + size))
        out.append(estimate_shift(measured[win], predicted[win], None if valid is None else valid[win], **kwargs))
    return out


def combine(shifts: list[Shift], min_quality: float = 0.2) -> Shift:
    """One displacement from window estimates: the component-wise median of the windows whose quality
    reaches ``min_quality`` (robust to a few windows locked on clouds or layover); its quality is the
    median window quality, NaN when no window qualifies."""
    good = [s for s in shifts if np.isfinite(s.quality) and s.quality >= min_quality]
    if not good:
        return NO_SHIFT
    return Shift(float(np.median([s.dx_px for s in good])), float(np.median([s.dy_px for s in good])),
                 float(np.median([s.quality for s in good])))


def grid_windows(rows: int, cols: int, window_px: int) -> tuple[int, list[tuple[int, int]]]:
    """Half-overlapping square windows covering a ``rows`` x ``cols`` image: (size, top-left corners).
    The size is ``window_px``, or the image's shorter side when that is smaller."""
    size = min(window_px, rows, cols)
    step = max(size // 2, 1)
    return size, [(r, c) for r in range(0, rows - size + 1, step) for c in range(0, cols - size + 1, step)]


def scene_shift(measured: NDArray, predicted: NDArray, valid: NDArray[np.bool_] | None, window_px: int,
                min_quality: float) -> Shift:
    """One displacement for a whole image: :func:`combine` over the :func:`grid_windows`."""
    size, windows = grid_windows(*np.shape(measured), window_px)
    return combine(window_shifts(measured, predicted, valid, windows, size), min_quality)
