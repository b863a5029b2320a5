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

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from pipeline.optical.masking import dilate_disk


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


@numba.njit(cache=True)
def _unit_gradient(x: NDArray[np.float32], near_bad: NDArray[np.bool_], taper_rows: NDArray[np.float32],
                   taper_cols: NDArray[np.float32]) -> NDArray[np.complex64]:  # pragma: no cover
    """Tapered unit gradients of ``x`` in one compiled pass: ``np.gradient`` (central differences,
    one-sided at the edges), divided by their magnitude (0 where it is below 1e-12 of the largest), 0
    where ``near_bad``, times ``outer(taper_rows, taper_cols)``. Single precision throughout, as the
    NumPy expression it replaces."""
    rows, cols = x.shape
    gx = np.empty((rows, cols), np.float32)
    gy = np.empty((rows, cols), np.float32)
    magnitude = np.empty((rows, cols), np.float32)
    largest = np.float32(0.0)
    for i in range(rows):
        i0, i1 = max(i - 1, 0), min(i + 1, rows - 1)
        di = np.float32(i1 - i0)
        for j in range(cols):
            j0, j1 = max(j - 1, 0), min(j + 1, cols - 1)
            u = (x[i, j1] - x[i, j0]) / np.float32(j1 - j0)
            v = (x[i1, j] - x[i0, j]) / di
            m = np.float32(np.sqrt(u * u + v * v))
            gx[i, j], gy[i, j], magnitude[i, j] = u, v, m
            largest = max(largest, m)
    threshold = np.float32(1e-12) * (largest if largest > 0 else np.float32(1.0))
    tiny = np.float32(np.finfo(np.float32).tiny)
    g = np.empty((rows, cols), np.complex64)
    for i in range(rows):
        for j in range(cols):
            m = magnitude[i, j]
            if near_bad[i, j] or not m > threshold:
                g[i, j] = 0
            else:
                w = taper_rows[i] * taper_cols[j] / max(m, tiny)
                g[i, j] = np.complex64(complex(gx[i, j] * w, gy[i, j] * w))
    return g


@numba.njit(cache=True)
def _reflect(k: int, n: int) -> int:  # pragma: no cover
    """Index ``k`` folded into [0, n) by half-sample symmetry (SciPy's ``mode="reflect"``: d c b a | a b c d)."""
    period = 2 * n
    k %= period
    return k if k < n else period - 1 - k


@numba.njit(cache=True)
def _gaussian(x: NDArray[np.float32], weights: NDArray[np.float64]) -> NDArray[np.float32]:  # pragma: no cover
    """Separable correlation with ``weights`` (odd length) along the rows, then the columns, edges
    reflected; double-precision sums stored in single precision after each pass, as
    ``scipy.ndimage.gaussian_filter`` does for float32 input."""
    rows, cols = x.shape
    radius = weights.size // 2
    tmp = np.empty((rows, cols), np.float32)
    acc = np.empty(cols, np.float64)
    for i in range(rows):
        acc[:] = 0.0
        for k in range(-radius, radius + 1):
            w, src = weights[k + radius], _reflect(i + k, rows)
            for j in range(cols):
                acc[j] += w * x[src, j]
        for j in range(cols):
            tmp[i, j] = acc[j]
    out = np.empty((rows, cols), np.float32)
    padded = np.empty(cols + 2 * radius, np.float64)
    for i in range(rows):
        for j in range(-radius, cols + radius):
            padded[j + radius] = tmp[i, _reflect(j, cols)]
        for j in range(cols):
            total = 0.0
            for k in range(2 * radius + 1):
                total += weights[k] * padded[j + k]
            out[i, j] = total
    return out


def _gaussian_weights(sigma_px: float, truncate: float = 4.0) -> NDArray[np.float64]:
    """SciPy's Gaussian kernel (``gaussian_filter``'s radius: ``int(truncate * sigma + 0.5)``)."""
    radius = int(truncate * sigma_px + 0.5)
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    return w / w.sum()


@numba.njit(cache=True)
def _shifted_valid(valid: NDArray[np.bool_], shift_rows: float, shift_cols: float) -> NDArray[np.bool_]:  # pragma: no cover
    """``valid`` moved by (``shift_rows``, ``shift_cols``) pixels with linear interpolation (a pixel whose
    source lies outside the array is invalid, SciPy's ``shift(order=1, mode="constant")``), kept where
    the interpolated value exceeds one half, and where ``valid`` itself holds."""
    rows, cols = valid.shape
    q0 = np.empty(cols, np.int64)
    fq = np.empty(cols, np.float64)
    inside = np.empty(cols, np.bool_)
    for j in range(cols):
        q = j - shift_cols
        inside[j] = 0 <= q <= cols - 1
        q0[j] = min(int(np.floor(q)), cols - 2) if inside[j] else 0
        fq[j] = q - q0[j]
    out = np.zeros((rows, cols), np.bool_)
    for i in range(rows):
        p = i - shift_rows
        if p < 0 or p > rows - 1:
            continue
        p0 = min(int(np.floor(p)), rows - 2)
        fp = p - p0
        for j in range(cols):
            if not (valid[i, j] and inside[j]):
                continue
            a, b = q0[j], q0[j] + 1
            v = ((1 - fp) * ((1 - fq[j]) * valid[p0, a] + fq[j] * valid[p0, b])
                 + fp * ((1 - fq[j]) * valid[p0 + 1, a] + fq[j] * valid[p0 + 1, b]))
            out[i, j] = v > 0.5
    return out


def _orientation(image: NDArray, valid: NDArray[np.bool_], smooth_px: float) -> NDArray[np.complex64]:
    """Unit gradient orientations (gx + i gy) / |g| of the smoothed image, Hann-tapered; 0 on and next to
    masked pixels. Magnitudes are dropped: only where edges run, not how strong they are, is compared.
    Single precision: unit vectors and a correlation peak need no more (and it halves the FFTs' work)."""
    x = np.asarray(image, dtype=np.float32)
    good = valid & np.isfinite(x)
    if not good.all():
        x = np.where(good, x, x[good].mean(dtype=np.float64).astype(np.float32))
    x = np.ascontiguousarray(x)
    if smooth_px > 0:
        x = _gaussian(x, _gaussian_weights(smooth_px))
    # within two 4-connected steps of a masked pixel (the Euclidean disk of radius 2 is that diamond)
    near_bad = dilate_disk(~good, 2)
    return _unit_gradient(x, near_bad, _hann(x.shape[0]), _hann(x.shape[1]))


def _hann(n: int) -> NDArray[np.float32]:
    return np.hanning(n).astype(np.float32)


def _peak_offset(a_spectrum_conj: NDArray[np.complex64], b: NDArray[np.complex64],
                 radius: int) -> tuple[float, float]:
    """(rows, cols) displacement of ``b``'s content relative to ``a`` at the cross-correlation maximum
    within ``radius`` pixels, refined by a 3-point parabola on each axis. ``a_spectrum_conj``:
    ``conj(fft2(a))``, computed once for all iterations."""
    cc = sfft.ifft2(sfft.fft2(b) * a_spectrum_conj, overwrite_x=True).real  # sum of cos(angle)
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
    spectrum = sfft.rfft2(filled)
    rows_cycles = np.fft.fftfreq(filled.shape[0])
    cols_cycles = np.fft.rfftfreq(filled.shape[1])
    total = np.zeros(2)

    def moved_back() -> NDArray[np.complex64]:
        # the measured image (and its mask) moved back by the displacement found so far: f(x + total),
        # a phase ramp on the spectrum (separable: the outer product of one ramp per axis; band-limited
        # interpolation; the wrap-around at the window's edges falls under the taper)
        if not total.any():
            return _orientation(filled, valid, smooth_px)
        ramp = np.outer(np.exp(2j * np.pi * rows_cycles * total[0]),
                        np.exp(2j * np.pi * cols_cycles * total[1])).astype(np.complex64)
        moved = sfft.irfft2(spectrum * ramp, s=filled.shape, overwrite_x=True)
        return _orientation(moved, _shifted_valid(valid, -total[0], -total[1]), smooth_px)

    a_spectrum_conj = np.conj(sfft.fft2(a))
    converged = False
    for k in range(iterations):
        b = moved_back()
        step = np.array(_peak_offset(a_spectrum_conj, b, max_shift_px if k == 0 else 2))
        total += step
        if np.abs(step).max() < 0.005:
            converged = True  # the quality of the last alignment stands (it moved less than 0.005 px)
            break
    if np.abs(total).max() > max_shift_px:
        return NO_SHIFT
    if not converged:
        b = moved_back()
    a, b = a.astype(np.complex128), b.astype(np.complex128)
    quality = float(np.real(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))  # mean cos, tapered
    return Shift(float(total[1]), float(total[0]), quality)


class PerWindow:
    """An image computed window by window on demand: ``image[rows, cols]`` calls
    ``compute(rows, cols)`` (slices with explicit bounds); :func:`window_shifts` takes it wherever it
    takes an array, so a whole-AOI float64 prediction never exists."""

    def __init__(self, shape: tuple[int, int], compute):
        self.shape = shape
        self._compute = compute

    def __getitem__(self, window: tuple[slice, slice]) -> NDArray:
        return self._compute(*window)


def relief_per_window(height_m: NDArray, predict) -> PerWindow:
    """``predict(height window)`` (:func:`sar_prediction_db`, :func:`optical_prediction` with their
    angles bound) window by window, each computed with one pixel of margin where the DEM has it, so the
    gradients and the result are those of the whole DEM."""
    rows_total, cols_total = np.shape(height_m)

    def compute(rows: slice, cols: slice) -> NDArray:
        r0, r1 = rows.start, min(rows.stop, rows_total)
        c0, c1 = cols.start, min(cols.stop, cols_total)
        m0, n0 = max(r0 - 1, 0), max(c0 - 1, 0)
        out = predict(height_m[m0:min(r1 + 1, rows_total), n0:min(c1 + 1, cols_total)])
        return out[r0 - m0:r1 - m0, c0 - n0:c1 - n0]

    return PerWindow((rows_total, cols_total), compute)


def window_shifts(measured: NDArray | PerWindow, predicted: NDArray | PerWindow, valid: NDArray[np.bool_] | None,
                  windows: list[tuple[int, int]], size: int, **kwargs) -> list[Shift]:
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


#: Median of the length of a 2-D error whose components are independent, zero-mean Gaussians of unit
#: standard deviation (Rayleigh distribution): sqrt(2 ln 2).
RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))


def noise_scale(shifts: list[Shift], reference: Shift, min_quality: float) -> float:
    """The noise of one scene's window estimates, as ``c`` in sigma_px = c / quality (pixels x quality).

    An estimate's error shrinks as its quality grows (measured over the bench world's 4141 patches, where
    every shift is an error: the median error is about 0.045 px / quality for the radar, at every
    quality); ``c`` is calibrated per scene and sensor from the windows themselves, as the median of
    |window shift - ``reference``| x quality over the windows of quality >= ``min_quality``, divided by
    :data:`RAYLEIGH_MEDIAN` (per-axis standard deviation). The spread around the scene's shift, not
    around zero, so a scene-wide misregistration does not inflate it. NaN when no window qualifies.
    """
    good = [w for w in shifts if np.isfinite(w.quality) and w.quality >= min_quality and w.quality > 0]
    if not good or not np.isfinite(reference.quality):
        return float("nan")
    spread = [np.hypot(w.dx_px - reference.dx_px, w.dy_px - reference.dy_px) * w.quality for w in good]
    return float(np.median(spread)) / RAYLEIGH_MEDIAN


def shift_sigma_px(shift: Shift, scale: float) -> float:
    """Per-axis standard deviation (px) of ``shift``'s error: ``scale`` (:func:`noise_scale`) / quality;
    NaN without a noise scale or a positive quality."""
    return scale / shift.quality if np.isfinite(scale) and shift.quality > 0 else float("nan")


def confidently_beyond(shift: Shift, max_shift_px: float, scale: float, sigmas: float) -> bool:
    """Whether ``shift`` lies further than ``max_shift_px`` from zero by more than ``sigmas`` times its
    noise (:func:`shift_sigma_px`): a flag for misregistrations the estimate can resolve, not for noise of
    low-quality windows. Without a noise scale (NaN), the plain comparison."""
    sigma = shift_sigma_px(shift, scale)
    return bool(shift.magnitude_px - sigmas * (sigma if np.isfinite(sigma) else 0.0) > max_shift_px)


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
