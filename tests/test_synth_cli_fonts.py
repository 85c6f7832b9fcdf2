"""CLI of the font sets and the realistic style: `synth fonts`, `--font-set`, `--style realistic`, `--style-set`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.data import LmdbReader
from cllstr.synth.profiles import mlt19_mini
from tests.common import require_font


def test_synth_fonts_lists_families_faces_and_coverage():
    require_font("Noto Sans Arabic")
    res = CliRunner().invoke(app, ["synth", "fonts", "--scripts", "ARA", "--font-set", "noto"])
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert first.startswith("ARA: ") and "families" in first and "faces" in first
    assert "Noto Sans Arabic [fonts-noto-core, sans" in res.output and "coverage >= " in res.output


def test_synth_fonts_packages_of_a_set():
    res = CliRunner().invoke(app, ["synth", "fonts", "--packages", "--font-set", "small", "--scripts", "KOR"])
    assert res.exit_code == 0, res.output
    assert res.output.split() == ["fonts-nanum", "fonts-noto-cjk"]


def test_realistic_lmdb_records_style_and_font_set(tmp_path):
    require_font("Noto Sans")
    out = tmp_path / "r.lmdb"
    args = ["synth", "--scripts", "LAT", "--n", "12", "--style", "realistic", "--font-set", "noto",
            "--style-set", "vertical_prob=0", "--out", str(out), "-j", "1", "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    r = LmdbReader(out)
    try:
        synth = r.meta["synth"]
        assert len(r) == 12
        assert (synth["style"], synth["font_set"], synth["style_set"]) == ("realistic", "noto", "vertical_prob=0")
        assert synth["font_families"]["LAT"][0] == "Noto Sans"
    finally:
        r.close()


def test_profile_style_replaces_the_mlt19_like_style_only():
    specs = mlt19_mini(scale=0.001, style="realistic")
    assert {s.style for s in specs if "SynthMLT" not in s.relpath} == {"realistic"}
    assert {s.style for s in specs if "SynthMLT" in s.relpath} == {"synthmlt"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["synth", "fonts", "--font-set", "bogus"], 2, "unknown font set"),
        (["synth", "--scripts", "LAT", "--out", "x", "--font-set", "bogus"], 2, "unknown font set"),
        (["synth", "--scripts", "LAT", "--out", "x", "--style-set", "nope=1"], 1, "--style-set"),
        (["synth", "--scripts", "LAT", "--out", "x", "--style-set", "jpeg_quality=5"], 1, "jpeg_quality"),
    ],
)
def test_bad_font_set_or_override_is_a_one_line_error(tmp_path, args, code, message):
    args = [str(tmp_path / a) if a == "x" else a for a in args]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == code, res.output
    assert message in res.output
    assert len(res.output.strip().splitlines()) <= 2
