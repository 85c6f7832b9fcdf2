"""The DALI processing, as plain functions on ``DataNode``s shared by the GPU ("mixed") and CPU pipelines.

:func:`decode` decodes on the GPU (``"mixed"``) or the CPU, and every later operator runs where its input lives. The
preprocessing matches the torch loader (:mod:`cllstr.data.loading.decode`): Pillow's decode mode (grey or RGB, no EXIF
rotation), the resize with the same filter, the keep-ratio rule ``new_w = min(W, ceil(H * w / h))`` with right
padding by edge replication, and ``x / 127.5 - 1``. On the CPU :func:`resize` runs cllstr's DALI plugin
(:mod:`cllstr.data.loading.dali.plugin`: Pillow's resize, bit-exact, in one operator) when it is loaded; on the GPU, or
without the plugin, DALI's antialiased ``fn.resize`` (and an identity warp that repeats the border for the padding).
Augmentations run on the resized ``H x W`` image, each with its own probability, inside DALI conditionals (the
pipeline needs ``enable_conditionals=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from nvidia.dali import fn, types
from nvidia.dali import math as dmath
from nvidia.dali.data_node import DataNode

from cllstr.data.loading.dali import plugin

__all__ = [
    "INTERPOLATIONS",
    "AugmentConfig",
    "augment",
    "check_interpolation",
    "crop_region",
    "decode",
    "image_size",
    "normalize",
    "perspective_matrix",
    "resize",
]

#: Torch-path filter names → DALI interpolation (Pillow's ``box`` has no DALI counterpart).
INTERPOLATIONS: dict[str, Any] = {
    "nearest": types.INTERP_NN,
    "bilinear": types.INTERP_LINEAR,
    "bicubic": types.INTERP_CUBIC,
    "lanczos": types.INTERP_LANCZOS3,
}


def check_interpolation(name: str) -> Any:
    """The DALI interpolation type of a torch-path filter name; a clear error for one DALI lacks."""
    if name not in INTERPOLATIONS:
        raise ValueError(f"interpolation {name!r} is not available in DALI; known: {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, how often (each with probability ``p``), and how strongly.

    Attributes:
        p: Probability of each enabled augmentation per sample.
        crop: Random crop of the source image (``crop_scale`` of its width and height) before the resize.
        rotate: Rotation by up to ``max_angle`` degrees.
        warp: Perspective + shear warp (corner displacement up to ``warp_strength`` of the image size).
        color: Brightness/contrast jitter (and saturation/hue for RGB).
        blur: Gaussian blur with sigma in ``blur_sigma``.
        noise: Additive Gaussian noise with std (0–255 scale) in ``noise_std``.
        jpeg: JPEG compression artefacts with quality in ``jpeg_quality``.
        invert: Invert the intensities.
    """

    p: float = 0.3
    crop: bool = True
    crop_scale: tuple[float, float] = (0.85, 1.0)
    rotate: bool = True
    max_angle: float = 5.0
    warp: bool = True
    warp_strength: float = 0.06
    color: bool = True
    brightness: tuple[float, float] = (0.7, 1.3)
    contrast: tuple[float, float] = (0.6, 1.4)
    saturation: tuple[float, float] = (0.6, 1.4)
    hue: float = 10.0
    blur: bool = True
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise: bool = True
    noise_std: tuple[float, float] = (2.0, 10.0)
    jpeg: bool = True
    jpeg_quality: tuple[int, int] = (30, 90)
    invert: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"augmentation probability p must be in [0, 1], got {self.p}")
        for name in ("crop_scale", "brightness", "contrast", "saturation", "blur_sigma", "noise_std", "jpeg_quality"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"augmentation range {name} must be (low, high), got {(lo, hi)}")
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise ValueError(f"crop_scale must lie in (0, 1], got {self.crop_scale}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must lie in [1, 100], got {self.jpeg_quality}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        """Build from a mapping (YAML/TOML section); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown DALI augmentation option(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @property
    def enabled(self) -> list[str]:
        """Names of the enabled augmentations."""
        names = ("crop", "rotate", "warp", "color", "blur", "noise", "jpeg", "invert")
        return [n for n in names if getattr(self, n)] if self.p > 0 else []


def decode(encoded: DataNode, device: str, rgb: bool) -> DataNode:
    """Decode images as Pillow does for the torch path (no EXIF rotation).

    Args:
        encoded: Encoded bytes, ``uint8 (n_bytes,)`` per sample, on the CPU.
        device: ``"mixed"`` (decode on the GPU, output on the GPU) or ``"cpu"``.
        rgb: Three channels, else grey.

    Returns:
        ``uint8 (h, w, C)`` images, ``C`` = 3 or 1.
    """
    output_type = types.RGB if rgb else types.GRAY
    return fn.decoders.image(encoded, device=device, output_type=output_type, adjust_orientation=False)


def image_size(encoded: DataNode) -> tuple[DataNode, DataNode]:
    """Height and width (float32 scalars, CPU) read from the encoded headers, without decoding."""
    shape = fn.peek_image_shape(encoded, dtype=types.FLOAT, adjust_orientation=False)
    return shape[0], shape[1]


def crop_region(
    h: DataNode, w: DataNode, cfg: AugmentConfig | None
) -> tuple[DataNode | float, DataNode | float, DataNode, DataNode]:
    """The source region ``(y0, x0, height, width)`` to resize: the whole image, or a random crop.

    Without augmentation the region is the whole image; with ``cfg.crop`` a crop of ``crop_scale`` of each side
    is taken with probability ``cfg.p`` (the others keep scale 1).
    """
    if cfg is None or not cfg.crop or cfg.p == 0:
        return 0.0, 0.0, h, w
    hit = fn.cast(fn.random.coin_flip(probability=cfg.p), dtype=types.FLOAT)
    lo, hi = cfg.crop_scale
    sy = 1.0 - hit * (1.0 - fn.random.uniform(range=(lo, hi)))
    sx = 1.0 - hit * (1.0 - fn.random.uniform(range=(lo, hi)))
    ch, cw = dmath.max(h * sy, 1.0), dmath.max(w * sx, 1.0)
    y0 = (h - ch) * fn.random.uniform(range=(0.0, 1.0))
    x0 = (w - cw) * fn.random.uniform(range=(0.0, 1.0))
    return y0, x0, ch, cw


def resize(
    images: DataNode,
    img_h: int,
    img_w: int,
    keep_ratio: bool = False,
    interpolation: str = "bicubic",
    region: tuple[DataNode | float, DataNode | float, DataNode, DataNode] | None = None,
) -> DataNode:
    """Resize ``region`` of each image to ``img_h x img_w``, stretching it or keeping its aspect ratio.

    With ``keep_ratio`` the content is ``new_w = clamp(ceil(img_h * w / h), 1, img_w)`` wide and the rest of the row
    repeats its last column (the torch path's ``resize_keep_ratio``). CPU images go through the plugin operator
    ``fn.cllstr.text_resize`` when :data:`cllstr.data.loading.dali.plugin.HAS_PLUGIN` (Pillow's ``resize`` with ``box=``
    the region, bit for bit), others through ``fn.resize``.

    Args:
        images: ``uint8 (h, w, C)``.
        img_h: Output height.
        img_w: Output width.
        keep_ratio: Keep the aspect ratio and pad right by edge replication.
        interpolation: Key of :data:`INTERPOLATIONS`.
        region: ``(y0, x0, height, width)`` from :func:`crop_region`; required with ``keep_ratio`` (None: the
            whole image).

    Returns:
        ``uint8 (img_h, img_w, C)``.
    """
    interp = check_interpolation(interpolation)
    if region is None and keep_ratio:
        raise ValueError("resize(keep_ratio=True) needs the image region (see crop_region)")
    if images.device == "cpu" and plugin.HAS_PLUGIN:
        roi = {}
        if region is not None:
            y0, x0, h, w = region
            roi = dict(roi_y=y0, roi_x=x0, roi_h=h, roi_w=w)
        return fn.cllstr.text_resize(images, size=(img_h, img_w), interp=interpolation, keep_ratio=keep_ratio, **roi)
    if region is None:
        return fn.resize(images, size=(img_h, img_w), interp_type=interp, antialias=True, dtype=types.UINT8)
    y0, x0, h, w = region
    roi_start = fn.stack(y0, x0) if isinstance(y0, DataNode) else (0.0, 0.0)
    roi_end = fn.stack(y0 + h, x0 + w)
    common = dict(roi_start=roi_start, roi_end=roi_end, roi_relative=False, interp_type=interp, antialias=True)
    if not keep_ratio:
        return fn.resize(images, size=(img_h, img_w), dtype=types.UINT8, **common)
    new_w = dmath.clamp(dmath.ceil(img_h * w / h), 1.0, float(img_w))
    content = fn.resize(images, resize_y=float(img_h), resize_x=new_w, dtype=types.UINT8, **common)
    # An identity warp onto the full width: without a fill value DALI repeats the border pixel, which is the
    # torch path's edge padding of the resized content.
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return fn.warp_affine(content, matrix=identity, size=(img_h, img_w), interp_type=types.INTERP_NN)


def perspective_matrix(angle: DataNode, shear: DataNode, gx: DataNode, gy: DataNode, cx: float, cy: float) -> DataNode:
    """The 3x3 matrix of ``T(c) · [[R·S, 0], [g, 1]] · T(-c)``: rotation, shear and projective terms about the centre.

    Args:
        angle: Rotation in radians (float scalar per sample).
        shear: Horizontal shear factor.
        gx: Projective term along x (1/pixels).
        gy: Projective term along y (1/pixels).
        cx: Centre x (pixels).
        cy: Centre y (pixels).

    Returns:
        ``float32 (3, 3)`` per sample, mapping output to input coordinates.
    """
    cos, sin = dmath.cos(angle), dmath.sin(angle)
    a, b = cos, cos * shear - sin
    c, d = sin, sin * shear + cos
    k = gx * cx + gy * cy
    row0 = (a + cx * gx, b + cx * gy, cx * (1.0 - k) - (a * cx + b * cy))
    row1 = (c + cy * gx, d + cy * gy, cy * (1.0 - k) - (c * cx + d * cy))
    row2 = (gx, gy, 1.0 - k)
    flat = fn.stack(*[fn.cast(v, dtype=types.FLOAT) for v in (*row0, *row1, *row2)])
    return fn.reshape(flat, shape=(3, 3))


def _geometric(images: DataNode, cfg: AugmentConfig, img_h: int, img_w: int) -> DataNode:
    # A disabled op draws with probability 0, so its parameters are exactly the identity.
    hit_r = fn.random.coin_flip(probability=cfg.p if cfg.rotate else 0.0, dtype=types.BOOL)
    hit_w = fn.random.coin_flip(probability=cfg.p if cfg.warp else 0.0, dtype=types.BOOL)
    on_r, on_w = fn.cast(hit_r, dtype=types.FLOAT), fn.cast(hit_w, dtype=types.FLOAT)
    limit = cfg.max_angle * math.pi / 180.0
    s = cfg.warp_strength
    angle = on_r * fn.random.uniform(range=(-limit, limit))
    shear = on_w * fn.random.uniform(range=(-2.0 * s, 2.0 * s))
    gx = on_w * fn.random.uniform(range=(-s / img_w, s / img_w))
    gy = on_w * fn.random.uniform(range=(-s / img_h, s / img_h))
    matrix = perspective_matrix(angle, shear, gx, gy, img_w / 2.0, img_h / 2.0)
    if hit_r | hit_w:
        images = fn.experimental.warp_perspective(
            images, matrix=matrix, size=(img_h, img_w), border_mode="replicate", interp_type=types.INTERP_LINEAR
        )
    return images


def _coin(p: float) -> DataNode:
    """A per-sample boolean, true with probability ``p`` (the predicate of a DALI conditional)."""
    return fn.random.coin_flip(probability=p, dtype=types.BOOL)


def _color(images: DataNode, cfg: AugmentConfig, rgb: bool) -> DataNode:
    if _coin(cfg.p):
        brightness = fn.random.uniform(range=cfg.brightness)
        contrast = fn.random.uniform(range=cfg.contrast)
        images = fn.brightness_contrast(images, brightness=brightness, contrast=contrast, contrast_center=128.0)
        if rgb:
            hue = fn.random.uniform(range=(-cfg.hue, cfg.hue))
            images = fn.hsv(images, saturation=fn.random.uniform(range=cfg.saturation), hue=hue)
    return images


def _jpeg(images: DataNode, quality: DataNode, rgb: bool) -> DataNode:
    if rgb:
        return fn.jpeg_compression_distortion(images, quality=quality)
    # The JPEG distortion takes RGB only; a grey image as R=G=B has no chroma, so channel 0 is its luma.
    as_rgb = fn.cat(images, images, images, axis=2)
    return fn.jpeg_compression_distortion(as_rgb, quality=quality)[:, :, 0:1]


def augment(images: DataNode, cfg: AugmentConfig, img_h: int, img_w: int, rgb: bool) -> DataNode:
    """Geometric then photometric augmentation of resized images, each op with probability ``cfg.p``.

    Args:
        images: ``uint8 (img_h, img_w, C)``.
        cfg: What to apply.
        img_h: Image height.
        img_w: Image width.
        rgb: Whether ``C`` is 3 (enables saturation/hue jitter).

    Returns:
        ``uint8 (img_h, img_w, C)``.
    """
    if cfg.rotate or cfg.warp:
        images = _geometric(images, cfg, img_h, img_w)
    if cfg.color:
        images = _color(images, cfg, rgb)
    if cfg.invert:
        if _coin(cfg.p):
            images = fn.cast(255 - images, dtype=types.UINT8)
    if cfg.blur:
        if _coin(cfg.p):
            images = fn.gaussian_blur(images, sigma=fn.random.uniform(range=cfg.blur_sigma))
    if cfg.noise:
        if _coin(cfg.p):
            images = fn.noise.gaussian(images, stddev=fn.random.uniform(range=cfg.noise_std))
    if cfg.jpeg:
        if _coin(cfg.p):
            lo, hi = cfg.jpeg_quality
            images = _jpeg(images, fn.random.uniform(range=(lo, hi + 1), dtype=types.INT32), rgb)
    return images


def normalize(images: DataNode, channels: int) -> DataNode:
    """``uint8 (H, W, C)`` → ``float32 (C, H, W)`` in ``[-1, 1]`` (``x / 127.5 - 1``, as the torch collate)."""
    return fn.crop_mirror_normalize(
        images, dtype=types.FLOAT, output_layout="CHW", mean=[127.5] * channels, std=[127.5] * channels
    )
