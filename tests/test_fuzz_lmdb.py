"""Property-based fuzzing of LMDB records read through the loaders. Stores are written with py-lmdb directly (not
with cllstr's writer), so a record can hold anything: damaged, empty, huge-claiming or non-image bytes, a missing
image or label key, labels with control characters, invalid UTF-8 or 10k characters. The loader must yield exactly
the readable records, skip every other one and count it, and never crash or hang."""

from __future__ import annotations

import io
import itertools
import shutil
import tempfile
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cllstr.data.loading.dataset import LmdbDataset
from cllstr.data.loading.decode import DECODE_ERRORS, ImageTransform, normalize_images
from cllstr.data.loading.torch_backend import build_dataloader
from cllstr.data.store.reader import release_env
from cllstr.text.normalize import from_reference_label
from tests.common import fuzz_settings
from tests.test_fuzz_images import damaged_images

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")

MISSING = object()
_counter = itertools.count()


def _png(w: int = 30, h: int = 12) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 90)).save(buf, "PNG")
    return buf.getvalue()


images = st.one_of(
    damaged_images(),
    st.just(b""),
    st.just(MISSING),
    st.text(max_size=30).map(lambda t: t.encode("utf-8")),  # a label stored where the image belongs
    st.just(_png()),
)
labels = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(lambda t: t.encode("utf-8")),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10).map(lambda t: t.encode("utf-8")),  # controls
    st.binary(max_size=20),  # mostly invalid UTF-8
    st.just(b"w" * 10_000),
    st.just(MISSING),
)


def _write_raw(path: Path, records: list[tuple[object, object]], num_samples: int) -> None:
    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for i, (image, label) in enumerate(records, start=1):
            if image is not MISSING:
                txn.put(b"image-%09d" % i, image)
            if label is not MISSING:
                txn.put(b"label-%09d" % i, label)
        txn.put(b"num-samples", str(num_samples).encode())
    env.close()


def _expected(records: list[tuple[object, object]], transform: ImageTransform, drop_empty: bool):
    """Labels the loader must yield, records filtered for their label, and records skipped as corrupt."""
    want, unreadable, corrupt = [], 0, 0
    for image, label in records:
        try:
            text = from_reference_label(label.decode("utf-8"), unshape=False)  # the default "join" reader
        except (AttributeError, UnicodeDecodeError):  # missing key, not UTF-8
            unreadable += 1
            continue
        if drop_empty and not text:
            continue
        try:
            transform(image if image is not MISSING else b"")
        except DECODE_ERRORS:
            corrupt += 1
            continue
        want.append(text)
    return want, unreadable, corrupt


@fuzz_settings(60)
@given(st.lists(st.tuples(images, labels), min_size=1, max_size=10), st.integers(1, 4), st.integers(0, 3),
       st.booleans())
def test_loader_yields_the_readable_records_and_counts_the_rest(records, batch_size, extra, rgb) -> None:
    """``num-samples`` may also claim up to 3 records that were never written (their keys are missing)."""
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-lmdb-"))
    path = tmp / f"s{next(_counter)}.lmdb"
    try:
        _write_raw(path, records, len(records) + extra)
        loader = build_dataloader(path, batch_size=batch_size, shuffle=False, rgb=rgb, decode_threads=2)
        got = [label for batch in loader for label in batch.labels]
        records = records + [(MISSING, MISSING)] * extra
        want, unreadable, corrupt = _expected(records, ImageTransform(rgb=rgb), drop_empty=True)
        assert got == want
        dataset = loader.dataset.datasets[0]
        assert dataset.num_filtered["unreadable"] == unreadable
        assert loader.dataset.num_corrupt == corrupt
    finally:
        release_env(path)
        shutil.rmtree(tmp, ignore_errors=True)


@fuzz_settings(40)
@given(st.lists(st.tuples(images, labels), min_size=1, max_size=8))
def test_unfiltered_dataset_skips_unreadable_records_per_item(records) -> None:
    """Without label filters records are read lazily: a bad label or a missing key is a counted skip there too."""
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-lmdb-"))
    path = tmp / f"u{next(_counter)}.lmdb"
    try:
        _write_raw(path, records, len(records))
        ds = LmdbDataset(path, drop_empty=False)
        samples = [ds[i] for i in range(len(ds))]
        batch = ds.__getitems__(list(range(len(ds))))
        want, unreadable, corrupt = _expected(records, ds.transform, drop_empty=False)
        good = [s for s in samples if s is not None]
        assert [s[1] for s in good] == want
        assert batch.labels == want and batch.num_skipped == len(samples) - len(good)
        assert ds.num_corrupt == 2 * (unreadable + corrupt)
        if good:
            assert torch.equal(batch.images, normalize_images(np.stack([s[0] for s in good])))
    finally:
        release_env(path)
        shutil.rmtree(tmp, ignore_errors=True)
