"""Validation, inspection, creation and the ``cllstr data`` CLI on tiny stores, including corrupt records."""

from __future__ import annotations

import io
import json

import lmdb
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.data.store.charsets import charset_from_lmdbs
from cllstr.data.store.create import create_lmdb
from cllstr.data.store.inspection import inspect_lmdb
from cllstr.data.store.reader import LmdbReader
from cllstr.data.store.validate import validate_lmdb
from cllstr.data.store.writer import LmdbWriter
from cllstr.text.charset import Charset

runner = CliRunner()


def png(seed: int, w: int = 30, h: int = 12) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def good(tmp_path):
    path = tmp_path / "good"
    with LmdbWriter(path, meta={"script": "LAT"}) as w:
        for i, lab in enumerate(["abc", "hello", "क्ष\tमा"]):
            w.add(png(i), lab)
    return path


@pytest.fixture()
def bad(tmp_path):
    path = tmp_path / "bad"
    with LmdbWriter(path) as w:
        w.add(png(0), "fine")
        w.add(png(1)[:40], "truncated")
        w.add(png(2), "")
        w.add(png(3), "x" * 30)
        w.add(png(4), "ab😀")
    return path


def test_validate_good_store(good):
    rep = validate_lmdb(good, Charset(list("abcehlo") + ["क्ष", "मा"], mode="grapheme"), max_len=5)
    assert rep.ok and rep.num_samples == 3 and rep.num_corrupt == 0 and rep.errors() == []


def test_validate_reports_every_problem(bad):
    rep = validate_lmdb(bad, Charset(list("abcdefghijklmnopqrstuvwxyz")), max_len=25)
    assert not rep.ok
    assert list(rep.corrupt_images) == [2] and rep.num_corrupt == 1
    assert rep.empty_labels == [3] and rep.too_long == [4]
    assert rep.records_with_unknown == [5] and rep.unknown_chars == {"😀": 1}
    assert len(rep.errors()) == 4


def test_validate_format_errors(tmp_path):
    path = tmp_path / "raw"
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", b"3")
        txn.put(b"image-000000001", png(0))
        txn.put(b"label-000000001", b"\xff")
        txn.put(b"image-000000002", png(1))
        txn.put(b"label-000000002", "é".encode())
    env.close()
    rep = validate_lmdb(path)
    assert rep.missing == ["label-000000003", "image-000000003"] and rep.bad_utf8 == [1]
    assert rep.non_nfc == [] and not rep.ok
    nonum = tmp_path / "nonum"
    env = lmdb.open(str(nonum))
    with env.begin(write=True) as txn:
        txn.put(b"image-000000001", png(0))
    env.close()
    rep = validate_lmdb(nonum)
    assert "num-samples" in rep.format_error and not rep.ok
    assert "not found" in validate_lmdb(tmp_path / "missing").format_error


def test_inspect_counts(good):
    rep = inspect_lmdb(good, Charset(list("abc")))
    d = rep.to_dict()
    assert d["num_samples"] == 3 and d["scripts"] == {"LAT": 2, "HIN": 1}
    assert d["width"]["mean"] == 30 and d["formats"] == {"PNG": 3}
    assert d["label_length"]["max"] == 5 and 0 < d["coverage"] < 1
    assert d["unknown_chars"]["h"] == 1


def test_create_from_folder_and_gt(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        (imgs / f"{i}.png").write_bytes(png(i))
    (imgs / "broken.png").write_bytes(b"nope")
    gt = tmp_path / "gt.txt"
    lines = ["\ufeff0.png\thello", "1.png\tक्ष\tमा", "missing.png\tx", "broken.png\ty", "no-tab-line", "2.png\te\u0301"]
    gt.write_text("\n".join(lines) + "\n", "utf-8")
    rep = create_lmdb(imgs, gt, tmp_path / "out", script="LAT")
    assert rep.written == 3 and rep.missing_files == [(3, "missing.png")] and rep.bad_lines[0][0] == 5
    assert rep.invalid_images[0][:2] == (4, "broken.png")
    r = LmdbReader(tmp_path / "out")
    assert r.labels() == ["hello", "क्षमा", "\u00e9"]
    assert r[0].image == png(0) and r[1].image_path == "1.png" and r.meta["script"] == "LAT"


def test_charset_from_lmdbs(good):
    cs, dropped = charset_from_lmdbs([good], mode="grapheme")
    assert cs.tokens == sorted(["a", "b", "c", "h", "e", "l", "o", "क्ष", "मा"])
    cs, dropped = charset_from_lmdbs([good], scripts=["HIN"])
    assert cs.tokens == ["क्ष", "मा"] and dropped["l"] == 2


def test_cli_validate_exit_codes(good, bad):
    res = runner.invoke(app, ["data", "validate", str(good)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "validate", str(bad), "--max-len", "25"])
    assert res.exit_code == 1 and "corrupt image" in res.output
    res = runner.invoke(app, ["data", "validate", str(bad), "--allow", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["num_corrupt"] == 1


def test_cli_inspect_charset_create(good, tmp_path):
    res = runner.invoke(app, ["data", "charset", str(good), "-o", str(tmp_path / "cs.txt")])
    assert res.exit_code == 0, res.output
    assert len(Charset.from_file(tmp_path / "cs.txt")) == 9
    res = runner.invoke(app, ["data", "inspect", str(good), "--charset", str(tmp_path / "cs.txt"), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["coverage"] == 1.0
    res = runner.invoke(app, ["data", "inspect", str(good)])
    assert res.exit_code == 0 and "LMDB stores" in res.output
    res = runner.invoke(app, ["data", "inspect", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "nope" in res.output
    (tmp_path / "i").mkdir()
    (tmp_path / "i" / "a.png").write_bytes(png(9))
    (tmp_path / "gt.txt").write_text("a.png\tword\n", encoding="utf-8")
    res = runner.invoke(app, ["data", "create", str(tmp_path / "i"), str(tmp_path / "gt.txt"), str(tmp_path / "o")])
    assert res.exit_code == 0 and "wrote 1 records" in res.output
    res = runner.invoke(app, ["data", "create", str(tmp_path / "i"), str(tmp_path / "gt.txt"), str(tmp_path / "o")])
    assert res.exit_code == 1 and "already exists" in res.output
    res = runner.invoke(app, ["data", "create", "x", "y", "z", "--script", "ELV"])
    assert res.exit_code != 0 and "ELV" in res.output
