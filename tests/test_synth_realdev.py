"""The committed real-photo dev-set manifest is well formed; a bad manifest is one clear error (no images needed)."""

from __future__ import annotations

import re

import pytest

from benchmarks.make_realdev import MANIFEST, main, read_manifest
from cllstr.scripts import SCRIPTS


def test_committed_manifest_names_a_pinned_source_and_label_for_every_used_crop():
    rows = read_manifest(MANIFEST)
    used = [r for r in rows if r["use"] == "realdev"]
    assert len(used) >= 40
    for r in rows:
        assert r["script"] in SCRIPTS
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]), r
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", r["repo"]), r
        assert r["use"] == "realdev" or r["note"], f"excluded crop without a reason: {r}"
    assert len({(r["repo"], r["path"], r["box"]) for r in rows}) == len(rows)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LAT,,o/r," + "a" * 40 + ",x.png,,realdev,", "needs a label"),
        ("LAT,w,o/r," + "a" * 40 + ",x.png,1 2 3,realdev,", "box must be"),
        ("LAT,w,o/r," + "a" * 40 + ",x.png,,maybe,", "use must be"),
    ],
)
def test_bad_manifest_rows_name_the_file_and_line(tmp_path, capsys, line, message):
    bad = tmp_path / "m.csv"
    bad.write_text("script,label,repo,commit,path,box,use,note\n" + line + "\n", encoding="utf-8")
    assert main(["--out", str(tmp_path / "out"), "--manifest", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and message in err


def test_missing_mirror_is_a_clear_error(tmp_path, capsys):
    ok = tmp_path / "m.csv"
    ok.write_text("script,label,repo,commit,path,box,use,note\nLAT,w,o/r," + "a" * 40 + ",x.png,,realdev,\n")
    assert main(["--out", str(tmp_path / "out"), "--manifest", str(ok), "--mirrors", str(tmp_path)]) == 1
    assert "no mirror of o/r" in capsys.readouterr().err
