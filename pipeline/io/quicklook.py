"""Quicklook images: SAR false colour, DEM hillshade, optical RGB, scene classification.

Pure numerics returning uint8 RGB arrays (rows, cols, 3); :func:`save_png`
writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pipeline.io.atomic import atomic_path

#: Colours of the L2A scene classes 0-11 (ESA's usual palette).
SCL_COLOURS = np.array(
    [
        [0, 0, 0], [255, 0, 0], [47, 47, 47], [100, 50, 0], [0, 160, 0], [255, 230, 90],
        [0, 0, 255], [128, 128, 128], [160, 160, 160], [255, 255, 255], [100, 200, 255], [255, 150, 255],
    ],
    np.uint8,
)


def stretch(x: NDArray, lo: float, hi: float) -> NDArray[np.uint8]:
    """Linear stretch of [lo, hi] to [0, 255] (NaN -> 0)."""
    y = np.clip((np.nan_to_num(x, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    return (255 * y).astype(np.uint8)


def percentile_stretch(x: NDArray, low: float = 2.0, high: float = 98.0) -> NDArray[np.uint8]:
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros(x.shape, np.uint8)
    lo, hi = np.percentile(finite, [low, high])
    return stretch(x, float(lo), float(hi) if hi > lo else float(lo) + 1e-6)


def sar_rgb(vv_db: NDArray, vh_db: NDArray) -> NDArray[np.uint8]:
    """[VV, VH, 0] in dB, VV over -25..0 dB and VH over -32..-7 dB."""
    return np.dstack([stretch(vv_db, -25.0, 0.0), stretch(vh_db, -32.0, -7.0), np.zeros(vv_db.shape, np.uint8)])


def hillshade(
    height_m: NDArray, pixel_m: float | tuple[float, float], azimuth_deg: float = 315.0, altitude_deg: float = 45.0
) -> NDArray[np.uint8]:
    """Grey hillshade (rows north to south), light from ``azimuth_deg`` clockwise from north.

    ``pixel_m``: one spacing, or (dy, dx) for non-square pixels (1 arc-second grids).
    """
    dy, dx = (pixel_m, pixel_m) if np.isscalar(pixel_m) else pixel_m
    dzdy, dzdx = np.gradient(np.asarray(height_m, dtype=np.float64), dy, dx)
    nx, ny, nz = -dzdx, dzdy, np.ones_like(dzdx)
    norm = np.sqrt(nx**2 + ny**2 + 1.0)
    az, alt = np.radians(azimuth_deg), np.radians(altitude_deg)
    shade = (nx * np.sin(az) * np.cos(alt) + ny * np.cos(az) * np.cos(alt) + nz * np.sin(alt)) / norm
    grey = stretch(np.nan_to_num(shade, nan=0.0), 0.0, 1.0)
    return np.dstack([grey] * 3)


def scl_rgb(scl: NDArray) -> NDArray[np.uint8]:
    return SCL_COLOURS[np.clip(scl, 0, 11)]


def save_png(path: str | Path, rgb: NDArray[np.uint8], max_size: int | None = None) -> Path:
    """Write an RGB image as PNG (atomically), shrunk to ``max_size`` pixels on its longer side if given."""
    img = Image.fromarray(rgb)
    if max_size and max(img.size) > max_size:
        img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def mosaic(tiles: list[NDArray[np.uint8]], gap: int = 8) -> NDArray[np.uint8]:
    """Side-by-side panels of equal height (shorter ones padded)."""
    h = max(t.shape[0] for t in tiles)
    padded = [np.pad(t, ((0, h - t.shape[0]), (0, gap), (0, 0)), constant_values=255) for t in tiles]
    return np.concatenate(padded, axis=1)


def shrink(rgb: NDArray[np.uint8], max_size: int) -> NDArray[np.uint8]:
    """The image shrunk (Lanczos) so that its longer side is at most ``max_size`` pixels."""
    img = Image.fromarray(rgb)
    if max(img.size) > max_size:
        img.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return np.asarray(img)


def annotated_mosaic(panels: list[NDArray[np.uint8]], titles: list[str], pixel_m: float,
                     legend: list[tuple[tuple[int, int, int], str]] | None = None, gap: int = 8,
                     font_px: int = 14) -> NDArray[np.uint8]:
    """Panels side by side, each with its title above, a scale bar on the first panel (``pixel_m``: the
    panels' pixel size in metres) and an optional colour key (swatch, label) under the panels."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_px)
    line = font_px + 6
    body = mosaic(panels, gap)
    key_rows = 1 if legend else 0
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + line * (1 + key_rows) + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(body), (0, line))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for panel, title in zip(panels, titles):
        draw.text((x + 2, 2), title, fill=(0, 0, 0), font=font)
        x += panel.shape[1] + gap
    # scale bar: a round length near a fifth of the first panel's width
    width_m = panels[0].shape[1] * pixel_m
    length_m = max((s for s in (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000) if s <= width_m / 5),
                   default=100)
    bar_px = int(round(length_m / pixel_m))
    y = line + panels[0].shape[0] - 12
    draw.rectangle((8, y, 8 + bar_px, y + 4), fill=(255, 255, 255), outline=(0, 0, 0))
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m} m"
    draw.text((12 + bar_px, y - font_px + 4), f"{label} ({pixel_m:.3g} m/px)", fill=(255, 255, 255), font=font,
              stroke_width=2, stroke_fill=(0, 0, 0))
    if legend:
        x, y = 2, line + body.shape[0] + 2
        for colour, text in legend:
            draw.rectangle((x, y + 2, x + font_px, y + 2 + font_px), fill=tuple(colour), outline=(0, 0, 0))
            draw.text((x + font_px + 4, y), text, fill=(0, 0, 0), font=font)
            x += font_px + 12 + int(draw.textlength(text, font=font))
    return np.asarray(canvas)
