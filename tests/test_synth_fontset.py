"""Font sets: sampling by family (not face), --font-dir mixed in and checked, the catalogue matches the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cllstr.synth import catalog
from cllstr.synth.fonts import FontFace, FontNotFoundError, fontconfig_faces
from cllstr.synth.fontset import FONT_DIR_SOURCE, FamilyFaces, ScriptFonts, resolve_fonts
from cllstr.synth.render import Renderer
from tests.common import require_font
from tests.test_synth_fontcheck import without_shaping

ROOT = Path(__file__).resolve().parents[1]


def _fake(family: str, n: int, bold_every: int = 2) -> tuple[FontFace, ...]:
    return tuple(FontFace(f"/x/{family}{i}.ttf", 0, family, "Bold" if i % bold_every else "Regular") for i in range(n))


def _share(sf: ScriptFonts, family: str, n: int = 4000, **kw) -> float:
    rng = np.random.default_rng(0)
    return sum(sf.pick(rng, **kw).family == family for _ in range(n)) / n


def test_families_not_faces_are_sampled_by_weight():
    many = FamilyFaces("Many", "p", False, 1.0, _fake("Many", 12))
    one = FamilyFaces("One", "p", False, 1.0, _fake("One", 1))
    assert _share(ScriptFonts("LAT", "full", (many, one)), "Many", serif_prob=0.0) == pytest.approx(0.5, abs=0.03)
    heavy = FamilyFaces("One", "p", False, 3.0, _fake("One", 1))
    assert _share(ScriptFonts("LAT", "full", (many, heavy)), "One", serif_prob=0.0) == pytest.approx(0.75, abs=0.03)


def test_pick_follows_serif_and_bold_preferences_when_both_exist():
    sans, serif = FamilyFaces("S", "p", False, 1.0, _fake("S", 4)), FamilyFaces("R", "p", True, 1.0, _fake("R", 4))
    sf = ScriptFonts("LAT", "full", (sans, serif))
    assert _share(sf, "R", serif_prob=1.0) == 1.0 and _share(sf, "R", serif_prob=0.0) == 0.0
    rng = np.random.default_rng(1)
    assert all(sf.pick(rng, bold_prob=1.0).bold for _ in range(50))
    only_sans = ScriptFonts("LAT", "full", (sans,))
    assert _share(only_sans, "S", serif_prob=1.0) == 1.0  # no serif family: fall back instead of failing


def _display_dir(tmp_path: Path) -> Path:
    require_font("Noto Sans Display")
    face = next(f for f in fontconfig_faces("Noto Sans Display") if f.style == "Regular")
    (tmp_path / "display.ttf").symlink_to(face.path)
    return tmp_path


def test_font_dir_is_mixed_in_as_more_checked_families(tmp_path):
    require_font("Noto Sans")
    folder = _display_dir(tmp_path)
    base = resolve_fonts("LAT", "noto")
    mixed = resolve_fonts("LAT", "noto", str(folder))
    assert [f.name for f in mixed.families[: len(base.families)]] == [f.name for f in base.families]
    extra = mixed.families[len(base.families) :]
    assert [(f.name, f.source) for f in extra] == [("Noto Sans Display", FONT_DIR_SOURCE)]
    alone = resolve_fonts("LAT", "none", str(folder))
    assert [f.source for f in alone.families] == [FONT_DIR_SOURCE]


def test_font_dir_of_only_broken_faces_is_a_clear_error(tmp_path):
    require_font("Noto Sans Arabic")
    from fontTools.ttLib import TTFont

    face = next(f for f in fontconfig_faces("Noto Sans Arabic") if f.style == "Regular")
    font = TTFont(face.path)
    without_shaping(font)
    font.save(str(tmp_path / "nojoin.ttf"))
    with pytest.raises(FontNotFoundError, match="rejected.*shaping"):
        resolve_fonts("ARA", "none", str(tmp_path))


def test_unknown_font_set_lists_the_known_ones():
    with pytest.raises(KeyError, match="noto, small, full"):
        resolve_fonts("LAT", "huge")


def test_renderer_uses_only_families_of_its_font_set_and_is_deterministic():
    require_font("Noto Sans")
    allowed = set(catalog.packages("noto"))
    a, b = Renderer("LAT", "real", seed=4, font_set="noto"), Renderer("LAT", "real", seed=4, font_set="noto")
    sources = {fam.name: fam.source for fam in a.faces(a.scripts[0]).families}
    assert set(sources.values()) <= allowed
    for i in range(6):
        sa, sb = a(i), b(i)
        assert sa.font == sb.font and sa.label == sb.label
        assert sa.font.family in sources


def _make_list(name: str) -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    m = re.search(rf"^{name} := (.*)$", text, re.M)
    assert m, f"Makefile has no {name} list"
    return {p for p in m.group(1).split() if p != "$(FONTS_SMALL)"}


def test_makefile_font_lists_match_the_catalogue():
    small = _make_list("FONTS_SMALL")
    assert small == set(catalog.packages("small"))
    assert small | _make_list("FONTS_FULL") == set(catalog.packages("full"))


def test_catalogue_is_well_formed():
    for script in ("ARA", "BEN", "CHI", "HIN", "JPN", "KOR", "LAT"):
        fams = catalog.catalog(script)
        names = [f.name for f in fams]
        assert len(names) == len(set(names)), f"{script}: duplicate family"
        assert all(f.tier in catalog.TIERS and f.package.startswith("fonts-") and f.weight > 0 for f in fams)
        assert len(catalog.families(script, "small")) > len(catalog.families(script, "noto"))
        assert len(catalog.families(script, "full")) >= 5


def test_words_a_face_draws_blank_are_skipped_not_rendered_empty(tmp_path):
    require_font("Noto Sans")
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    face = next(f for f in fontconfig_faces("Noto Sans") if f.style == "Regular")
    font = TTFont(face.path)
    font["glyf"][font.getBestCmap()[ord("q")]] = Glyph()  # a rare letter: the face still passes its checks
    font.save(str(tmp_path / "noq.ttf"))
    r = Renderer("LAT", "realistic", seed=0, font_set="none", font_dir=str(tmp_path), words={"LAT": ["q", "ok"]})
    labels = {r(i).label for i in range(10)}
    assert labels == {"ok"} and r.skipped["LAT"] > 0
