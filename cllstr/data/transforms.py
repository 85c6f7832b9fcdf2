"""Image decoding, resizing, augmentation and batch normalisation for the torch loader.

Everything per sample stays in Pillow/numpy and writes a ``uint8`` array ``(H, W, C)`` (:func:`resize_into` fills a slot
of a preallocated batch); the batch is converted to a float tensor once, in the collate function
(:func:`normalize_images`). JPEGs decode at full scale, as the reference does (``Image.open(...).convert``), unless
``jpeg_draft`` asks for Pillow's draft mode: the smallest reduced DCT scale (1/2, 1/4, 1/8) still at least the target
size, several times less decoding work for large crops but different pixels (a speed option for training; see
``benchmarks/bench_loader.py`` for its measured effect). Images are resized straight to the final size.
Fixed resize (32x100, bicubic) and keep-ratio resize with right padding by edge replication follow the reference
``ResizeNormalize`` / ``NormalizePAD``.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

__all__ = [
    "AUGMENTATIONS",
    "Augment",
    "DECODE_ERRORS",
    "ImageTransform",
    "decode_image",
    "normalize_images",
    "register_augmentation",
    "resize_fixed",
    "resize_into",
    "resize_keep_ratio",
    "to_batch_tensor",
]

#: Exceptions that mean "this record's image is unreadable": the loader skips the record and counts it.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

_INTERPOLATION = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def decode_image(
    buf: bytes, mode: str = "RGB", size: tuple[int, int] | None = None, *, draft: bool = False
) -> Image.Image:
    """Decode encoded image bytes with Pillow (at full scale unless ``draft``).

    Args:
        buf: Encoded image (PNG, JPEG, WebP, BMP, ...).
        mode: ``"RGB"`` or ``"L"``.
        size: ``(width, height)`` the image will be resized to.
        draft: With ``size``, decode a JPEG at the smallest reduced DCT scale still at least ``size`` (faster for
            large crops, but not the reference's pixels).

    Returns:
        The decoded image in ``mode``.

    Raises:
        OSError / ValueError / Image.DecompressionBombError: for corrupt or unreadable data.
    """
    img = Image.open(io.BytesIO(buf))
    if draft and size is not None and img.format == "JPEG":
        img.draft(mode, size)
    img.load()
    if img.mode != mode:
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            # Composite transparent images on white, as a viewer shows them, instead of on black.
            rgba = img.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, rgba)
        img = img.convert(mode)
    if img.width == 0 or img.height == 0:
        raise ValueError("image has zero width or height")
    return img


def _as_hwc(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def resize_into(img: Image.Image, out: np.ndarray, keep_ratio: bool = False, interpolation: str = "bicubic") -> None:
    """Resize ``img`` into a preallocated ``uint8`` array ``out`` of shape ``(H, W, C)``.

    A fixed resize fills ``out`` exactly, ignoring the aspect ratio. ``keep_ratio`` resizes to height ``H`` keeping
    the aspect ratio (width capped at ``W``) and right-pads by replicating the last column (reference ``NormalizePAD``).
    """
    height, width = out.shape[:2]
    new_w = max(1, min(width, math.ceil(height * img.width / img.height))) if keep_ratio else width
    if img.size != (new_w, height):
        img = img.resize((new_w, height), _INTERPOLATION[interpolation])
    out[:, :new_w] = _as_hwc(img)
    if new_w < width:
        out[:, new_w:] = out[:, new_w - 1 : new_w]


def resize_fixed(img: Image.Image, width: int, height: int, interpolation: str = "bicubic") -> np.ndarray:
    """Resize to exactly ``(width, height)`` ignoring the aspect ratio.

    Returns:
        ``uint8`` array ``(height, width, C)``.
    """
    out = np.empty((height, width, len(img.getbands())), dtype=np.uint8)
    resize_into(img, out, keep_ratio=False, interpolation=interpolation)
    return out


def resize_keep_ratio(img: Image.Image, width: int, height: int, interpolation: str = "bicubic") -> np.ndarray:
    """Resize to ``height`` keeping the aspect ratio (width capped at ``width``), then right-pad by edge replication.

    Returns:
        ``uint8`` array ``(height, width, C)``.
    """
    out = np.empty((height, width, len(img.getbands())), dtype=np.uint8)
    resize_into(img, out, keep_ratio=True, interpolation=interpolation)
    return out


def normalize_images(images: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
    """Convert a ``uint8`` batch to float normalised to ``[-1, 1]``.

    Args:
        images: ``(B, H, W, C)`` ``uint8``.
        out: Optional contiguous ``(B, C, H, W)`` float32 tensor to write into (e.g. one in shared memory).

    Returns:
        ``(B, C, H, W)`` float32 tensor, ``x / 127.5 - 1`` computed in float32.
    """
    b, h, w, c = images.shape
    if out is None:
        out = torch.empty((b, c, h, w), dtype=torch.float32)
    dst = out.numpy()
    # One pass does the uint8 → float32 cast, the division and the HWC → CHW transpose; a second the shift.
    np.divide(images.transpose(0, 3, 1, 2), np.float32(127.5), out=dst, dtype=np.float32)
    np.subtract(dst, np.float32(1.0), out=dst)
    return out


def to_batch_tensor(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """Stack ``uint8`` ``(H, W, C)`` arrays into one float batch normalised to ``[-1, 1]``.

    Args:
        arrays: Same-shape ``uint8`` arrays.

    Returns:
        ``(B, C, H, W)`` float32 tensor, ``x / 127.5 - 1``.
    """
    if not len(arrays):
        raise ValueError("cannot build a batch from zero images")
    return normalize_images(np.stack(arrays))


AUGMENTATIONS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {}


def register_augmentation(name: str):
    """Decorator registering an augmentation ``fn(img, rng) -> img`` under ``name``."""

    def wrap(fn: Callable[[Image.Image, random.Random], Image.Image]):
        if name in AUGMENTATIONS:
            raise ValueError(f"augmentation {name!r} is already registered")
        AUGMENTATIONS[name] = fn
        return fn

    return wrap


@register_augmentation("crop")
def _crop(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    cw, ch = max(1, round(w * rng.uniform(0.85, 1.0))), max(1, round(h * rng.uniform(0.85, 1.0)))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return img.crop((x, y, x + cw, y + ch))


@register_augmentation("rotate")
def _rotate(img: Image.Image, rng: random.Random) -> Image.Image:
    fill = img.getpixel((0, 0))
    return img.rotate(rng.uniform(-5.0, 5.0), resample=Image.Resampling.BILINEAR, expand=False, fillcolor=fill)


@register_augmentation("blur")
def _blur(img: Image.Image, rng: random.Random) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))


@register_augmentation("contrast")
def _contrast(img: Image.Image, rng: random.Random) -> Image.Image:
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.6, 1.4))
    return ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))


@register_augmentation("invert")
def _invert(img: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.invert(img)


class Augment:
    """Apply each registered op with probability ``p``, in the given order.

    Random draws come from the process's global :mod:`random` generator: the DataLoader seeds it in every worker from
    its own generator, and the training engine seeds it, checkpoints it and restores it on ``--resume``, so an
    augmented run resumes exactly (a private generator could not be checkpointed).

    Args:
        ops: Names in :data:`AUGMENTATIONS`.
        p: Probability of each op.
    """

    def __init__(self, ops: Sequence[str] = ("crop", "rotate", "blur", "contrast"), p: float = 0.3) -> None:
        unknown = [o for o in ops if o not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; known: {', '.join(AUGMENTATIONS)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augmentation probability must be in [0, 1], got {p}")
        self.ops = tuple(ops)
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        rng = random._inst  # the generator behind random.random(): seeded, saved and restored by the engine
        for name in self.ops:
            if rng.random() < self.p:
                img = AUGMENTATIONS[name](img, rng)
        return img


class ImageTransform:
    """Encoded bytes → ``uint8`` ``(H, W, C)`` array: decode, optional augmentation, resize.

    Args:
        img_h: Output height.
        img_w: Output width.
        keep_ratio: Keep the aspect ratio and right-pad (reference ``--PAD``) instead of a fixed resize.
        rgb: Three channels, else grey.
        augment: An :class:`Augment`, or None.
        interpolation: ``bicubic`` (reference), ``bilinear``, ``nearest``, ``lanczos`` or ``box``.
        jpeg_draft: Decode JPEGs in Pillow's draft mode (reduced DCT scale) when no augmentation follows: faster,
            but pixels differ from the reference's full-scale decode. Off by default.
    """

    def __init__(
        self,
        img_h: int = 32,
        img_w: int = 100,
        keep_ratio: bool = False,
        rgb: bool = False,
        augment: Augment | None = None,
        interpolation: str = "bicubic",
        jpeg_draft: bool = False,
    ) -> None:
        if img_h < 1 or img_w < 1:
            raise ValueError(f"image size must be positive, got {img_h}x{img_w}")
        if interpolation not in _INTERPOLATION:
            raise ValueError(f"unknown interpolation {interpolation!r}; known: {', '.join(_INTERPOLATION)}")
        self.img_h, self.img_w = img_h, img_w
        self.keep_ratio = keep_ratio
        self.mode = "RGB" if rgb else "L"
        self.augment = augment
        self.interpolation = interpolation
        self.jpeg_draft = jpeg_draft

    @property
    def channels(self) -> int:
        """Output channels (3 for RGB, 1 for grey)."""
        return 3 if self.mode == "RGB" else 1

    def decode(self, buf: bytes) -> Image.Image:
        """Decode ``buf`` in this transform's mode (with ``jpeg_draft`` and no augmentation, at a reduced scale)."""
        # Draft only without augmentation: crops need the full-resolution pixels to stay faithful.
        draft = self.jpeg_draft and self.augment is None
        return decode_image(buf, self.mode, (self.img_w, self.img_h), draft=draft)

    def resize_into(self, img: Image.Image, out: np.ndarray) -> None:
        """Resize a decoded (and augmented) image into ``out``: ``uint8`` ``(img_h, img_w, channels)``."""
        resize_into(img, out, self.keep_ratio, self.interpolation)

    def __call__(self, buf: bytes) -> np.ndarray:
        img = self.decode(buf)
        if self.augment is not None:
            img = self.augment(img)
        out = np.empty((self.img_h, self.img_w, self.channels), dtype=np.uint8)
        self.resize_into(img, out)
        return out
