"""Batched decoding: a batch of encoded images → one ``uint8`` array, on a small per-process thread pool.

Pillow releases the GIL while it decodes and resizes, so a few threads decode one batch in parallel: with 0 loader
workers this uses the spare cores, with N workers one thread per worker (the default) avoids oversubscribing them.
The result does not depend on the number of threads: every image lands in its own slot, and augmentation, whose RNG
is consumed in sample order, runs sequentially between a parallel decode and a parallel resize.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from cllstr.data.transforms import DECODE_ERRORS, ImageTransform

__all__ = ["SampleBatch", "auto_decode_threads", "parallel_for", "transform_batch"]

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
        :data:`~cllstr.data.transforms.DECODE_ERRORS` exception that made it unreadable (its slot is garbage), or None.

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


class SampleBatch(list):
    """The ``list[Sample | None]`` a dataset's ``__getitems__`` returns, plus all its images as one array.

    Each sample's image is the view ``images[k]``; the collate function converts ``images`` in one go instead of
    stacking per-sample arrays.

    Args:
        samples: ``B`` samples (None for unreadable records).
        images: ``(B, H, W, C)`` ``uint8``; rows of None samples are garbage.
    """

    def __init__(self, samples: Iterable[tuple[np.ndarray, str, str] | None], images: np.ndarray) -> None:
        super().__init__(samples)
        self.images = images
