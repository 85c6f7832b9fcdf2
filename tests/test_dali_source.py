"""The DALI loader's LMDB source: image screening, epoch plans and rank sharding (no DALI needed)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from cllstr.data.loading.dali.source import PLACEHOLDER, EpochPlan, LmdbBatchSource, RecordTable, screen_image, to_pnm
from cllstr.data.loading.decode import decode_image
from cllstr.data.loading.torch_backend import build_dataset
from cllstr.data.store.writer import LmdbWriter
from tests.common import spec


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _image(mode: str = "RGB", size: tuple[int, int] = (40, 16)) -> Image.Image:
    img = Image.new(mode, size, "white" if mode != "RGBA" else (255, 255, 255, 0))
    img.paste((0, 0, 0) if mode == "RGB" else (0, 0, 0, 255), (5, 4, 20, 12))
    return img


def test_screen_passes_good_jpeg_and_png_untouched():
    jpg, png = _encode(_image(), "JPEG"), _encode(_image(), "PNG")
    assert screen_image(jpg) is jpg
    assert screen_image(png) is png


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"not an image at all",
        b"\xff\xd8\xff\xe0" + bytes(300),
        _encode(_image(), "JPEG")[:200],
        _encode(_image(), "PNG")[:60],
    ],
    ids=["empty", "garbage", "jpeg-header-only", "truncated-jpeg", "truncated-png"],
)
def test_screen_rejects_corrupt(bad):
    assert screen_image(bad) is None
    assert screen_image(bad, validation="full") is None


def test_screen_reencodes_alpha_and_other_formats_like_pillow():
    rgba = _encode(_image("RGBA"), "PNG")
    gif = _encode(_image(), "GIF")
    for buf in (rgba, gif):
        out = screen_image(buf, "L")
        assert out is not None and out.startswith(b"P5")
        expected = np.asarray(decode_image(buf, "L"))
        got = np.frombuffer(out, dtype=np.uint8)[-expected.size :].reshape(expected.shape)
        np.testing.assert_array_equal(got, expected)
    assert screen_image(gif, "RGB").startswith(b"P6")


def test_screen_rejects_unknown_mode():
    with pytest.raises(ValueError, match="validation mode"):
        screen_image(b"x", validation="quick")


def test_placeholder_is_a_small_valid_image():
    img = Image.open(io.BytesIO(PLACEHOLDER.tobytes()))
    assert img.size == (8, 8) and img.mode == "L"
    assert to_pnm(Image.new("RGB", (2, 3))).startswith(b"P6\n2 3\n255\n")


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shards_cover_each_sample_once_per_epoch(world_size, drop_last):
    n, bs = 53, 4
    sources = np.zeros(n, dtype=np.int64)
    for epoch in range(2):
        seen = []
        for rank in range(world_size):
            plan = EpochPlan(sources, bs, seed=7, rank=rank, world_size=world_size, drop_last=drop_last)
            batches = plan.batches(epoch)
            assert len(batches) == len(plan)
            assert all(len(b) <= bs for b in batches)
            seen.extend(np.concatenate(batches).tolist())
        if drop_last:
            assert len(set(seen)) == len(seen) and len(seen) > n - world_size * bs
        else:
            assert sorted(seen) == list(range(n))
    first = np.concatenate(EpochPlan(sources, bs, seed=7).batches(0))
    second = np.concatenate(EpochPlan(sources, bs, seed=7).batches(1))
    assert not np.array_equal(first, second)
    assert np.array_equal(np.concatenate(EpochPlan(sources, bs, shuffle=False).batches(3)), np.arange(n))


def test_ratio_plan_keeps_shares():
    sources = np.array([0] * 30 + [1] * 5)
    plan = EpochPlan(sources, 8, ratios=[0.5, 0.5], num_batches=6, rank=1, world_size=2)
    batches = plan.batches(0)
    assert len(batches) == 3
    for b in batches:
        assert (sources[b] == 1).sum() == 4


def test_plan_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        EpochPlan(np.zeros(4), 2, rank=2, world_size=2)


def test_batch_source_flags_corrupt_and_stops(tmp_path):
    path = tmp_path / "src.lmdb"
    good = _encode(_image(), "JPEG")
    with LmdbWriter(path) as w:
        for i in range(5):
            w.add(good if i != 2 else b"garbage", f"w{i}")
    dataset, _ = build_dataset(spec(path))
    table = RecordTable.from_mixture(dataset)
    source = LmdbBatchSource(table, EpochPlan(dataset.source_ids, 4, shuffle=False))
    encoded, index, valid = source(SimpleNamespace(iteration=0, epoch_idx=0))
    assert index.tolist() == [0, 1, 2, 3]
    assert valid.tolist() == [1, 1, 0, 1]
    assert np.array_equal(encoded[2], PLACEHOLDER)
    assert encoded[0].tobytes() == good
    _, index, valid = source(SimpleNamespace(iteration=1, epoch_idx=0))
    assert index.tolist() == [4] and valid.tolist() == [1]
    with pytest.raises(StopIteration):
        source(SimpleNamespace(iteration=2, epoch_idx=0))
    resumed = LmdbBatchSource(table, source.plan, skip_batches=1, known_bad=frozenset({4}))
    _, index, valid = resumed(SimpleNamespace(iteration=0, epoch_idx=0))
    assert index.tolist() == [4] and valid.tolist() == [0]
