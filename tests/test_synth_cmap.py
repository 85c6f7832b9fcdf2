"""cllstr.synth.cmap: the fast cmap reader gives exactly fontTools' coverage, or None when it cannot tell."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont

from cllstr.synth.cmap import read_cmap
from cllstr.synth.fonts import face_cmap


def _reference(path: str, index: int = 0) -> frozenset[int]:
    with TTFont(path, fontNumber=index, lazy=True) as font:
        return frozenset(cp for cp, g in (font.getBestCmap() or {}).items() if g != ".notdef")


def _build(tmp_path, cmap: dict[int, str], name: str = "t.ttf") -> str:
    glyphs = [".notdef", *sorted({g for g in cmap.values() if g != ".notdef"})]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(glyphs)
    fb.setupCharacterMap(cmap)
    pen = TTGlyphPen(None)
    pen.moveTo((0, 0))
    pen.lineTo((0, 500))
    pen.lineTo((500, 0))
    pen.closePath()
    box = pen.glyph()
    fb.setupGlyf({g: box for g in glyphs})
    fb.setupHorizontalMetrics({g: (600, 0) for g in glyphs})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "T", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    path = tmp_path / name
    fb.save(str(path))
    return str(path)


def test_bmp_and_supplementary_planes_and_notdef(tmp_path):
    # Scattered BMP code points (format 4 with several segments, delta and glyph-array mapped), an astral one
    # (forces a format 12 subtable, which the best-cmap order prefers) and one mapped to .notdef (not covered).
    cmap = {0x41: "A", 0x42: "B", 0x43: "C", 0x627: "alef", 0x628: "beh", 0xAC00: "ga", 0x1F600: "smile",
            0x20AC: ".notdef"}
    path = _build(tmp_path, cmap)
    got = read_cmap(path)
    assert got == _reference(path) == frozenset(cp for cp, g in cmap.items() if g != ".notdef")
    bmp = _build(tmp_path, {k: v for k, v in cmap.items() if k < 0x10000}, "bmp.ttf")
    assert read_cmap(bmp) == _reference(bmp) == {0x41, 0x42, 0x43, 0x627, 0x628, 0xAC00}


def test_collection_faces_and_bad_files(tmp_path):
    a = _build(tmp_path, {0x41: "A"}, "a.ttf")
    b = _build(tmp_path, {0x5D0: "alef", 0x5D1: "bet"}, "b.ttf")
    coll = TTCollection()
    coll.fonts = [TTFont(a), TTFont(b)]
    ttc = str(tmp_path / "ab.ttc")
    coll.save(ttc)
    assert read_cmap(ttc, 0) == {0x41}
    assert read_cmap(ttc, 1) == {0x5D0, 0x5D1} == _reference(ttc, 1)
    assert read_cmap(ttc, 2) is None  # no such face
    assert read_cmap(a, 1) is None
    data = (tmp_path / "a.ttf").read_bytes()
    (tmp_path / "cut.ttf").write_bytes(data[: len(data) // 3])
    assert read_cmap(str(tmp_path / "cut.ttf")) is None  # truncated: the caller falls back to fontTools
    (tmp_path / "x.woff").write_bytes(b"wOFF" + data[4:])
    assert read_cmap(str(tmp_path / "x.woff")) is None
    with pytest.raises(OSError):
        read_cmap(str(tmp_path / "missing.ttf"))


def test_face_cmap_uses_it_and_falls_back(tmp_path):
    path = _build(tmp_path, {0x41: "A", 0x42: ".notdef"})
    assert face_cmap(path, 0) == read_cmap(path) == {0x41}
    font = TTFont(path)
    font.flavor = "woff"  # a WOFF file: this reader declines, fontTools reads it
    woff = str(tmp_path / "t.woff")
    font.save(woff)
    assert read_cmap(woff) is None
    assert face_cmap(woff, 0) == {0x41}


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig (fc-list) not installed")
def test_installed_faces_match_fonttools():
    files = sorted({line.split(":")[0] for line in subprocess.run(
        ["fc-list"], capture_output=True, text=True, check=False).stdout.splitlines()})
    files = [f for f in files if f.lower().endswith((".ttf", ".otf", ".ttc", ".otc"))]
    if not files:
        pytest.skip("no TrueType/OpenType font installed")
    step = max(1, len(files) // 60)  # ~60 files spread over what is installed (all of them on a small set)
    checked = 0
    for f in files[::step]:
        n = len(TTCollection(f, lazy=True).fonts) if f.lower().endswith((".ttc", ".otc")) else 1
        for i in range(min(n, 3)):
            assert read_cmap(f, i) == _reference(f, i), f"{f} face {i}"
            checked += 1
    assert checked
