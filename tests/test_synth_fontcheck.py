"""Font acceptance checks: faces with broken shaping, missing coverage or empty glyphs are rejected automatically.

Broken faces are made here from the Noto faces `make fonts` installs, with fontTools: dropping the ``GSUB`` table
(and, for Arabic, the presentation-form code points HarfBuzz would otherwise join with as a fallback) leaves the
script's cmap intact but stops Arabic joining and Indic conjuncts, which is exactly the failure the shaping check must
catch; emptying glyph outlines gives a face that covers characters but draws nothing.
"""

from __future__ import annotations

import pytest

from cllstr.synth.fontcheck import SHAPING_PROBES, check_face, frequent_chars, shaping_score
from cllstr.synth.fonts import FontFace, fontconfig_faces, missing_glyphs
from tests.common import require_font


def _regular(family: str) -> FontFace:
    require_font(family)
    faces = [f for f in fontconfig_faces(family) if f.style == "Regular"]
    assert faces, f"fc-list lists {family!r} but fontconfig_faces finds no Regular face"
    return faces[0]


def _rewrite(face: FontFace, out, edit) -> FontFace:
    from fontTools.ttLib import TTFont

    font = TTFont(face.path, fontNumber=face.index)
    edit(font)
    font.save(str(out))
    return FontFace(str(out), 0, f"{face.family} (edited)", face.style)


def without_shaping(font) -> None:
    """Drop GSUB and the Arabic presentation forms (U+FB50-FDFF, U+FE70-FEFF) from a fontTools font, in place."""
    del font["GSUB"]
    for table in font["cmap"].tables:
        if table.isUnicode():
            for cp in [c for c in table.cmap if 0xFB50 <= c <= 0xFDFF or 0xFE70 <= c <= 0xFEFF]:
                del table.cmap[cp]


def _without_gsub(face: FontFace, out) -> FontFace:
    return _rewrite(face, out, without_shaping)


@pytest.mark.parametrize(
    ("script", "family", "lang"),
    [("ARA", "Noto Sans Arabic", "ar"), ("HIN", "Noto Sans Devanagari", "hi"), ("BEN", "Noto Sans Bengali", "bn")],
)
def test_face_without_gsub_is_rejected_for_shaping_and_original_is_accepted(tmp_path, script, family, lang):
    face = _regular(family)
    good = check_face(face, script, language=lang)
    assert good.ok, good.reason
    assert good.shaping == 1.0
    broken = _without_gsub(face, tmp_path / "broken.ttf")
    res = check_face(broken, script, language=lang)
    assert res.coverage == pytest.approx(good.coverage)  # same coverage of the script: only shaping differs
    assert not res.ok and "shaping" in res.reason
    assert shaping_score(broken, script, lang) < 0.6


def test_scripts_without_probes_score_full_shaping():
    face = _regular("Noto Sans")
    assert "LAT" not in SHAPING_PROBES
    assert shaping_score(face, "LAT") == 1.0


def test_latin_face_is_rejected_for_arabic_by_coverage():
    res = check_face(_regular("Noto Sans"), "ARA", language="ar")
    assert not res.ok and "covers" in res.reason and res.coverage < 0.5


def test_face_whose_glyphs_are_empty_is_rejected_for_no_ink(tmp_path):
    def empty_lowercase(font) -> None:
        from fontTools.ttLib.tables._g_l_y_f import Glyph

        cmap = font.getBestCmap()
        for ch in "abcdefghijklmnopqrstuvwxyz":
            font["glyf"][cmap[ord(ch)]] = Glyph()

    face = _rewrite(_regular("Noto Sans"), tmp_path / "empty.ttf", empty_lowercase)
    res = check_face(face, "LAT")
    assert res.coverage > 0.98  # the cmap still claims every letter
    assert not res.ok and "no ink" in res.reason


def test_code_points_mapped_to_notdef_count_as_missing(tmp_path):
    def map_x_to_notdef(font) -> None:
        for table in font["cmap"].tables:
            if table.isUnicode() and ord("x") in table.cmap:
                table.cmap[ord("x")] = ".notdef"

    face = _rewrite(_regular("Noto Sans"), tmp_path / "notdef.ttf", map_x_to_notdef)
    assert missing_glyphs("xy", face) == {"x"}


def test_frequent_chars_are_a_distribution_over_the_script():
    chars = frequent_chars("KOR")
    assert sum(p for _, p in chars) == pytest.approx(1.0)
    weights = [p for _, p in chars]
    assert weights == sorted(weights, reverse=True)
    top = "".join(ch for ch, _ in chars[:20])
    assert all("\uac00" <= ch <= "\ud7a3" for ch in top)  # the most frequent characters are Hangul syllables
