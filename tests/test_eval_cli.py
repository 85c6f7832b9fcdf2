"""CLI end to end on a tiny LMDB root: ``train`` → ``eval`` (JSON + Markdown) → ``predict`` and the Recognizer API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.recognizer import Prediction, Recognizer
from tests.test_train_engine import make_data_root, png_of

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = make_data_root(tmp_path_factory.mktemp("data"), ("LAT", "ARA"), n_train=16, n_val=6)
    out = tmp_path_factory.mktemp("run")
    res = runner.invoke(app, ["train", "--model", "cnn_ctc", "-d", str(root), "-s", "lang_AL", "-b", "8", "-n", "4",
                              "--val-interval", "2", "-o", str(out), "--threads", "1", "--cap", "LAT=8,ARA=8",
                              "--set", "model_kwargs={out_channels: 32}", "--quiet"])
    assert res.exit_code == 0, res.output
    return root, out


def test_train_cli_summary(trained: tuple[Path, Path]) -> None:
    _, out = trained
    assert (out / "best.pt").is_file() and (out / "charset.txt").is_file()
    val = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if '"val"' in x]
    assert {"ARA_acc", "LAT_acc"} <= set(val[-1])


def test_train_cli_rejects_bad_option(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "--set", "optim.nope=1", "-o", str(tmp_path)])
    assert res.exit_code != 0 and "optim.nope" in res.output
    res = runner.invoke(app, ["train", "--cap", "LAT", "-o", str(tmp_path)])
    assert res.exit_code != 0 and "NAME=COUNT" in res.output


def test_eval_cli_writes_json_and_markdown(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, out = trained
    res = runner.invoke(app, ["eval", str(out / "best.pt"), "-d", str(root), "--json", str(tmp_path / "r.json"),
                              "--md", str(tmp_path / "r.md"), "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert list(data["languages"]) == ["ARA", "LAT"]
    assert data["languages"]["LAT"]["samples"] == 6
    assert 0.0 <= data["macro"]["one_minus_ned"] <= 1.0
    assert "| ARA | 6 |" in (tmp_path / "r.md").read_text() and "Weighted" in res.output


def test_eval_cli_missing_language(trained: tuple[Path, Path]) -> None:
    root, out = trained
    res = runner.invoke(app, ["eval", str(out / "best.pt"), "-d", str(root), "--langs", "KOR"])
    assert res.exit_code != 0 and "KOR" in res.output


def test_predict_cli_and_api_agree(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = trained
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, word in enumerate(["cat", "سلام"]):
        (folder / f"{i}.png").write_bytes(png_of(word, i))
    res = runner.invoke(app, ["predict", "-m", str(out / "best.pt"), "--folder", str(folder), "--format", "json",
                              "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [Path(r["path"]).name for r in rows] == ["0.png", "1.png"]
    rec = Recognizer.from_checkpoint(out / "best.pt", device="cpu", precision="fp32")
    preds = rec.predict(sorted(folder.iterdir()))
    assert [p.text for p in preds] == [r["text"] for r in rows]
    # a single-head model identifies the script from the letters it read (no probability)
    from cllstr.scripts import guess_script

    assert [p.script for p in preds] == [guess_script(p.text) for p in preds]
    assert [r.get("script") for r in rows] == [p.script for p in preds]
    assert all(p.script_prob is None and "script_prob" not in r for p, r in zip(preds, rows, strict=True))
    assert all(0.0 <= p.confidence <= 1.0 for p in preds)
    pil = rec.predict(Image.open(folder / "0.png"))
    assert pil == rec.predict(folder / "0.png")  # same batch composition, same numbers
    tensor = rec.predict(rec.preprocess([folder / "0.png"]))
    assert isinstance(tensor[0], Prediction) and tensor[0].text == preds[0].text
    tsv = runner.invoke(app, ["predict", "-m", str(out / "best.pt"), str(folder / "0.png"), "--precision", "fp32"])
    assert tsv.output.split("\t")[1] == preds[0].text


def test_decoding_outputs_arabic_in_logical_order() -> None:
    from cllstr.decoding.ctc import decode_logits
    from cllstr.text.charset import Charset

    cs = Charset(list("abسلام"))
    # logits spelling the visual order "م ا ل س" (as CTC learns right-to-left text) with blanks between
    seq = [cs.index(c) for c in "مالس"]
    logits = torch.full((1, 8, cs.num_classes), -10.0)
    for t, k in enumerate(seq):
        logits[0, 2 * t, k] = 10.0
        logits[0, 2 * t + 1, 0] = 10.0
    texts, confs = decode_logits(logits, cs)
    assert texts == ["سلام"] and confs[0] == pytest.approx(1.0, abs=1e-3)
    logits[0, :, :] = -10.0
    logits[0, 0, cs.index("a")] = logits[0, 1, cs.index("b")] = 10.0
    logits[0, 2:, 0] = 10.0
    assert decode_logits(logits, cs)[0] == ["ab"]


def test_recognizer_bad_inputs(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = trained
    rec = Recognizer.from_checkpoint(out / "best.pt", device="cpu")
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        rec.predict([tmp_path / "nothere.png"])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        rec.predict([tmp_path / "bad.png"])


def test_predict_cli_beam_top_k_and_lexicon(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """--top-k lists alternatives with log-probabilities (best first, the first is the text); with a lexicon of one
    word and words only (-inf penalty) every prediction is that word."""
    _, out = trained
    img = tmp_path / "w.png"
    img.write_bytes(png_of("cat", 3))
    args = ["predict", "-m", str(out / "best.pt"), str(img), "--precision", "fp32", "--format", "json"]
    res = runner.invoke(app, [*args, "--top-k", "3", "--beam-width", "5"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)[0]
    alts = row["alternatives"]
    assert 1 <= len(alts) <= 3 and alts[0]["text"] == row["text"]
    assert [a["log_prob"] for a in alts] == sorted((a["log_prob"] for a in alts), reverse=True)
    words = tmp_path / "words.txt"
    words.write_text("cat\n", encoding="utf-8")
    res = runner.invoke(app, [*args, "--lexicon", str(words), "--oov-penalty", "-inf"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["text"] == "cat"
    res = runner.invoke(app, [*args, "--top-k", "6", "--beam-width", "5"])
    assert res.exit_code == 2 and "--top-k" in res.stderr
    res = runner.invoke(app, [*args, "--lexicon", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2 and "missing.txt" in res.stderr


def test_eval_cli_greedy_and_beam_side_by_side(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, out = trained
    res = runner.invoke(app, ["eval", str(out / "best.pt"), "-d", str(root), "--precision", "fp32", "--decoder",
                              "both", "--beam-width", "4", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "Acc greedy | Acc beam" in res.stdout and "| LAT |" in res.stdout
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["decoder"] == "beam" and set(data["greedy"]["languages"]) == {"ARA", "LAT"}


def test_eval_cli_gallery_of_worst_errors(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, out = trained
    res = runner.invoke(app, ["eval", str(out / "best.pt"), "-d", str(root), "--precision", "fp32", "--gallery",
                              str(tmp_path / "g"), "--gallery-size", "3", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    for lang in ("ARA", "LAT"):
        sheet = Image.open(tmp_path / "g" / f"{lang}.png")
        wrong = round((1 - data["languages"][lang]["accuracy"]) * data["languages"][lang]["samples"])
        rows = min(3, wrong)
        assert sheet.height >= 34 + rows * 58, (lang, sheet.size, rows)
    assert "ARA.png" in (tmp_path / "g" / "index.md").read_text(encoding="utf-8")


def test_gallery_keeps_the_worst_errors_first() -> None:
    from cllstr.eval.gallery import GalleryCollector

    col = GalleryCollector(first_k=2, worst_k=2)
    images = torch.zeros(4, 3, 32, 100)
    col("LAT", images, ["abc", "abc", "abc", "abc"], ["abc", "abd", "xyz", "xbc"], [0.9, 0.8, 0.2, 0.99])
    assert [e.pred for e in col.first["LAT"]] == ["abc", "abd"]
    assert [e.pred for e in col.worst("LAT")] == ["xyz", "xbc"]  # all wrong first, then confident 1-edit errors
    assert col.first["LAT"][0].correct and not col.first["LAT"][1].correct
