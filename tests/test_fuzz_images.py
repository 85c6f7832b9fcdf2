"""Property-based fuzzing of the image decoders: valid images of every size, mode and format the loaders meet, cut
short, with flipped, inserted or deleted bytes, lying headers (huge or zero sizes) or random bytes. Every decoder
either returns a well-formed image or raises one of :data:`~cllstr.data.store.format.DECODE_ERRORS` (what the loaders
skip and count); ``screen_image`` never raises, and what it passes on decodes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cllstr.data.loading.dali.source import screen_image
from cllstr.data.loading.decode import DECODE_ERRORS, ImageTransform, decode_image, transform_batch
from tests.common import fuzz_settings

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
MODES = {"PNG": ["L", "RGB", "RGBA", "LA", "P", "1", "I;16"], "JPEG": ["L", "RGB", "CMYK"], "GIF": ["L", "P"],
         "BMP": ["L", "RGB", "1"], "TIFF": ["L", "RGB", "RGBA", "CMYK", "I;16", "F"], "WEBP": ["RGB", "RGBA"]}


@st.composite
def valid_images(draw) -> bytes:
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES[fmt]))
    w, h = draw(st.integers(1, 300)), draw(st.integers(1, 90))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    img = Image.fromarray(pixels, "RGBA").convert(mode) if mode not in ("I;16", "F") else Image.new(mode, (w, h), 7)
    if mode == "P" and draw(st.booleans()):
        img.info["transparency"] = 0
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": draw(st.integers(5, 95))} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def _lie_about_size(buf: bytes, width: int, height: int) -> bytes:
    """Patch the size fields of a PNG header (or a JPEG SOF0/SOF2 marker) to claim ``width`` x ``height``."""
    if buf.startswith(b"\x89PNG") and len(buf) >= 24:
        return buf[:16] + struct.pack(">II", width, height) + buf[24:]
    for sof in (b"\xff\xc0", b"\xff\xc2"):
        at = buf.find(sof)
        if at > 0 and at + 9 <= len(buf):
            return buf[: at + 5] + struct.pack(">HH", height & 0xFFFF, width & 0xFFFF) + buf[at + 9 :]
    return buf


@st.composite
def damaged_images(draw) -> bytes:
    buf = bytearray(draw(valid_images()))
    kind = draw(st.sampled_from(["intact", "truncate", "flip", "insert", "delete", "size", "random"]))
    if kind == "truncate":
        del buf[draw(st.integers(0, len(buf) - 1)) :]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
    elif kind == "insert":
        at = draw(st.integers(0, len(buf)))
        buf[at:at] = draw(st.binary(min_size=1, max_size=64))
    elif kind == "delete":
        at = draw(st.integers(0, len(buf) - 1))
        del buf[at : at + draw(st.integers(1, 64))]
    elif kind == "size":
        big = st.sampled_from([0, 1, 65535, 70000, 2**31 - 1, 2**32 - 1])
        buf = bytearray(_lie_about_size(bytes(buf), draw(big), draw(big)))
    elif kind == "random":
        buf = bytearray(buf[:8] + draw(st.binary(max_size=400)))
    return bytes(buf)


@fuzz_settings(300)
@given(damaged_images(), st.sampled_from(["L", "RGB"]), st.booleans())
def test_decode_image_returns_an_image_or_a_decode_error(buf, mode, draft) -> None:
    try:
        img = decode_image(buf, mode, (100, 32), draft=draft)
    except DECODE_ERRORS:
        return
    assert img.mode == mode and img.width > 0 and img.height > 0


@fuzz_settings(200)
@given(damaged_images(), st.booleans(), st.booleans())
def test_transform_gives_a_full_size_array_or_a_decode_error(buf, rgb, keep_ratio) -> None:
    transform = ImageTransform(32, 100, keep_ratio=keep_ratio, rgb=rgb)
    try:
        out = transform(buf)
    except DECODE_ERRORS:
        return
    assert out.shape == (32, 100, 3 if rgb else 1) and out.dtype == np.uint8


@fuzz_settings(60)
@given(st.lists(damaged_images(), min_size=1, max_size=6), st.integers(1, 3))
def test_transform_batch_flags_exactly_the_undecodable(bufs, threads) -> None:
    transform = ImageTransform(32, 100)
    images, errors = transform_batch(bufs, [transform] * len(bufs), threads=threads)
    for buf, img, err in zip(bufs, images, errors, strict=True):
        try:
            want = transform(buf)
        except DECODE_ERRORS:
            assert err is not None
            continue
        assert err is None and np.array_equal(img, want)


@fuzz_settings(300)
@given(damaged_images(), st.sampled_from(["L", "RGB"]), st.sampled_from(["header", "full"]))
def test_screen_image_never_raises_and_what_it_returns_decodes(buf, mode, validation) -> None:
    out = screen_image(buf, mode, validation)
    if out is None:
        return
    assert isinstance(out, bytes)
    if out is buf:  # a JPEG or opaque PNG passed through after the structural checks (DALI decodes it)
        assert validation == "header" and buf[:3] in (b"\xff\xd8\xff", b"\x89PN")
        return
    img = Image.open(io.BytesIO(out))
    assert img.format == "PPM" and img.mode == mode
    assert np.array_equal(np.asarray(img), np.asarray(decode_image(buf, mode)))


@fuzz_settings(100)
@given(st.binary(max_size=2000))
def test_random_bytes(buf) -> None:
    assert screen_image(buf) is None or isinstance(screen_image(buf), bytes)
    try:
        decode_image(buf, "L")
    except DECODE_ERRORS:
        pass
