"""Scene-like appearance: colours with contrast control, procedural backgrounds, geometric and photometric effects.

All functions are pure given a numpy ``Generator`` and work on small arrays with vectorised numpy / PIL calls (no
per-pixel Python loops). Backgrounds live in a registry (:data:`BACKGROUNDS`) so styles name them by key; a folder of
user images can be added with :class:`ImageBackgrounds`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "contrast_ratio",
    "pick_colors",
    "contrasting_color",
    "BACKGROUNDS",
    "ImageBackgrounds",
    "make_background",
    "rotate_mask",
    "perspective_mask",
    "curve_mask",
    "compose",
    "pixel_axes",
    "add_noise",
    "blur",
    "encode_image",
]

Color = tuple[int, int, int]
Background = Callable[[np.random.Generator, int, int, Color], np.ndarray]


def _linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


#: sRGB -> linear light for the 256 integer levels (the same float64 values the formula gives), and the weights.
_LINEAR_LUT = _linear(np.arange(256, dtype=np.float64) / 255.0)
_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _luminance(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype.kind in "iu" and rgb.size and 0 <= rgb.min() and rgb.max() <= 255:
        return _LINEAR_LUT[rgb] @ _LUMA  # colours are integer triples: a table lookup instead of a power per channel
    return _linear(rgb.astype(np.float64) / 255.0) @ _LUMA


def contrast_ratio(a: Color | np.ndarray, b: Color | np.ndarray) -> np.ndarray | float:
    """WCAG contrast ratio between colours ``a`` and ``b`` (1 = identical, 21 = black on white); broadcasts."""
    la, lb = _luminance(np.asarray(a)), _luminance(np.asarray(b))
    hi, lo = np.maximum(la, lb), np.minimum(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def contrasting_color(
    rng: np.random.Generator, ref: Color, min_contrast: float = 3.0, max_contrast: float = 21.0
) -> Color:
    """A random colour whose contrast ratio to ``ref`` lies in ``[min_contrast, max_contrast]``.

    Candidates are drawn in a batch; if none qualifies, black or white is returned, whichever contrasts more with
    ``ref`` (always >= 4.5 for any colour).
    """
    cands = rng.integers(0, 256, (32, 3))
    ratios = contrast_ratio(cands, np.asarray(ref))
    ok = np.flatnonzero((ratios >= min_contrast) & (ratios <= max_contrast))
    if ok.size:
        return tuple(int(v) for v in cands[ok[0]])
    return (0, 0, 0) if contrast_ratio((0, 0, 0), ref) > contrast_ratio((255, 255, 255), ref) else (255, 255, 255)


def pick_colors(rng: np.random.Generator, min_contrast: float = 3.0, max_contrast: float = 21.0) -> tuple[Color, Color]:
    """A random (foreground, background) pair whose contrast ratio lies in ``[min_contrast, max_contrast]``."""
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    return contrasting_color(rng, bg, min_contrast, max_contrast), bg


def pixel_axes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates as float32 ``(h, 1)`` and ``(1, w)`` arrays (they broadcast to a full grid)."""
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _jitter(rng: np.random.Generator, color: Color, amount: int) -> np.ndarray:
    return np.clip(np.asarray(color) + rng.integers(-amount, amount + 1, 3), 0, 255)


def _flat(rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
    return np.broadcast_to(np.asarray(color, np.uint8), (h, w, 3)).copy()


def _gradient(rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
    c2 = _jitter(rng, color, 60)
    theta = rng.uniform(0, np.pi)
    yy, xx = pixel_axes(h, w)
    t = xx * np.cos(theta) / max(w, 1) + yy * np.sin(theta) / max(h, 1)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    out = np.asarray(color, np.float32) * (1 - t[..., None]) + c2.astype(np.float32) * t[..., None]
    return out.astype(np.uint8)


def _texture(rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
    gh, gw = int(rng.integers(2, 6)), int(rng.integers(3, 12))
    grid = rng.normal(0.0, rng.uniform(10, 40), (gh, gw, 3)).astype(np.float32)
    low = Image.fromarray(np.clip(grid + 128, 0, 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    fine = rng.normal(0.0, rng.uniform(2, 10), (h, w, 1)).astype(np.float32)
    out = np.asarray(color, np.float32) + np.asarray(low, np.float32) - 128.0 + fine
    return np.clip(out, 0, 255).astype(np.uint8)


def _noise(rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
    out = np.asarray(color, np.float32) + rng.normal(0.0, rng.uniform(5, 25), (h, w, 1)).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _stripes(rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
    c2 = _jitter(rng, color, 35)
    period = rng.uniform(3, 12)
    theta = rng.uniform(0, np.pi)
    yy, xx = pixel_axes(h, w)
    band = (np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period) > 0)[..., None]
    return np.where(band, np.asarray(color, np.uint8), c2.astype(np.uint8))


def _fractal(rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
    # Multi-octave value noise blending two related colours: stains, plaster, stone, foliage-like clutter.
    c2 = _jitter(rng, color, 80).astype(np.float32)
    acc = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(4):
        gh, gw = 2 + 2**octave, 2 + 2**octave * max(1, w // max(h, 1))
        grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32) * 255).convert("L")
        acc += amp * np.asarray(grid.resize((w, h), Image.BICUBIC), np.float32) / 255.0
        total += amp
        amp *= rng.uniform(0.4, 0.65)
    t = np.clip((acc / total - 0.5) * rng.uniform(1.5, 3.0) + 0.5, 0, 1)[..., None]
    return (np.asarray(color, np.float32) * (1 - t) + c2 * t).astype(np.uint8)


#: Procedural backgrounds by name: ``fn(rng, h, w, base_color) -> (h, w, 3) uint8``.
BACKGROUNDS: dict[str, Background] = {
    "flat": _flat,
    "gradient": _gradient,
    "texture": _texture,
    "noise": _noise,
    "stripes": _stripes,
    "fractal": _fractal,
}


class ImageBackgrounds:
    """Random crops of the images in a user folder, used as the ``"image"`` background.

    Args:
        folder: Folder searched recursively for ``.jpg/.jpeg/.png/.bmp/.webp`` files.
        cache: How many decoded images each process keeps.

    Raises:
        FileNotFoundError: the folder does not exist or holds no image.
    """

    SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

    def __init__(self, folder: str | Path, cache: int = 32):
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"background folder {str(folder)!r} is not a directory")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in self.SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"background folder {str(folder)!r} holds no {'/'.join(self.SUFFIXES)} image")
        self._cache: dict[int, np.ndarray] = {}
        self._cache_size = cache

    def _load(self, i: int) -> np.ndarray:
        if i not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            try:
                with Image.open(self.files[i]) as im:
                    self._cache[i] = np.asarray(im.convert("RGB"))
            except OSError as exc:
                raise OSError(f"cannot read background image {self.files[i]}: {exc}") from exc
        return self._cache[i]

    def __call__(self, rng: np.random.Generator, h: int, w: int, color: Color) -> np.ndarray:
        img = self._load(int(rng.integers(0, len(self.files))))
        ih, iw = img.shape[:2]
        scale = rng.uniform(1.0, 3.0)
        ch, cw = min(ih, max(2, int(h * scale))), min(iw, max(2, int(w * scale)))
        y, x = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
        crop = Image.fromarray(img[y : y + ch, x : x + cw]).resize((w, h), Image.BILINEAR)
        return np.asarray(crop)


def make_background(
    name: str, rng: np.random.Generator, h: int, w: int, color: Color, images: ImageBackgrounds | None = None
) -> np.ndarray:
    """Background ``name`` (a :data:`BACKGROUNDS` key, or ``"image"`` with ``images``) as ``(h, w, 3)`` uint8.

    Raises:
        KeyError: unknown background name (lists the known ones).
    """
    if name == "image":
        if images is None:
            return _texture(rng, h, w, color)
        return images(rng, h, w, color)
    try:
        fn = BACKGROUNDS[name]
    except KeyError:
        raise KeyError(f"unknown background {name!r}; known: {', '.join([*BACKGROUNDS, 'image'])}") from None
    return fn(rng, h, w, color)


def rotate_mask(mask: Image.Image, degrees: float) -> Image.Image:
    """Rotate an ``L`` mask about its centre, growing the canvas so no ink is cut."""
    if abs(degrees) < 0.05:
        return mask
    return mask.rotate(degrees, resample=Image.BILINEAR, expand=True, fillcolor=0)


def _perspective_coeffs(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    # PIL maps output -> input, so solve the homography taking dst corners to src corners.
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for k, ((x, y), (u, v)) in enumerate(zip(dst, src, strict=True)):
        a[2 * k] = (x, y, 1, 0, 0, 0, -u * x, -u * y)
        a[2 * k + 1] = (0, 0, 0, x, y, 1, -v * x, -v * y)
        b[2 * k], b[2 * k + 1] = u, v
    return tuple(np.linalg.solve(a, b).tolist())


def perspective_mask(mask: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """Random perspective warp of an ``L`` mask; ``strength`` is the max corner shift as a fraction of the height."""
    if strength <= 0:
        return mask
    w, h = mask.size
    d = strength * h
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], dtype=np.float64)
    dst = src + rng.uniform(-d, d, (4, 2))
    dst -= dst.min(axis=0)
    ow, oh = int(np.ceil(dst[:, 0].max())) + 1, int(np.ceil(dst[:, 1].max())) + 1
    return mask.transform((ow, oh), Image.PERSPECTIVE, _perspective_coeffs(src, dst), Image.BILINEAR, fillcolor=0)


def curve_mask(mask: Image.Image, amplitude: float) -> Image.Image:
    """Bend a mask (``L`` or multi-band) along an arc: column ``x`` moves down by ``amplitude * (1 - (2x/w - 1)^2)``.

    ``amplitude`` is in pixels; negative values bend upwards. The canvas grows by ``|amplitude|``.
    """
    a = int(round(abs(amplitude)))
    if a < 1:
        return mask
    arr = np.asarray(mask)
    h, w = arr.shape[:2]
    x = np.linspace(-1.0, 1.0, w)
    shift = np.rint(a * (1.0 - x**2)).astype(np.int64)
    if amplitude < 0:
        shift = a - shift
    rows = np.arange(h + a)[:, None] - shift[None, :]
    valid = (rows >= 0) & (rows < h)
    out = arr[np.clip(rows, 0, h - 1), np.arange(w)[None, :]]
    out = np.where(valid.reshape(valid.shape + (1,) * (arr.ndim - 2)), out, 0).astype(np.uint8)
    return Image.fromarray(out)


def compose(background: np.ndarray, layers: list[tuple[np.ndarray, Color]]) -> np.ndarray:
    """Alpha-blend coloured layers over a background, in order.

    Args:
        background: ``(H, W, 3)`` uint8.
        layers: ``(alpha (H, W) uint8 or float in [0, 1], colour)`` pairs, bottom first.

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    out = background.astype(np.float32)
    for alpha, color in layers:
        a = alpha.astype(np.float32)
        if alpha.dtype == np.uint8:
            a *= 1.0 / 255.0
        a = a[..., None]
        out = out * (1.0 - a) + np.asarray(color, np.float32) * a
    return np.clip(out, 0, 255).astype(np.uint8)


def add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``sigma`` (grey levels) on a uint8 image."""
    if sigma <= 0:
        return img
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape[:2] + (1,)).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def blur(img: Image.Image, radius: float) -> Image.Image:
    """Gaussian blur of ``radius`` pixels (no-op below 0.1)."""
    return img.filter(ImageFilter.GaussianBlur(radius)) if radius >= 0.1 else img


def encode_image(img: Image.Image, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encode to JPEG (``quality`` 1–95, the compression artefacts are part of the look) or PNG bytes.

    Raises:
        ValueError: unknown format.
    """
    buf = io.BytesIO()
    fmt = fmt.lower()
    if fmt in ("jpeg", "jpg"):
        img.save(buf, format="JPEG", quality=int(np.clip(quality, 1, 95)))
    elif fmt == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"unknown image format {fmt!r}; use 'jpeg' or 'png'")
    return buf.getvalue()
