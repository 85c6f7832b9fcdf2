"""The DALI loader against the torch loader: parity, epochs, corrupt records, sharding, augmentation, GPU."""

from __future__ import annotations

import collections
import io
import random

import pytest
import torch
from PIL import Image, ImageDraw

from tests.common import require_dali_plugin, require_module, spec

require_module("nvidia.dali")

from cllstr.data.loading import loader as loaders  # noqa: E402
from cllstr.data.loading.dali import AugmentConfig, DaliLoader, build_dali_loader, plugin  # noqa: E402
from cllstr.data.loading.torch_backend import build_dataloader  # noqa: E402
from cllstr.data.store.writer import LmdbWriter  # noqa: E402

TOGGLES = ("crop", "rotate", "warp", "color", "blur", "noise", "jpeg", "invert")


def _crop(rng: random.Random, w: int, h: int, mode: str = "RGB") -> Image.Image:
    img = Image.new("RGB", (w, h), tuple(rng.randint(150, 255) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x = rng.randint(0, w - 8)
        ink = tuple(rng.randint(0, 90) for _ in "rgb")
        draw.rectangle([x, h // 4, x + rng.randint(2, w // 4), 3 * h // 4], fill=ink)
    return img.convert(mode) if mode != "RGB" else img


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _write(path, items):
    with LmdbWriter(path) as w:
        for buf, label in items:
            w.add(buf, label)
    return path


@pytest.fixture(scope="module")
def lmdb_path(tmp_path_factory):
    """40 crops: JPEG and PNG of many sizes (one large enough for a reduced JPEG decode), grey, RGBA and GIF."""
    rng = random.Random(0)
    items = []
    for i in range(40):
        w, h = rng.randint(30, 260), rng.randint(16, 60)
        if i == 0:
            w, h = 420, 130
        fmt = "PNG" if i % 4 == 1 else "JPEG"
        mode = "L" if i % 7 == 3 else ("RGBA" if i == 5 else "RGB")
        fmt = "GIF" if i == 9 else ("PNG" if mode == "RGBA" else fmt)
        items.append((_encode(_crop(rng, w, h, mode), fmt), f"w{i:02d}"))
    return _write(tmp_path_factory.mktemp("dali") / "mixed.lmdb", items)


@pytest.fixture(scope="module")
def corrupt_path(tmp_path_factory):
    """12 good crops and 4 bad ones: garbage, a cut JPEG, a cut PNG, and a PNG whose compressed data is damaged
    (it passes the cheap checks, so DALI's decoder fails on it and the loader must recover)."""
    rng = random.Random(1)
    good = [_encode(_crop(rng, rng.randint(40, 120), 32), "JPEG") for _ in range(12)]
    png = _encode(_crop(rng, 120, 40), "PNG")
    idat = png.find(b"IDAT")
    damaged = png[: idat + 30] + bytes(40) + png[idat + 70 :]
    bad = [b"\x00garbage", good[0][: len(good[0]) // 2], png[:70], damaged]
    items = [(b, f"good{i}") for i, b in enumerate(good)]
    for k, b in enumerate(bad):
        items.insert(3 * k + 2, (b, f"bad{k}"))
    return _write(tmp_path_factory.mktemp("dali") / "corrupt.lmdb", items)


def _epoch(loader):
    batches = list(loader)
    labels = [lab for b in batches for lab in b.labels]
    return batches, labels


def _all_images(loader) -> torch.Tensor:
    return torch.cat([b.images.cpu() for b in loader])


@pytest.mark.parametrize("use_plugin", [True, False])
def test_cpu_loader_runs_the_plugin_operator(lmdb_path, monkeypatch, use_plugin):
    """The CPU pipeline that ran holds ``fn.cllstr.text_resize`` exactly when the plugin is loaded."""
    require_dali_plugin()
    if not use_plugin:
        monkeypatch.setattr(plugin, "HAS_PLUGIN", False)
    loader = build_dali_loader(spec(lmdb_path, batch_size=16, device="cpu", shuffle=False))
    assert len(next(iter(loader))) == 16
    graph = loader._iterator._pipes[0].serialize()
    assert (b"cllstr__TextResize" in graph) is use_plugin
    assert (b"__Resize_" in graph) is not use_plugin  # DALI's own fn.resize only without the plugin
    loader.close()


@pytest.mark.parametrize("keep_ratio", [False, True])
@pytest.mark.parametrize("rgb", [False, True])
def test_cpu_output_matches_torch_loader(lmdb_path, rgb, keep_ratio):
    kw = dict(batch_size=16, shuffle=False, rgb=rgb, keep_ratio=keep_ratio)
    ref_batches, ref_labels = _epoch(build_dataloader(lmdb_path, **kw))
    loader = build_dali_loader(spec(lmdb_path, device="cpu", **kw))
    batches, labels = _epoch(loader)
    assert labels == ref_labels
    assert [b.scripts for b in batches] == [b.scripts for b in ref_batches]
    ref = torch.cat([b.images for b in ref_batches])
    got = torch.cat([b.images for b in batches])
    assert got.shape == ref.shape == (40, 3 if rgb else 1, 32, 100)
    assert got.dtype == torch.float32 and got.min() >= -1.0 and got.max() <= 1.0
    mad = (got - ref).abs().mean().item()
    assert mad <= 2 / 255, f"mean absolute difference {mad * 255:.2f}/255"
    per_image = (got - ref).abs().mean(dim=(1, 2, 3))
    assert per_image.max().item() <= 8 / 255
    loader.close()


def test_epochs_cover_every_sample_and_reshuffle(lmdb_path):
    loader = build_dali_loader(spec(lmdb_path, batch_size=16, device="cpu", seed=3))
    assert len(loader) == 3
    orders = []
    for _ in range(3):
        batches, labels = _epoch(loader)
        assert len(batches) == len(loader)
        assert sorted(labels) == [f"w{i:02d}" for i in range(40)]
        orders.append(labels)
    assert loader.epoch == 3
    assert orders[0] != orders[1] != orders[2]
    again = build_dali_loader(spec(lmdb_path, batch_size=16, device="cpu", seed=3))
    assert _epoch(again)[1] == orders[0]
    loader.close()
    again.close()


def test_drop_last_and_abandoned_epoch(lmdb_path):
    loader = build_dali_loader(spec(lmdb_path, batch_size=16, device="cpu", drop_last=True))
    assert len(loader) == 2
    first = next(iter(loader))
    assert len(first) == 16
    batches, labels = _epoch(loader)  # the abandoned epoch is counted; this one is whole
    assert loader.epoch == 2 and len(batches) == 2 and len(set(labels)) == 32
    loader.close()


def test_resume_skips_batches(lmdb_path):
    loader = build_dali_loader(spec(lmdb_path, batch_size=8, device="cpu", seed=5))
    _, full = _epoch(loader)
    loader.set_epoch(0, skip_batches=2)
    batches, tail = _epoch(loader)
    assert len(batches) == 3 and tail == full[16:]
    loader.close()


def test_shards_cover_each_record_once(lmdb_path):
    seen = []
    for rank in range(3):
        loader = build_dali_loader(spec(lmdb_path, batch_size=24, device="cpu", rank=rank, world_size=3, seed=1))
        _, labels = _epoch(loader)
        assert len(labels) in (13, 14)
        seen.extend(labels)
        loader.close()
    assert sorted(seen) == [f"w{i:02d}" for i in range(40)]


def test_corrupt_records_are_skipped_and_counted(corrupt_path):
    loader = build_dali_loader(spec(corrupt_path, batch_size=5, device="cpu", shuffle=False, workers=2))
    for epoch in range(2):
        batches, labels = _epoch(loader)
        assert sorted(labels) == sorted(f"good{i}" for i in range(12))
        assert sum(b.num_skipped for b in batches) == 4
        assert all(b.images.shape[0] == len(b) for b in batches)
        assert loader.num_corrupt == 4 * (epoch + 1)
    assert loader.dataset.num_corrupt == 8
    assert len(loader.bad_indices) == 4
    loader.close()


def test_corrupt_parity_with_torch_loader(corrupt_path):
    ref_batches, ref_labels = _epoch(build_dataloader(corrupt_path, batch_size=16, shuffle=False))
    batches, labels = _epoch(build_dali_loader(spec(corrupt_path, batch_size=16, device="cpu", shuffle=False)))
    assert labels == ref_labels
    ref, got = torch.cat([b.images for b in ref_batches]), torch.cat([b.images for b in batches])
    assert (got - ref).abs().mean().item() <= 2 / 255


def test_augmentation_is_seeded_and_off_means_off(lmdb_path):
    plain = [_all_images(build_dali_loader(spec(lmdb_path, batch_size=20, device="cpu", shuffle=False)))
             for _ in range(2)]
    assert torch.equal(plain[0], plain[1])
    cfg = AugmentConfig(p=0.5)
    runs = [
        _all_images(build_dali_loader(spec(lmdb_path, batch_size=20, device="cpu", shuffle=False, augment=cfg, seed=4)))
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], plain[0])


@pytest.mark.parametrize("toggle", TOGGLES)
def test_each_augmentation_changes_the_output(lmdb_path, toggle):
    plain = _all_images(build_dali_loader(spec(lmdb_path, batch_size=20, device="cpu", shuffle=False, rgb=True)))
    cfg = AugmentConfig(p=1.0, blur_sigma=(1.0, 1.5), **{t: t == toggle for t in TOGGLES})
    assert cfg.enabled == [toggle]
    loader = build_dali_loader(spec(lmdb_path, batch_size=20, device="cpu", shuffle=False, rgb=True, augment=cfg))
    augmented = _all_images(loader)
    assert augmented.shape == plain.shape
    assert augmented.min() >= -1.0 and augmented.max() <= 1.0
    changed = (augmented - plain).abs().mean(dim=(1, 2, 3)) > 1 / 255
    assert changed.float().mean().item() >= 0.9, f"{toggle} left most images unchanged"


def test_augment_grey_keep_ratio_all_ops(lmdb_path):
    loader = build_dali_loader(spec(lmdb_path, batch_size=20, device="cpu", keep_ratio=True, augment=True, workers=1))
    batches, labels = _epoch(loader)
    assert len(labels) == 40 and batches[0].images.shape[1:] == (1, 32, 100)
    loader.close()


def test_augment_config_validation():
    with pytest.raises(ValueError, match="unknown DALI augmentation"):
        AugmentConfig.from_dict({"rotat": True})
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(p=1.5)
    assert AugmentConfig.from_dict({"blur_sigma": [0.5, 1.0]}).blur_sigma == (0.5, 1.0)


def test_bad_arguments_name_themselves(lmdb_path):
    with pytest.raises(ValueError, match="interpolation 'box'"):
        build_dali_loader(spec(lmdb_path, batch_size=4, device="cpu", interpolation="box"))
    with pytest.raises(ValueError, match="device"):
        build_dali_loader(spec(lmdb_path, batch_size=4, device="tpu"))
    with pytest.raises(ValueError, match="validation"):
        build_dali_loader(spec(lmdb_path, batch_size=4, device="cpu", validation="none"))


def test_make_loader_kinds(lmdb_path, monkeypatch):
    assert loaders.resolve_loader_kind("auto") == "dali"
    dali = loaders.make_loader(spec(lmdb_path, loader="auto", batch_size=8, device="cpu", shuffle=False))
    torch_loader = loaders.make_loader(spec(lmdb_path, loader="torch", batch_size=8, device="cpu", shuffle=False))
    assert isinstance(dali, DaliLoader)
    assert isinstance(torch_loader, torch.utils.data.DataLoader)
    assert next(iter(dali)).labels == next(iter(torch_loader)).labels
    dali.close()
    with pytest.raises(ValueError, match="loader must be one of"):
        loaders.make_loader(spec(lmdb_path, loader="fast", batch_size=8))
    shares = [loaders.make_loader(spec(lmdb_path, loader="torch", batch_size=8, world_size=2, rank=r, shuffle=False))
              for r in (0, 1)]
    first = [next(iter(s)).labels for s in shares]
    assert first == [[f"w{i:02d}" for i in range(r, 8, 2)] for r in (0, 1)]  # strided shares of the global batch
    monkeypatch.setattr(loaders, "HAS_DALI", False)
    assert loaders.resolve_loader_kind("auto") == "torch"
    with pytest.raises(ImportError, match="nvidia-dali-cuda130"):
        loaders.make_loader(spec(lmdb_path, loader="dali", batch_size=8))


@pytest.mark.cuda
@pytest.mark.parametrize("keep_ratio", [False, True])
def test_gpu_matches_cpu(lmdb_path, keep_ratio):
    kw = dict(batch_size=16, shuffle=False, keep_ratio=keep_ratio, rgb=True)
    gpu_loader = build_dali_loader(spec(lmdb_path, device="gpu", **kw))
    gpu_batches, gpu_labels = _epoch(gpu_loader)
    assert all(b.images.is_cuda for b in gpu_batches)
    cpu_batches, cpu_labels = _epoch(build_dali_loader(spec(lmdb_path, device="cpu", **kw)))
    assert gpu_labels == cpu_labels
    gpu = torch.cat([b.images.cpu() for b in gpu_batches])
    cpu = torch.cat([b.images for b in cpu_batches])
    assert (gpu - cpu).abs().mean().item() <= 2 / 255
    gpu_loader.close()


@pytest.mark.cuda
def test_gpu_augment_and_corrupt(corrupt_path):
    loader = build_dali_loader(spec(corrupt_path, batch_size=5, device="gpu", augment=AugmentConfig(p=1.0), workers=1))
    counts = collections.Counter()
    for _ in range(2):
        batches, labels = _epoch(loader)
        counts.update(labels)
        assert all(b.images.is_cuda and torch.isfinite(b.images).all() for b in batches)
    assert set(counts.values()) == {2} and len(counts) == 12
    assert loader.num_corrupt == 8
    loader.close()


def test_min_label_length_on_both_backends(tmp_path):
    with LmdbWriter(tmp_path / "len.lmdb") as w:
        for i in range(12):
            w.add(_encode(_crop(random.Random(i), 60, 32), "PNG"), "abcdef"[: i % 6 + 1])
    kw = dict(batch_size=64, shuffle=False, min_label_length=4)
    dali = build_dali_loader(spec(tmp_path / "len.lmdb", device="cpu", **kw))
    _, dali_labels = _epoch(dali)
    dali.close()
    _, torch_labels = _epoch(build_dataloader(tmp_path / "len.lmdb", **kw))
    assert dali_labels == torch_labels and sorted(map(len, dali_labels)) == [4, 4, 5, 5, 6, 6]
