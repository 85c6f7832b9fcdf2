"""The one decode path of the loaders: encoded bytes → Pillow → ``uint8`` ``(H, W, C)`` → a batch array.

Per sample everything stays in Pillow/numpy and writes a ``uint8`` array ``(H, W, C)`` (:func:`resize_into` fills a
slot of a preallocated batch); :func:`transform_batch` decodes a whole batch on a small per-process thread pool (Pillow
releases the GIL while it decodes and resizes) and the float batch is made once (:func:`normalize_images`). The result
does not depend on the number of threads: every image lands in its own slot, and augmentation, whose RNG is consumed
in sample order, runs sequentially between a parallel decode and a parallel resize.

JPEGs decode at full scale, as the reference does (``Image.open(...).convert``), unless ``jpeg_draft`` asks for
Pillow's draft mode: the smallest reduced DCT scale (1/2, 1/4, 1/8) still at least the target size, several times less
decoding work for large crops but different pixels (a speed option for training; ``benchmarks/bench_loader.py``
measures it). Fixed resize (32x100, bicubic) and keep-ratio resize with right padding by edge replication follow the
reference ``ResizeNormalize`` / ``NormalizePAD``.

Images come out as a viewer shows them (:func:`prepare_image`): 16-bit grey scaled to 8 bits (Pillow's own
conversion clips it to white), anything transparent (an alpha channel or a PNG/GIF transparent colour) composited on
white instead of showing the hidden pixels, and, for a user's photographs (``upright=True``), turned by their EXIF
orientation; dataset records keep their stored orientation, as the reference loaders and DALI read them.
"""

from __future__ import annotations

import concurrent.futures
import io
import math
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from cllstr.data.loading.augment import Augment
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.store.format import DECODE_ERRORS

__all__ = [
    "DECODE_ERRORS",
    "ImageTransform",
    "auto_decode_threads",
    "decode_image",
    "normalize_images",
    "parallel_for",
    "prepare_image",
    "resize_fixed",
    "resize_into",
    "resize_keep_ratio",
    "to_batch_tensor",
    "transform_batch",
]

_INTERPOLATION = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def decode_image(
    buf: bytes, mode: str = "RGB", size: tuple[int, int] | None = None, *, draft: bool = False, upright: bool = False
) -> Image.Image:
    """Decode encoded image bytes with Pillow (at full scale unless ``draft``).

    Args:
        buf: Encoded image (PNG, JPEG, WebP, BMP, ...).
        mode: ``"RGB"`` or ``"L"``.
        size: ``(width, height)`` the image will be resized to.
        draft: With ``size``, decode a JPEG at the smallest reduced DCT scale still at least ``size`` (faster for
            large crops, but not the reference's pixels).
        upright: Turn the image by its EXIF orientation (:func:`prepare_image`). Off for dataset records: the
            reference loaders, DALI's decoders and the LMDB writers all take the pixels as stored; on for a user's
            photographs (``cllstr predict``, the :class:`~cllstr.recognizer.Recognizer`).

    Returns:
        The decoded image in ``mode``.

    Raises:
        OSError / ValueError / Image.DecompressionBombError: for corrupt or unreadable data.
    """
    try:
        img = Image.open(io.BytesIO(buf))
    except UnidentifiedImageError:  # Pillow's message names the BytesIO object, not the data
        raise UnidentifiedImageError("not an image, or in a format Pillow cannot read") from None
    if draft and size is not None and img.format == "JPEG":
        img.draft(mode, size[::-1] if upright and _orientation(img) in _SWAPS_SIDES else size)
    img.load()
    return prepare_image(img, mode, upright=upright)


#: EXIF orientation → the transpose that shows the image upright (orientation 1 or none: as stored).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation of ``img`` (1 when it has none, or a damaged EXIF block)."""
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block leaves the pixels readable, as stored
        return 1
    return value if isinstance(value, int) else 1


def prepare_image(img: Image.Image, mode: str = "RGB", *, upright: bool = False) -> Image.Image:
    """``img`` as a viewer shows it, in ``mode``: 16-bit grey scaled to 8 bits, transparency (alpha, or a
    transparent colour of a PNG/GIF) composited on white, and with ``upright`` turned by its EXIF orientation.

    Args:
        img: A Pillow image of any mode.
        mode: ``"RGB"`` or ``"L"``.
        upright: Apply the EXIF orientation (see :func:`decode_image`).

    Raises:
        ValueError: for an image with zero width or height.
    """
    transpose = _UPRIGHT.get(_orientation(img)) if upright else None
    if transpose is not None:
        img = img.transpose(transpose)
    if img.mode.startswith("I;16"):  # 0..65535; Pillow's convert clips everything above 255 to white
        img = Image.fromarray((np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8), "L")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if img.mode != mode:
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

    @classmethod
    def from_spec(cls, spec: LoaderSpec) -> ImageTransform:
        """The transform of a loader spec (``augment=True``: the default :class:`Augment`)."""
        augment = Augment() if spec.augment is True else (spec.augment or None)
        if augment is not None and not isinstance(augment, Augment):
            raise TypeError(f"augment must be True/False or an Augment for the torch loader, got {augment!r}")
        return cls(spec.img_h, spec.img_w, keep_ratio=spec.keep_ratio, rgb=spec.rgb, augment=augment,
                   interpolation=spec.interpolation, jpeg_draft=spec.jpeg_draft)

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


_MAX_AUTO_THREADS = 4

_POOLS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
# A forked loader worker inherits the executors but not their threads.
os.register_at_fork(after_in_child=_POOLS.clear)


def _pool(size: int) -> concurrent.futures.ThreadPoolExecutor:
    pool = _POOLS.get(size)
    if pool is None:
        pool = _POOLS[size] = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="cllstr-decode")
    return pool


def auto_decode_threads(workers: int) -> int:
    """Decode threads per loader process: the usable cores shared among the worker processes (at least 1, at most 4).

    Args:
        workers: DataLoader worker processes (0: loading happens in the main process).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(_MAX_AUTO_THREADS, cores // max(1, workers)))


def parallel_for(fn: Callable[[int], None], n: int, threads: int) -> None:
    """Call ``fn(k)`` for ``k in range(n)`` on ``threads`` threads (the calling thread is one of them).

    Items are handed out one at a time, so uneven image sizes balance. The first exception stops the hand-out and is
    re-raised once every thread has stopped.
    """
    threads = min(threads, n)
    if threads <= 1:
        for k in range(n):
            fn(k)
        return
    lock = threading.Lock()
    state = {"next": 0}

    def drain() -> None:
        while True:
            with lock:
                k = state["next"]
                state["next"] = k + 1
            if k >= n:
                return
            try:
                fn(k)
            except BaseException:
                with lock:
                    state["next"] = n
                raise

    futures = [_pool(threads - 1).submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        concurrent.futures.wait(futures)
    for f in futures:
        f.result()


def transform_batch(
    bufs: Sequence[bytes], transforms: Sequence[ImageTransform], threads: int = 1
) -> tuple[np.ndarray, list[Exception | None]]:
    """Decode, augment and resize a batch of encoded images into one array.

    Args:
        bufs: ``B`` encoded images.
        transforms: ``B`` transforms (usually the same object), all with the same output size and channels.
        threads: Threads to decode and resize on.

    Returns:
        ``images``: ``(B, H, W, C)`` ``uint8``, slot ``k`` equal to ``transforms[k](bufs[k])``; and per sample the
        :data:`~cllstr.data.store.format.DECODE_ERRORS` exception that made it unreadable (its slot is garbage), or
        None.

    Raises:
        ValueError: if the transforms disagree on the output shape.
    """
    n = len(bufs)
    shapes = {(t.img_h, t.img_w, t.channels) for t in transforms}
    if len(shapes) > 1:
        raise ValueError(f"transforms of one batch must share the output (H, W, C), got {sorted(shapes)}")
    h, w, c = shapes.pop() if shapes else (0, 0, 0)
    out = np.empty((n, h, w, c), dtype=np.uint8)
    errors: list[Exception | None] = [None] * n

    if all(t.augment is None for t in transforms):

        def whole(k: int) -> None:
            try:
                transforms[k].resize_into(transforms[k].decode(bufs[k]), out[k])
            except DECODE_ERRORS as e:
                errors[k] = e

        parallel_for(whole, n, threads)
        return out, errors

    images: list[Image.Image | None] = [None] * n

    def decode(k: int) -> None:
        try:
            images[k] = transforms[k].decode(bufs[k])
        except DECODE_ERRORS as e:
            errors[k] = e

    def resize(k: int) -> None:
        img = images[k]
        if img is not None:
            try:
                transforms[k].resize_into(img, out[k])
            except DECODE_ERRORS as e:
                errors[k] = e

    parallel_for(decode, n, threads)
    for k, img in enumerate(images):
        augment = transforms[k].augment
        if img is not None and augment is not None:
            try:
                images[k] = augment(img)
            except DECODE_ERRORS as e:
                errors[k], images[k] = e, None
    parallel_for(resize, n, threads)
    return out, errors
