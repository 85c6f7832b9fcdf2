"""Scene-realism effects of the renderer: text colour from the background, lighting, cast shadows, occlusion,
pixelation, motion and defocus blur, sensor noise, and vertical CJK layout.

Like :mod:`cllstr.synth.appearance`, every function is pure given a numpy ``Generator`` and works on whole arrays
(vectorised numpy, a handful of shifted copies for the blurs; no per-pixel Python loops). Images are ``(H, W, 3)``
uint8 unless said otherwise.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

from cllstr.synth.appearance import Color, contrast_ratio, contrasting_color, pixel_axes

__all__ = [
    "dominant_colors",
    "color_from_background",
    "mute",
    "lighting",
    "cast_shadow",
    "occlude",
    "pixelate",
    "motion_blur",
    "defocus",
    "sensor_noise",
    "vertical_mask",
]


def dominant_colors(rng: np.random.Generator, image: np.ndarray, k: int = 3, iters: int = 4) -> list[Color]:
    """The ``k`` colour clusters of ``image`` (k-means on up to 96 sampled pixels), largest cluster first."""
    px = image.reshape(-1, 3).astype(np.float32)
    if len(px) > 96:
        px = px[rng.integers(0, len(px), 96)]
    centres = px[rng.integers(0, len(px), k)].copy()
    eye = np.eye(k, dtype=np.float32)
    for _ in range(iters):
        onehot = eye[np.argmin(((px[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)]
        counts = onehot.sum(0)
        # Empty clusters keep their centre; the others move to the mean of their pixels.
        centres = np.where(counts[:, None] > 0, onehot.T @ px / np.maximum(counts, 1)[:, None], centres)
    order = np.argsort(-counts, kind="stable")
    return [tuple(int(v) for v in np.clip(centres[j], 0, 255).round()) for j in order]


def color_from_background(
    rng: np.random.Generator, background: np.ndarray, min_contrast: float = 3.0, max_contrast: float = 21.0
) -> Color:
    """A text colour taken from the background's own colours (SynthText's idea of colours from clusters).

    The background is clustered; another cluster's colour is used when it contrasts enough with the dominant one
    (text in a colour the scene already holds); otherwise the dominant colour with its hue kept and its value
    flipped (dark text on a light wall of the same tint, or the reverse); black/white as the last resort.
    """
    cl = dominant_colors(rng, background)
    base = cl[0]
    ok = [c for c in cl[1:] if min_contrast <= contrast_ratio(c, base) <= max_contrast]
    if ok and rng.random() < 0.5:
        return ok[int(rng.integers(0, len(ok)))]
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in base))
    for _ in range(6):
        nv = float(np.clip(1.0 - v + rng.uniform(-0.25, 0.25), 0.0, 1.0))
        ns = float(np.clip(s * rng.uniform(0.5, 1.5), 0.0, 1.0))
        cand = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, ns, nv))
        if min_contrast <= contrast_ratio(cand, base) <= max_contrast:
            return cand
    return contrasting_color(rng, base, min_contrast, max_contrast)


def mute(color: Color, amount: float) -> Color:
    """``color`` moved ``amount`` (0..1) of the way towards its own grey level (desaturated, same lightness)."""
    grey = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return tuple(int(round(c + (grey - c) * amount)) for c in color)


def _ramp(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A linear ramp in [-1, 1] along a random direction, ``(h, w)`` float32."""
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = pixel_axes(h, w)
    t = (xx - w / 2) * np.cos(theta) / max(w, 1) + (yy - h / 2) * np.sin(theta) / max(h, 1)
    return t / max(float(np.abs(t).max()), 1e-6)


def lighting(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Uneven illumination: a multiplicative gain ``1 + strength * ramp``, plus a soft highlight half the time."""
    h, w = img.shape[:2]
    gain = 1.0 + strength * _ramp(rng, h, w)
    if rng.random() < 0.5:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        yy, xx = pixel_axes(h, w)
        r2 = ((yy - cy) / max(h, 1)) ** 2 + ((xx - cx) / max(w, 1) / 2) ** 2
        gain = gain + strength * 0.6 * np.exp(-r2 / 0.08)
    return np.clip(img.astype(np.float32) * gain[..., None], 0, 255).astype(np.uint8)


def cast_shadow(img: np.ndarray, rng: np.random.Generator, darkness: float) -> np.ndarray:
    """A shadow cast across the crop: one side of a random line darkened by ``darkness``, with a soft edge."""
    h, w = img.shape[:2]
    t = _ramp(rng, h, w) - rng.uniform(-0.6, 0.6)
    edge = rng.uniform(0.03, 0.3)
    shade = 1.0 / (1.0 + np.exp(-t / edge))
    gain = 1.0 - darkness * shade
    return np.clip(img.astype(np.float32) * gain[..., None], 0, 255).astype(np.uint8)


def occlude(
    img: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int], frac: float, color: Color
) -> np.ndarray:
    """Cover about ``frac`` of the text box ``(x0, y0, x1, y1)``: a block entering from an edge, or a thin bar
    (wire, pole, frame) across the text. The rest of the text stays readable, so the label stays valid."""
    out = img.copy()
    x0, y0, x1, y1 = box
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    if rng.random() < 0.5:
        # Block from the top or bottom edge, at most ~40% of the height, wide enough to hold ``frac`` of the box.
        hh = max(1, int(round(bh * rng.uniform(0.15, 0.4))))
        ww = max(1, min(bw, int(round(frac * bw * bh / hh))))
        xa = x0 + int(rng.integers(0, bw - ww + 1))
        ya = y0 if rng.random() < 0.5 else y1 - hh
        out[ya : ya + hh, xa : xa + ww] = color
    else:
        # Thin bar: vertical (pole) or slanted, about ``frac`` of the box area.
        th = max(1, int(round(frac * bw)))
        xa = x0 + int(rng.integers(0, max(1, bw - th)))
        slope = rng.uniform(-0.4, 0.4)
        yy, xx = np.ogrid[0 : img.shape[0], 0 : img.shape[1]]
        d = xx - (xa + slope * (yy - y0))
        out[(d >= 0) & (d < th)] = color
    return out


def pixelate(img: Image.Image, factor: float) -> Image.Image:
    """Lose resolution: shrink to ``factor`` of the size (area average) and scale back up (bilinear)."""
    w, h = img.size
    small = img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BOX)
    return small.resize((w, h), Image.BILINEAR)


def _shift_mean(arr: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
    h, w = arr.shape[:2]
    r = max(max(abs(dx), abs(dy)) for dx, dy in offsets)
    padded = np.pad(arr.astype(np.float32), ((r, r), (r, r), (0, 0)), mode="edge")
    acc = np.zeros((h, w, arr.shape[2]), np.float32)
    for dx, dy in offsets:
        acc += padded[r + dy : r + dy + h, r + dx : r + dx + w]
    return np.clip(acc / len(offsets), 0, 255).astype(np.uint8)


def motion_blur(img: np.ndarray, rng: np.random.Generator, length: float) -> np.ndarray:
    """Camera shake: the mean of copies shifted along a random direction over ``length`` pixels."""
    n = max(2, int(round(length)))
    theta = rng.uniform(0, np.pi)
    steps = np.linspace(-(n - 1) / 2, (n - 1) / 2, n)
    offsets = sorted({(int(round(s * np.cos(theta))), int(round(s * np.sin(theta)))) for s in steps})
    return _shift_mean(img, offsets)


def defocus(img: np.ndarray, radius: float) -> np.ndarray:
    """Out-of-focus blur: the mean over a disk of ``radius`` pixels (a flat disk, not a Gaussian)."""
    r = max(1, int(round(radius)))
    offsets = [(dx, dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dx * dx + dy * dy <= radius * radius]
    return _shift_mean(img, offsets or [(0, 0)])


def sensor_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Camera noise: per-channel read noise of ``sigma`` grey levels plus shot noise growing with the signal."""
    x = img.astype(np.float32)
    std = sigma + 0.35 * sigma * np.sqrt(x / 16.0)
    return np.clip(x + rng.standard_normal(x.shape, dtype=np.float32) * std, 0, 255).astype(np.uint8)


def vertical_mask(masks: list[Image.Image], gap: float = 0.08) -> Image.Image:
    """Stack per-character ``L`` masks top to bottom, centred, then turn the column 90 degrees counter-clockwise.

    The result reads left to right with each character lying on its side: what a crop of vertical CJK text looks
    like after the usual "rotate tall crops" step, so its label stays the characters in reading order.
    """
    masks = [m for m in masks if m.width and m.height]
    if not masks:
        return Image.new("L", (1, 1), 0)
    cell = max(m.width for m in masks)
    step = int(round(cell * gap))
    h = sum(m.height for m in masks) + step * (len(masks) - 1)
    col = Image.new("L", (cell, h), 0)
    y = 0
    for m in masks:
        col.paste(m, ((cell - m.width) // 2, y))
        y += m.height + step
    return col.transpose(Image.Transpose.ROTATE_90)
