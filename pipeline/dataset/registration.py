"""Co-registration QA (pure numerics): how far an image sits from the image its DEM predicts.

The DEM predicts, on the AOI grid, the relief's imprint on each sensor: the radar brightness from
the local incidence angle (slopes facing the antenna bright, slopes facing away dark, shadow at
the floor), and the optical brightness as a hillshade under the scene's sun. A misregistered
image is displaced from that prediction; the displacement is estimated by cross-correlation with
sub-pixel refinement (upsampled matrix-multiply DFT, Guizar-Sicairos et al. 2008, via
``skimage.registration.phase_cross_correlation``), window by window.

Why cross-correlation of standardised, smoothed images rather than pure phase correlation: the
two images are different modalities related by an unknown monotone mapping, and the radar one
carries speckle. Phase correlation whitens the spectrum, which gives white speckle the weight of
the relief at high frequencies; plain correlation of images smoothed by a small Gaussian
(symmetric: no bias) keeps the weight where the relief signal is; the quality of an estimate is
the correlation coefficient of the two images once aligned (0..1; low where clouds, snow or
land cover dominate the relief). Masked pixels (clouds, snow, no data)
are set to the mean, and a Hann window removes the wrap-around edges.

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


def _prepare(image: NDArray, valid: NDArray[np.bool_], smooth_px: float) -> NDArray[np.float64]:
    x = np.asarray(image, dtype=np.float64)
    good = valid & np.isfinite(x)
    mean = x[good].mean()
    x = np.where(good, x, mean)
    if smooth_px > 0:
        x = ndimage.gaussian_filter(x, smooth_px)
    x = (x - x.mean()) / (x.std() or 1.0)
    return x * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))


def estimate_shift(measured: NDArray, predicted: NDArray, valid: NDArray[np.bool_] | None = None,
                   smooth_px: float = 1.5, upsample: int = 50, min_valid_fraction: float = 0.5,
                   iterations: int = 3) -> Shift:
    """Displacement of ``measured`` relative to ``predicted`` (same grid), to 1/``upsample`` pixel.

    ``valid``: pixels of ``measured`` to use (others set to its mean). The window that tapers the
    edges stays put while the content moves, which pulls a single estimate towards zero; so the
    measured image is moved back by the estimate (cubic spline) and the residual measured again,
    ``iterations`` times. Returns :data:`NO_SHIFT` when fewer than ``min_valid_fraction`` of the
    pixels are valid.
    """
    from skimage.registration import phase_cross_correlation

    measured = np.asarray(measured, dtype=np.float64)
    valid = np.isfinite(measured) if valid is None else (np.asarray(valid, bool) & np.isfinite(measured))
    valid &= np.isfinite(predicted)
    if valid.mean() < min_valid_fraction:
        return NO_SHIFT
    a = _prepare(predicted, valid, smooth_px)
    filled = np.where(valid, measured, measured[valid].mean())
    total = np.zeros(2)

    def moved_back() -> NDArray[np.float64]:
        # the measured image (and its mask) moved back by the displacement found so far
        if not total.any():
            return _prepare(filled, valid, smooth_px)
        moved = ndimage.shift(filled, -total, order=3, mode="nearest")
        moved_valid = ndimage.shift(valid.astype(np.float32), -total, order=1, mode="constant") > 0.5
        return _prepare(moved, moved_valid & valid, smooth_px)

    for _ in range(iterations):
        shift, _, _ = phase_cross_correlation(a, moved_back(), upsample_factor=upsample, normalization=None)
        # ``shift`` registers b onto a: the content of b sits at -shift (rows, cols) relative to a
        total = total - np.asarray(shift, dtype=np.float64)
        if np.abs(shift).max() < 0.5 / upsample:
            break
    quality = float(np.corrcoef(a.ravel(), moved_back().ravel())[0, 1])
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
