"""Renderer tests: complex shaping really applied, determinism by (seed, index), glyph-coverage skipping, styles."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cllstr.scripts import SCRIPT_ORDER, get_script
from cllstr.synth import fonts as fonts_mod
from cllstr.synth.appearance import encode_image
from cllstr.synth.fonts import find_fonts, load_font, missing_glyphs
from cllstr.synth.render import NoCoverableWordError, Renderer, text_mask
from tests.common import require_font


def _face(script: str):
    """The first face of ``script``: a machine without its default font skips; find_fonts failing then fails."""
    require_font(get_script(script).fonts[0])
    return find_fonts(get_script(script))[0]


def _canvas(text: str, face, size: int = 48) -> np.ndarray:
    """Ink of ``text`` drawn at a fixed origin on a fixed canvas (so two texts share coordinates)."""
    img = Image.new("L", (400, 120), 0)
    ImageDraw.Draw(img).text((20, 20), text, fill=255, font=load_font(face.path, face.index, size))
    return np.asarray(img, dtype=np.float32) / 255.0


def _best_dx(whole: np.ndarray, part: np.ndarray, max_dx: int = 150) -> int:
    """Horizontal shift of ``part`` that overlaps ``whole`` best."""
    scores = [float((whole[:, dx:] * part[:, : part.shape[1] - dx]).sum()) for dx in range(max_dx)]
    return int(np.argmax(scores))


def test_arabic_joined_differs_from_isolated_letters():
    face = _face("ARA")
    word = "سلام"
    joined = text_mask(word, face, 48, "ar")
    isolated = text_mask("\u200c".join(word), face, 48, "ar")  # ZWNJ forbids joining: isolated forms
    assert joined.size != isolated.size or not np.array_equal(np.asarray(joined), np.asarray(isolated))
    assert joined.width < isolated.width


def test_arabic_is_drawn_right_to_left():
    face = _face("ARA")
    beh, alef = "ب", "ا"
    both = _canvas(beh + "\u200c" + alef, face)
    # The first letter in logical order sits to the right of the second one.
    assert _best_dx(both, _canvas(beh, face)) > _best_dx(both, _canvas(alef, face)) + 5


def test_devanagari_conjunct_is_narrower_than_its_parts():
    face = _face("HIN")
    parts = ["क", "्", "ष"]
    conjunct = text_mask("".join(parts), face, 48, "hi")
    assert conjunct.width < sum(text_mask(p, face, 48, "hi").width for p in parts)


def test_devanagari_pre_base_vowel_sign_is_drawn_before_the_consonant():
    face = _face("HIN")
    # Logical order is KA + I-sign, but the sign is drawn to the left, so KA moves right.
    assert _best_dx(_canvas("कि", face), _canvas("क", face)) > 5


def test_renderer_is_deterministic_by_seed_and_index():
    a = Renderer(["ARA", "LAT"], "real", seed=7)
    b = Renderer(["ARA", "LAT"], "real", seed=7)
    for i in (0, 3, 11):
        sa, sb = a(i), b(i)
        assert sa.label == sb.label and sa.script == sb.script
        assert encode_image(sa.image, "png") == encode_image(sb.image, "png")
    later_first = Renderer(["ARA", "LAT"], "real", seed=7)
    later_first(11)
    assert encode_image(later_first(3).image, "png") == encode_image(a(3).image, "png")
    other_seed = Renderer(["ARA", "LAT"], "real", seed=8)
    assert [a(i).label for i in range(8)] != [other_seed(i).label for i in range(8)]


def test_words_with_missing_glyphs_are_skipped_and_counted():
    face = _face("LAT")
    assert missing_glyphs("a\u4e00b", face) == {"\u4e00"}
    r = Renderer("LAT", "clean", seed=0, words={"LAT": ["ok", "a\u4e00b"]})
    labels = [r(i).label for i in range(12)]
    assert set(labels) == {"ok"}
    assert r.skipped["LAT"] > 0 and r.missing["\u4e00"] == r.skipped["LAT"]


def test_only_uncoverable_words_raise():
    _face("LAT")
    r = Renderer("LAT", "clean", words={"LAT": ["\u4e00"]}, max_tries=3)
    with pytest.raises(NoCoverableWordError, match="LAT"):
        r(0)


def test_missing_raqm_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(fonts_mod.features, "check", lambda name: False)
    with pytest.raises(fonts_mod.RaqmMissingError, match="libraqm"):
        Renderer("LAT")


@pytest.mark.parametrize("script", SCRIPT_ORDER)
def test_every_script_renders_covered_labels_in_height_range(script):
    _face(script)
    r = Renderer(script, "real", seed=1)
    for i in range(4):
        s = r(i)
        assert s.script == script
        assert 16 <= s.image.height <= 64 and s.image.width >= 1 and s.image.mode == "RGB"
        assert not missing_glyphs(s.label, s.font)
        assert np.asarray(s.image).std() > 0  # something was drawn


def test_real_and_synthmlt_styles_differ_in_appearance_distributions():
    _face("LAT")
    real, synth = Renderer("LAT", "real", seed=3), Renderer("LAT", "synthmlt", seed=3)
    q_real = np.mean([real(i).quality for i in range(24)])
    q_synth = np.mean([synth(i).quality for i in range(24)])
    assert q_real < q_synth
