"""Torch loader path: transforms vs the reference formula, corrupt skipping, caps, ratios, workers, determinism."""

from __future__ import annotations

import io
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from cllstr.data.loading.augment import Augment
from cllstr.data.loading.batch import Batch, Collate
from cllstr.data.loading.dataset import LmdbDataset
from cllstr.data.loading.decode import ImageTransform, decode_image, resize_keep_ratio, to_batch_tensor
from cllstr.data.loading.torch_backend import build_dataloader, build_dataset
from cllstr.data.store.writer import LmdbWriter
from cllstr.text.charset import Charset
from tests.common import spec


def encoded(seed: int, w: int = 60, h: int = 20, fmt: str = "PNG") -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    for name, n, label in [("KOR", 30, "한국"), ("LAT", 20, "word"), ("SynthMLT_KOR", 12, "합성")]:
        with LmdbWriter(r / "training" / name) as w:
            for i in range(n):
                w.add(b"not an image" if (name == "KOR" and i == 4) else encoded(i, 40 + i), f"{label}{i}")
    return r


def test_fixed_resize_matches_reference_formula():
    buf = encoded(1, 77, 23)
    out = to_batch_tensor([ImageTransform(32, 100, rgb=True)(buf)])
    img = Image.open(io.BytesIO(buf)).convert("RGB").resize((100, 32), Image.Resampling.BICUBIC)
    ref = torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
    assert out.shape == (1, 3, 32, 100)
    torch.testing.assert_close(out[0], ref, atol=1e-6, rtol=0)


def _reference_preprocess(buf: bytes, rgb: bool) -> torch.Tensor:
    """CLL-STR / deep-text-recognition-benchmark: PIL full decode, convert, bicubic resize to 100x32, [-1, 1]."""
    img = Image.open(io.BytesIO(buf)).convert("RGB" if rgb else "L").resize((100, 32), Image.Resampling.BICUBIC)
    arr = torch.from_numpy(np.array(img, dtype=np.uint8)).reshape(32, 100, -1)
    return arr.permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)


@pytest.mark.parametrize("rgb", [False, True])
def test_jpeg_crops_match_reference_preprocessing(tmp_path, rgb):
    """JPEG crops of every size (many >= 64 px tall, where draft decoding would kick in) load exactly as the
    reference preprocesses them; ``jpeg_draft=True`` is the opt-in that changes the large ones."""
    rng = np.random.default_rng(11)
    sizes = [(30, 12), (100, 32), (200, 64), (420, 130), (640, 200), (90, 70), (1000, 300), (256, 128)]
    bufs = []
    for w, h in sizes:
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        arr[:, w // 3 : w // 2] //= 4  # some structure, as ink on a background
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=int(rng.integers(60, 96)))
        bufs.append(buf.getvalue())
    with LmdbWriter(tmp_path / "jpeg.lmdb") as writer:
        for i, buf in enumerate(bufs):
            writer.add(buf, f"w{i}")
    want = torch.stack([_reference_preprocess(b, rgb) for b in bufs])
    kw = dict(batch_size=len(bufs), shuffle=False, rgb=rgb)
    got = next(iter(build_dataloader(tmp_path / "jpeg.lmdb", **kw))).images
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    draft = next(iter(build_dataloader(tmp_path / "jpeg.lmdb", jpeg_draft=True, **kw))).images
    differs = (draft - want).abs().amax(dim=(1, 2, 3)) > 1e-6
    # RGB: a 1/2 DCT scale still covering 100x32 changes the pixels; grey: draft also takes libjpeg's own luma
    # (the Y plane) instead of decoding to RGB and converting as Pillow does, so every colour JPEG changes.
    reducible = [w >= 200 and h >= 64 for w, h in sizes] if rgb else [True] * len(sizes)
    assert differs.tolist() == reducible


def test_keep_ratio_pads_with_last_column():
    img = Image.fromarray(np.tile(np.arange(20, dtype=np.uint8) * 10, (10, 1)))
    arr = resize_keep_ratio(img, 100, 32)
    new_w = math.ceil(32 * 20 / 10)
    assert arr.shape == (32, 100, 1)
    assert (arr[:, new_w:, 0] == arr[:, new_w - 1 : new_w, 0]).all()
    wide = resize_keep_ratio(Image.new("L", (500, 10)), 100, 32)
    assert wide.shape == (32, 100, 1)


def test_decode_jpeg_draft_and_alpha():
    big = encoded(2, 400, 100, "JPEG")
    assert decode_image(big, "L", (100, 32)).size == (400, 100)  # full scale unless asked
    assert decode_image(big, "L", (100, 32), draft=True).size[0] < 400  # decoded at a reduced DCT scale
    assert decode_image(big, "L", (100, 32), draft=True).size[1] >= 32
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    assert decode_image(buf.getvalue(), "L").getpixel((0, 0)) == 255  # transparent → white, not black
    with pytest.raises(OSError):
        decode_image(b"garbage")


def test_loader_batches_skip_corrupt_and_count(root):
    loader = build_dataloader(root, "lang_KL", batch_size=8, shuffle=False, rgb=True)
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches)
    assert batches[0].images.shape == (7, 3, 32, 100) and batches[0].num_skipped == 1
    assert -1.0 <= float(min(b.images.min() for b in batches)) and float(max(b.images.max() for b in batches)) <= 1.0
    labels = [lab for b in batches for lab in b.labels]
    assert len(labels) == 49 and "한국4" not in labels
    scripts = [s for b in batches for s in b.scripts]
    assert scripts.count("KOR") == 29 and scripts.count("LAT") == 20
    assert loader.dataset.num_corrupt == 1


def test_caps_first_n_like_reference_and_random(root):
    ds, _ = build_dataset(spec(root, "lang_KL-SynthMLT_K", caps="LAT=5,SynthMLT=3"))
    assert ds.source_sizes() == {"KOR": 30, "LAT": 5, "SynthMLT_KOR": 3}
    lat = [ds.datasets[ds._ds_id[i]].label(int(ds._local[i])) for i in range(len(ds)) if ds.source_ids[i] == 1]
    assert lat == [f"word{i}" for i in range(5)]
    ds2, _ = build_dataset(spec(root, "lang_L", caps={"LAT": 5}, cap_mode="random", seed=3))
    picked = [ds2.datasets[0].label(int(i)) for i in ds2._local]
    assert len(picked) == 5 and picked != lat
    ds3, _ = build_dataset(spec(root, "lang_KL", caps="total=10"))
    assert len(ds3) == 10


def test_ratio_mixture_batches(root):
    loader = build_dataloader(root, "lang_KL", batch_size=10, batch_ratio="0.8-0.2", num_batches=5, seed=1)
    for b in loader:
        assert b.scripts.count("LAT") == 2 and b.scripts.count("KOR") + b.num_skipped == 8


def test_same_seed_same_batches_and_workers_agree(root):
    def run(workers, seed):
        loader = build_dataloader(root, "lang_KL", batch_size=16, seed=seed, workers=workers)
        return [b.labels for b in loader], loader.dataset.num_corrupt

    a, corrupt0 = run(0, 5)
    assert run(0, 5)[0] == a and run(0, 6)[0] != a
    b, corrupt2 = run(2, 5)
    assert b == a
    assert corrupt0 == corrupt2 == 1  # counted across worker processes


def test_filters_count_instead_of_dropping_silently(root):
    charset = Charset(list("word0123456789"))
    ds = LmdbDataset(root / "training" / "LAT", charset=charset, spec=spec(None, max_label_length=5))
    assert len(ds) == 10 and ds.num_filtered["too_long"] == 10
    ds = LmdbDataset(root / "training" / "KOR", charset=charset, spec=spec(None, drop_unknown=True))
    assert len(ds) == 0 and ds.num_filtered["unknown_char"] == 30 and ds.unknown_chars["한"] == 30


def test_augment_is_deterministic_for_a_seed():
    buf = encoded(3, 80, 30)
    t = ImageTransform(32, 100, augment=Augment(p=1.0))
    random.seed(0)
    a = t(buf)
    random.seed(0)
    t2 = ImageTransform(32, 100, augment=Augment(p=1.0))
    assert np.array_equal(a, t2(buf)) and a.shape == (32, 100, 1)
    assert not np.array_equal(a, ImageTransform(32, 100)(buf))
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augment(ops=("warp",))


def test_collate_all_corrupt_gives_empty_batch():
    batch = Collate(1, 32, 100)([None, None])
    assert batch.images.shape == (0, 1, 32, 100) and batch.num_skipped == 2 and len(batch) == 0


def test_list_of_paths_and_mixture_file(root, tmp_path):
    ds, mix = build_dataset(spec([root / "training" / "LAT", root / "training" / "SynthMLT_KOR"]))
    assert ds.source_sizes() == {"LAT": 20, "SynthMLT_KOR": 12}
    path = tmp_path / "m.yaml"
    path.write_text(f"root: {root}\nselect_data: lang_K\ncaps: {{KOR: 7}}\n")
    ds, mix = build_dataset(spec(path))
    assert len(ds) == 7 and mix.sources[0].cap == 7


def _lengths_store(path):
    """12 records with labels of 1..6 characters (each length twice)."""
    with LmdbWriter(path) as w:
        for i in range(12):
            w.add(encoded(i, 30 + i), "abcdef"[: i % 6 + 1])
    return path


def test_min_label_length_filters_and_counts(tmp_path):
    from cllstr.train.config import DataConfig
    from cllstr.train.data import build_train_loader

    path = _lengths_store(tmp_path / "training" / "LAT")
    loader = build_dataloader([path], batch_size=64, shuffle=False, min_label_length=3)
    labels = [lab for b in loader for lab in b.labels]
    assert sorted(map(len, labels)) == [3, 3, 4, 4, 5, 5, 6, 6]
    assert loader.dataset.datasets[0].num_filtered["too_short"] == 4
    # a training config's field of the same name reaches the loader, with the other filters
    cfg = DataConfig(root=str(tmp_path), select_data="lang_L", min_label_length=2, max_label_length=4)
    train = build_train_loader(cfg, Charset(list("abcdef")), batch_size=64, seed=0, shuffle=False)
    assert sorted(len(lab) for b in train for lab in b.labels) == [2, 2, 3, 3, 4, 4]
    with pytest.raises(ValueError, match="min_label_length"):
        build_dataloader([path], batch_size=4, min_label_length=0)
    with pytest.raises(ValueError, match="below min_label_length"):
        build_dataloader([path], batch_size=4, min_label_length=5, max_label_length=4)


def test_jpeg_draft_is_a_training_option_and_off_by_default(tmp_path):
    from cllstr.data.loading.spec import LoaderSpec
    from cllstr.train.config import DataConfig, TrainConfig, apply_overrides

    assert LoaderSpec.from_config(DataConfig()).jpeg_draft is False
    cfg = apply_overrides(TrainConfig(), ["data.jpeg_draft=true"])
    assert LoaderSpec.from_config(cfg.data).jpeg_draft is True
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 800, 3), dtype=np.uint8)).save(big, "JPEG")
    with LmdbWriter(tmp_path / "big") as w:
        w.add(big.getvalue(), "x")
    full = next(iter(build_dataloader([tmp_path / "big"], batch_size=1))).images
    draft = next(iter(build_dataloader([tmp_path / "big"], batch_size=1, jpeg_draft=True))).images
    assert full.shape == draft.shape and not torch.equal(full, draft)  # a reduced-scale decode: other pixels
