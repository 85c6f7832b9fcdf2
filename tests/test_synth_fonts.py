"""Font discovery: fontconfig families with the right .ttc face index, --font-dir scanning, cmap coverage."""

from __future__ import annotations

import pytest

from cllstr.scripts import get_script
from cllstr.synth.fonts import FontNotFoundError, find_fonts, fontconfig_faces, missing_glyphs
from tests.common import require_font


def _cjk_faces():
    require_font("Noto Sans CJK JP")
    faces = fontconfig_faces("Noto Sans CJK JP")
    assert faces, "fc-list lists 'Noto Sans CJK JP' but fontconfig_faces finds none"
    return faces


@pytest.mark.parametrize(
    ("script", "family", "sample"),
    [
        ("JPN", "Noto Sans CJK JP", "日本語のテキスト"),
        ("KOR", "Noto Sans CJK KR", "한국어 텍스트"),
        ("CHI", "Noto Sans CJK SC", "简体中文"),
    ],
)
def test_cjk_scripts_get_their_regional_ttc_face(script, family, sample):
    _cjk_faces()
    faces = find_fonts(get_script(script))
    assert faces[0].family == family
    assert all(f.path.endswith(".ttc") for f in faces if "CJK" in f.family)
    assert len({f.index for f in faces if f.path.endswith(".ttc")}) == 1
    assert not missing_glyphs(sample.replace(" ", ""), faces[0])


def test_font_dir_picks_the_face_index_of_the_script_region(tmp_path):
    ttc = next(f.path for f in _cjk_faces() if f.path.endswith(".ttc"))
    (tmp_path / "cjk.ttc").symlink_to(ttc)
    jp = find_fonts(get_script("JPN"), tmp_path, probe="日本語のテキスト")
    kr = find_fonts(get_script("KOR"), tmp_path, probe="한국어텍스트")
    sc = find_fonts(get_script("CHI"), tmp_path, probe="简体中文")
    assert (jp[0].family, kr[0].family, sc[0].family) == ("Noto Sans CJK JP", "Noto Sans CJK KR", "Noto Sans CJK SC")
    by_family = {f.family: f.index for f in fontconfig_faces("Noto Sans CJK JP") + fontconfig_faces("Noto Sans CJK SC")}
    assert jp[0].index == by_family["Noto Sans CJK JP"] and sc[0].index == by_family["Noto Sans CJK SC"]


def test_font_dir_without_coverage_is_an_error(tmp_path):
    require_font("Noto Sans")
    latin = fontconfig_faces("Noto Sans")
    assert latin, "fc-list lists 'Noto Sans' but fontconfig_faces finds none"
    (tmp_path / "latin.ttf").symlink_to(latin[0].path)
    with pytest.raises(FontNotFoundError, match="covers"):
        find_fonts(get_script("KOR"), tmp_path, probe="한국어텍스트")


def test_missing_font_dir_names_the_path(tmp_path):
    with pytest.raises(FontNotFoundError, match="nope"):
        find_fonts(get_script("LAT"), tmp_path / "nope", probe="abc")
