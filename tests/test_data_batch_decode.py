"""Batched, threaded decoding: the same batches for any number of threads, and the same as per-sample decoding."""

from __future__ import annotations

import io
import random
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from cllstr.data.loading.augment import Augment
from cllstr.data.loading.batch import Batch, Collate
from cllstr.data.loading.dataset import LmdbDataset
from cllstr.data.loading.decode import (
    ImageTransform,
    auto_decode_threads,
    normalize_images,
    parallel_for,
    to_batch_tensor,
    transform_batch,
)
from cllstr.data.loading.torch_backend import build_dataloader
from cllstr.data.store.writer import LmdbWriter


def encoded(rng: np.random.Generator, fmt: str, mode: str) -> bytes:
    h = int(rng.integers(6, 120))
    w = int(h * rng.uniform(0.3, 6.0)) + 1
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """JPEGs big enough for a reduced DCT scale and small ones, PNG with alpha, grey WebP, and corrupt records."""
    path = tmp_path_factory.mktemp("bd") / "LAT"
    rng = np.random.default_rng(7)
    kinds = [("JPEG", "RGB"), ("PNG", "RGBA"), ("JPEG", "L"), ("WEBP", "RGB"), ("PNG", "P")]
    with LmdbWriter(path) as w:
        for i in range(45):
            fmt, mode = kinds[i % len(kinds)]
            w.add(b"\x89PNG broken" if i % 13 == 6 else encoded(rng, fmt, mode), f"w{i}")
    return path


def batches(loader) -> list[tuple[torch.Tensor, list[str], list[str], int]]:
    return [(b.images, b.labels, b.scripts, b.num_skipped) for b in loader]


def assert_same(a, b) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x[0], y[0]) and x[1:] == y[1:]


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("keep_ratio", [False, True])
@pytest.mark.parametrize("augment", [False, True])
def test_threaded_batches_equal_unthreaded(store, rgb, keep_ratio, augment):
    def run(threads):
        random.seed(3)  # augmentation draws from the process's global random generator
        loader = build_dataloader(
            [store], batch_size=16, rgb=rgb, keep_ratio=keep_ratio, augment=augment, seed=1, decode_threads=threads
        )
        return batches(loader), loader.dataset.num_corrupt

    one, corrupt1 = run(1)
    three, corrupt3 = run(3)
    assert_same(one, three)
    assert corrupt1 == corrupt3 == 3
    assert sum(n for *_, n in one) == 3 and one[0][0].shape[1:] == (3 if rgb else 1, 32, 100)


def test_batch_path_equals_per_sample_path(store):
    ds = LmdbDataset(store, ImageTransform(32, 100, keep_ratio=True, rgb=True), decode_threads=2)
    idx = [3, 0, 6, 44, 19, 6]
    batch = ds.__getitems__(idx)
    single = [ds[i] for i in idx]
    assert isinstance(batch, Batch) and batch.images.shape == (3, 3, 32, 100) and batch.num_skipped == 3
    assert [s is None for s in single] == [False, False, True, False, True, True]
    good = [s for s in single if s is not None]
    assert batch.labels == [s[1] for s in good] and batch.scripts == [s[2] for s in good]
    # the per-sample oracle: the transform applied to the record's bytes on its own
    for s, i in zip(good, [3, 0, 44], strict=True):
        assert np.array_equal(s[0], ds.transform(ds.reader[int(ds.indices[i])].image))
    collate = Collate(3, 32, 100)
    assert collate(batch) is batch
    slow = collate(list(single))
    assert torch.equal(batch.images, slow.images) and batch.labels == slow.labels and slow.num_skipped == 3


def test_workers_give_the_same_images(store):
    base = batches(build_dataloader([store], batch_size=8, seed=2, workers=0, decode_threads=1))
    assert_same(base, batches(build_dataloader([store], batch_size=8, seed=2, workers=2)))


def test_normalize_matches_formula_for_every_value():
    values = np.arange(256, dtype=np.uint8).reshape(1, 4, 64, 1).repeat(3, axis=3)
    out = normalize_images(values)
    expected = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    assert out.shape == (1, 3, 4, 64) and out.dtype == torch.float32
    assert np.array_equal(out[0, 1].numpy().ravel(), expected)
    assert out.min() == -1.0 and out.max() == 1.0
    arrays = [values[0], 255 - values[0]]
    assert torch.equal(to_batch_tensor(arrays)[1], normalize_images(np.stack(arrays))[1])
    with pytest.raises(ValueError, match="zero images"):
        to_batch_tensor([])


def test_parallel_for_covers_every_index_and_reraises():
    seen = np.zeros(50, dtype=np.int64)
    names = set()
    together = threading.Barrier(3, timeout=10)

    def mark(k):
        if k < 3:
            together.wait()  # passes only when three calls run at the same time, i.e. on three threads
        seen[k] += 1
        names.add(threading.current_thread().name)

    parallel_for(mark, 50, 3)
    assert (seen == 1).all() and len(names) == 3
    assert threading.current_thread().name in names  # the calling thread is one of the three

    def boom(k):
        if k == 7:
            raise RuntimeError("record 7 is bad")

    with pytest.raises(RuntimeError, match="record 7"):
        parallel_for(boom, 30, 2)
    parallel_for(mark, 0, 4)
    assert (seen == 1).all()


def test_transform_batch_errors(store):
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 12), (10, 200, 30)).save(jpeg, "JPEG")
    images, errors = transform_batch([jpeg.getvalue(), b"junk"], [ImageTransform(32, 100)] * 2, threads=2)
    assert images.shape == (2, 32, 100, 1) and errors[0] is None and isinstance(errors[1], OSError)
    with pytest.raises(ValueError, match="output"):
        transform_batch([b"", b""], [ImageTransform(32, 100), ImageTransform(32, 128)])
    with pytest.raises(ValueError, match="decode_threads"):
        LmdbDataset(store, decode_threads=0)


def test_auto_threads_share_the_cores():
    assert 1 <= auto_decode_threads(0) <= 4
    assert auto_decode_threads(10_000) == 1
    assert auto_decode_threads(2) <= auto_decode_threads(0)


def test_augment_order_is_kept_across_threads():
    rng = np.random.default_rng(0)
    bufs = [encoded(rng, "PNG", "RGB") for _ in range(12)]
    t = ImageTransform(32, 100, augment=Augment(p=0.7))
    random.seed(5)
    expected = np.stack([t(b) for b in bufs])
    t2 = ImageTransform(32, 100, augment=Augment(p=0.7))
    random.seed(5)
    images, errors = transform_batch(bufs, [t2] * len(bufs), threads=4)
    assert errors == [None] * 12 and np.array_equal(images, expected)
