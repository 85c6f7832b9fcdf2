"""Training augmentation of the torch loader: a registry of Pillow ops and :class:`Augment`, which applies each with a
probability (the DALI backend has the same op names, :class:`~cllstr.data.loading.dali.ops.AugmentConfig`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

__all__ = ["AUGMENTATIONS", "Augment", "register_augmentation"]


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
