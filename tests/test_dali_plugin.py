"""cllstr's DALI plugin (``fn.cllstr.text_resize``): bit-exact parity with Pillow's resize, regions, keep-ratio
padding, its use by the CPU pipeline and loader, and its errors."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from tests.common import require_dali_plugin, require_module, spec

require_module("nvidia.dali")

from nvidia.dali import fn, pipeline_def, types  # noqa: E402

from cllstr.data.loading.dali import build_dali_loader, ops, plugin  # noqa: E402
from cllstr.data.loading.decode import resize_fixed, resize_keep_ratio  # noqa: E402
from cllstr.data.loading.torch_backend import build_dataloader  # noqa: E402
from cllstr.data.store.writer import LmdbWriter  # noqa: E402

require_dali_plugin()

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# Pillow 13 orders the two passes by how much each axis shrinks; the plugin follows it (older Pillows differ by a few
# levels on images whose height shrinks much more than their width, which is why pyproject.toml needs pillow>=13).

ROI = ("roi_y", "roi_x", "roi_h", "roi_w")


def _noise(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    """Random pixels, half of the images saturated black/white (the clipping of negative filter lobes)."""
    img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    return (img > 127).astype(np.uint8) * 255 if rng.random() < 0.5 else img


def _run(images: list[np.ndarray], size: tuple[int, int], **kwargs) -> list[np.ndarray]:
    """``fn.cllstr.text_resize`` over one batch; list-valued ``kwargs`` are per-sample argument inputs."""
    per_sample = {k: v for k, v in kwargs.items() if isinstance(v, list)}
    constant = {k: v for k, v in kwargs.items() if not isinstance(v, list)}

    @pipeline_def(batch_size=len(images), num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        args = {k: fn.external_source(name=k) for k in per_sample}
        return fn.cllstr.text_resize(fn.external_source(name="images"), size=size, **args, **constant)

    p = pipe()
    p.build()
    p.feed_input("images", images)
    for k, v in per_sample.items():
        p.feed_input(k, [np.array(x, dtype=np.float32) for x in v])
    (out,) = p.run()
    return [np.asarray(out[i]) for i in range(len(images))]


def _pillow(img: np.ndarray, size: tuple[int, int], interp: str, region=None, keep_ratio: bool = False) -> np.ndarray:
    """The reference: Pillow's resize of ``region`` = (y, x, h, w) (as float32, like DALI's argument inputs)."""
    out_h, out_w = size
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    y, x, h, w = (np.float32(v) for v in (region or (0, 0, img.shape[0], img.shape[1])))
    box = (float(x), float(y), min(float(x + w), img.shape[1]), min(float(y + h), img.shape[0]))
    new_w = max(1, min(out_w, math.ceil(out_h * float(w) / float(h)))) if keep_ratio else out_w
    content = np.asarray(pil.resize((new_w, out_h), FILTERS[interp], box=box)).reshape(out_h, new_w, -1)
    return np.concatenate([content, np.repeat(content[:, -1:], out_w - new_w, axis=1)], axis=1)


def _assert_equal(got: list[np.ndarray], want: list[np.ndarray], what: list) -> None:
    for g, w, name in zip(got, want, what, strict=True):
        assert g.shape == w.shape, name
        if not np.array_equal(g, w):
            diff = np.abs(g.astype(int) - w)
            pytest.fail(f"{name}: {int((diff > 0).sum())} pixels differ, by up to {int(diff.max())}")


ODD_SIZES = [(1, 1), (1, 9), (9, 1), (1, 600), (600, 1), (2, 3), (32, 100), (31, 99), (64, 512), (17, 5), (7, 700)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("interp", list(FILTERS))
@pytest.mark.parametrize("size", [(32, 100), (1, 1), (1, 40), (40, 1), (64, 300)])
def test_matches_pillow_on_odd_sizes(interp, channels, size):
    rng = np.random.default_rng(0)
    images = [_noise(rng, h, w, channels) for h, w in ODD_SIZES]
    _assert_equal(_run(images, size, interp=interp), [_pillow(a, size, interp) for a in images], ODD_SIZES)


@pytest.mark.parametrize("interp", list(FILTERS))
def test_matches_pillow_for_every_width(interp):
    """Widths 1..600 (down- and upscaling along x) at random heights 1..70, grey, to 32x100."""
    rng = np.random.default_rng(1)
    images = [_noise(rng, int(rng.integers(1, 71)), w, 1) for w in range(1, 601)]
    want = [_pillow(a, (32, 100), interp) for a in images]
    _assert_equal(_run(images, (32, 100), interp=interp), want, [a.shape for a in images])


@pytest.mark.parametrize("interp", list(FILTERS))
def test_matches_pillow_on_extreme_downscales(interp):
    """Thousands of taps per output pixel (the SIMD kernel's split sums wrap around int32 and must still be exact)."""
    rng = np.random.default_rng(8)
    images = [np.full((1, 9000, 1), 255, np.uint8), _noise(rng, 9000, 2, 1), _noise(rng, 3, 30000, 3)]
    for size in [(1, 1), (2, 3)]:
        _assert_equal(_run(images, size, interp=interp), [_pillow(a, size, interp) for a in images], [size] * 3)


def _regions(rng: np.random.Generator, images: list[np.ndarray]) -> list[tuple[float, float, float, float]]:
    """Random float32 regions inside each image: fractional, tiny, whole, and integer crops of the output size."""
    regions = []
    for k, img in enumerate(images):
        hh, ww = img.shape[:2]
        if k % 4 == 0:
            regions.append((0.0, 0.0, float(hh), float(ww)))
            continue
        if k % 4 == 1 and hh > 40 and ww > 110:  # exactly the output size at an integer offset: Pillow's crop
            regions.append((float(rng.integers(0, hh - 32)), float(rng.integers(0, ww - 100)), 32.0, 100.0))
            continue
        h = np.float32(rng.uniform(0.05, 1.0) * hh)
        w = np.float32(rng.uniform(0.05, 1.0) * ww)
        y = np.float32(rng.uniform(0.0, 1.0) * (hh - h))
        x = np.float32(rng.uniform(0.0, 1.0) * (ww - w))
        h = min(h, np.float32(hh) - y)  # keep y + h inside the image in float32
        w = min(w, np.float32(ww) - x)
        regions.append((float(y), float(x), float(h), float(w)))
    return regions


@pytest.mark.parametrize("keep_ratio", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("interp", list(FILTERS))
def test_regions_match_pillow_box(interp, channels, keep_ratio):
    rng = np.random.default_rng(2)
    images = [_noise(rng, int(rng.integers(1, 90)), int(rng.integers(1, 500)), channels) for _ in range(48)]
    regions = _regions(rng, images)
    kwargs = {name: [r[i] for r in regions] for i, name in enumerate(ROI)}
    got = _run(images, (32, 100), interp=interp, keep_ratio=keep_ratio, **kwargs)
    want = [_pillow(a, (32, 100), interp, r, keep_ratio) for a, r in zip(images, regions, strict=True)]
    _assert_equal(got, want, regions)


def test_constant_region_arguments():
    rng = np.random.default_rng(3)
    images = [_noise(rng, 40, 200, 1), _noise(rng, 21, 60, 3)]
    got = _run(images, (16, 50), interp="bicubic", roi_y=2.5, roi_x=3.25, roi_h=17.0, roi_w=40.5)
    _assert_equal(got, [_pillow(a, (16, 50), "bicubic", (2.5, 3.25, 17.0, 40.5)) for a in images], [0, 1])


@pytest.mark.parametrize("interp", list(FILTERS))
def test_keep_ratio_and_fixed_match_the_torch_path(interp):
    """The torch loader's resize_keep_ratio / resize_fixed (Pillow + edge padding) on whole images."""
    rng = np.random.default_rng(4)
    images = [_noise(rng, int(rng.integers(1, 70)), int(rng.integers(1, 400)), 1) for _ in range(40)]
    pils = [Image.fromarray(a[:, :, 0]) for a in images]
    keep = _run(images, (32, 100), interp=interp, keep_ratio=True)
    _assert_equal(keep, [resize_keep_ratio(p, 100, 32, interp) for p in pils], [a.shape for a in images])
    fixed = _run(images, (32, 100), interp=interp)
    _assert_equal(fixed, [resize_fixed(p, 100, 32, interp) for p in pils], [a.shape for a in images])
    for img, out in zip(images, keep, strict=True):
        new_w = max(1, min(100, math.ceil(32 * img.shape[1] / img.shape[0])))
        assert (out[:, new_w:] == out[:, new_w - 1 : new_w]).all()


def test_region_overshoot_from_float_rounding_is_clamped():
    img = _noise(np.random.default_rng(5), 30, 90, 1)
    got = _run([img], (32, 100), roi_y=[0.5], roi_x=[10.0], roi_h=[29.505], roi_w=[80.004])
    _assert_equal(got, [_pillow(img, (32, 100), "bicubic", (0.5, 10.0, 29.5, 80.0))], ["overshoot"])


def _ops_pipeline(images: list[np.ndarray], keep_ratio: bool):
    @pipeline_def(batch_size=len(images), num_threads=2, device_id=None, prefetch_queue_depth=1)
    def pipe():
        x = fn.external_source(name="images", layout="HWC")
        shape = x.shape(dtype=types.FLOAT)
        region = (0.0, 0.0, shape[0], shape[1]) if keep_ratio else None
        return ops.resize(x, 32, 100, keep_ratio=keep_ratio, interpolation="bicubic", region=region)

    p = pipe()
    p.build()
    p.feed_input("images", images)
    (out,) = p.run()
    return [np.asarray(out[i]) for i in range(len(images))]


@pytest.mark.parametrize("keep_ratio", [False, True])
def test_ops_resize_uses_the_plugin_on_cpu(monkeypatch, keep_ratio):
    """On the CPU ops.resize is Pillow bit for bit (the plugin); with the plugin disabled it is DALI's resize."""
    rng = np.random.default_rng(6)
    images = [_noise(rng, int(rng.integers(20, 64)), int(rng.integers(60, 400)), 1) for _ in range(8)]
    want = [_pillow(a, (32, 100), "bicubic", keep_ratio=keep_ratio) for a in images]
    _assert_equal(_ops_pipeline(images, keep_ratio), want, [a.shape for a in images])
    monkeypatch.setattr(plugin, "HAS_PLUGIN", False)
    fallback = _ops_pipeline(images, keep_ratio)
    assert not all(np.array_equal(g, w) for g, w in zip(fallback, want, strict=True))


@pytest.mark.parametrize("keep_ratio", [False, True])
def test_cpu_loader_equals_torch_loader_on_lossless_images(tmp_path, keep_ratio):
    """Grey PNGs decode identically in DALI and Pillow, so the CPU loader's batches equal the torch loader's."""
    rng = np.random.default_rng(7)
    with LmdbWriter(tmp_path / "png.lmdb") as writer:
        for i in range(24):
            buf = io.BytesIO()
            Image.fromarray(_noise(rng, int(rng.integers(10, 70)), int(rng.integers(20, 400)), 1)[:, :, 0]).save(
                buf, "PNG"
            )
            writer.add(buf.getvalue(), f"w{i}")
    kw = dict(batch_size=8, shuffle=False, keep_ratio=keep_ratio)
    want = torch.cat([b.images for b in build_dataloader(tmp_path / "png.lmdb", **kw)])
    loader = build_dali_loader(spec(tmp_path / "png.lmdb", device="cpu", **kw))
    got = torch.cat([b.images for b in loader])
    loader.close()
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


GOOD = np.zeros((4, 6, 1), np.uint8)


@pytest.mark.parametrize(
    ("images", "kwargs", "match"),
    [
        ([GOOD.astype(np.float32)], {}, "must be uint8"),
        ([GOOD[:, :, 0]], {}, "does not match any of the allowed layouts"),
        ([np.zeros((4, 6, 4), np.uint8)], {}, "4 channels; 1 or 3"),
        ([np.zeros((0, 6, 1), np.uint8)], {}, "empty"),
        ([GOOD], {"size": (0, 100)}, "argument `size`"),
        ([GOOD], {"size": (32, 100, 3)}, "argument `size`"),
        ([GOOD], {"interp": "cubic"}, "argument `interp`"),
        ([GOOD], {"roi_h": [0.0]}, "argument `roi_h`"),
        ([GOOD], {"roi_w": [7.0]}, "argument `roi_w`"),
        ([GOOD], {"roi_x": [-1.0]}, "argument `roi_x`"),
        ([GOOD], {"roi_y": [float("nan")]}, "argument `roi_y`"),
    ],
)
def test_bad_input_raises_a_clear_error(images, kwargs, match):
    kwargs = dict(kwargs)
    size = kwargs.pop("size", (32, 100))
    with pytest.raises((RuntimeError, ValueError), match=match):
        _run(images, size, **kwargs)
