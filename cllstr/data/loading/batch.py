"""The loaders' one batch type, :class:`Batch`, and :class:`Collate`, which makes it.

A dataset's ``__getitems__`` decodes a whole batch into one ``uint8`` array and returns it as a :class:`Batch`
already (its float images made once, in shared memory when a loader worker makes it); :class:`Collate` passes such a
batch through and stacks any other list of samples (``(uint8 (H, W, C), label, script)`` tuples, None for a corrupt
record) into the same :class:`Batch`. The DALI backend yields the same type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import get_worker_info

from cllstr.data.loading.decode import normalize_images

__all__ = ["Batch", "Collate", "Sample", "make_batch"]

#: One decoded sample: ``(uint8 image (H, W, C), label, script)``.
Sample = tuple[np.ndarray, str, str]


@dataclass
class Batch:
    """One batch of images and labels.

    Attributes:
        images: ``(B, C, H, W)`` float32 in ``[-1, 1]``.
        labels: ``B`` NFC labels.
        scripts: ``B`` script names (``""`` when unknown).
        num_skipped: Corrupt records dropped from this batch.
    """

    images: torch.Tensor
    labels: list[str]
    scripts: list[str] = field(default_factory=list)
    num_skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def pin_memory(self) -> Batch:
        """Pinned copy of the images (used by ``DataLoader(pin_memory=True)``)."""
        return Batch(self.images.pin_memory(), self.labels, self.scripts, self.num_skipped)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with images on ``device``."""
        return Batch(self.images.to(device, non_blocking=non_blocking), self.labels, self.scripts, self.num_skipped)


def _batch_tensor(shape: tuple[int, int, int, int]) -> torch.Tensor:
    """An empty float32 tensor; in a loader worker it is allocated in shared memory, as ``default_collate`` does, so
    sending it to the main process needs no copy."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * 4)
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, shape)


def make_batch(images: np.ndarray, samples: Sequence[Sample | None], shape: tuple[int, int, int]) -> Batch:
    """The :class:`Batch` of ``samples`` whose images are the rows of ``images``.

    Args:
        images: ``(B, H, W, C)`` ``uint8``, row ``k`` the image of ``samples[k]`` (garbage where it is None).
        samples: ``B`` samples, None for corrupt records (dropped and counted in ``num_skipped``).
        shape: ``(C, H, W)`` of an empty batch.
    """
    keep = [s is not None for s in samples]
    good = [s for s in samples if s is not None]
    skipped = len(samples) - len(good)
    if not good:
        return Batch(torch.empty((0, *shape)), [], [], skipped)
    if skipped:
        images = images[keep]
    b, h, w, c = images.shape
    labels = [s[1] for s in good]
    scripts = [s[2] for s in good]
    return Batch(normalize_images(images, _batch_tensor((b, c, h, w))), labels, scripts, skipped)


class Collate:
    """``collate_fn`` of the torch loader: a :class:`Batch` passes through; a list of samples is stacked into one.

    Args:
        channels: Image channels (for the shape of an all-corrupt, empty batch).
        img_h: Image height.
        img_w: Image width.
    """

    def __init__(self, channels: int, img_h: int, img_w: int) -> None:
        self.shape = (channels, img_h, img_w)

    def __call__(self, samples: Batch | Sequence[Sample | None]) -> Batch:
        if isinstance(samples, Batch):
            return samples
        good = [s for s in samples if s is not None]
        if not good:
            return Batch(torch.empty((0, *self.shape)), [], [], len(samples))
        batch = make_batch(np.stack([s[0] for s in good]), good, self.shape)
        batch.num_skipped = len(samples) - len(good)
        return batch
