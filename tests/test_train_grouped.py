"""Grouped training end to end: a tiny task-grouped run trains, logs P_TM, resumes exactly and evaluates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from cllstr.checkpoint import load_checkpoint
from cllstr.models import create_model
from cllstr.recognizer import Recognizer
from cllstr.scripts import SCRIPT_ORDER
from cllstr.text.charset import Charset
from cllstr.train.config import GroupingConfig
from cllstr.train.ctc import CTCLoss
from cllstr.train.engine import Trainer, train
from cllstr.train.objective import GroupedObjective, make_objective
from tests.test_train_engine import make_data_root, png_of, tiny_config

GROUPED = {"iterations": 4, "val_interval": 2, "precision": "fp32", "data.select_data": "lang_AL",
           "grouping.heads": 2, "grouping.mode": "gumbel", "grouping.hidden_size": 8, "grouping.epsilon": 0.2}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data"), ("LAT", "ARA"), n_train=16, n_val=4)


def test_one_head_without_extras_is_the_plain_ctc_loss() -> None:
    torch.manual_seed(0)
    model = create_model("grouped", 5, backbone_kwargs={"out_channels": 32}, heads=1, hidden_size=8)
    obj = make_objective(model, GroupingConfig(heads=1, mode="gumbel", epsilon=0.0, weight=0.0, script_weight=0.0))
    assert isinstance(obj, GroupedObjective)
    charset = Charset(["a", "b", "c", "d"])
    enc = obj.encode(charset, ["ab", "cdd", ""], ["LAT", "LAT", "LAT"])
    out = model(torch.randn(3, 3, 32, 100), return_all=True)
    want = CTCLoss()(out.head_logits[0], enc.ctc)
    torch.testing.assert_close(obj.loss(out, enc), want)


def test_grouped_run_trains_logs_resumes_exactly_and_evaluates(data_root: Path, tmp_path: Path) -> None:
    full, summary = train(tiny_config(data_root, tmp_path / "a", **GROUPED), quiet=True)
    assert summary["iterations"] == 4 and summary["grouping"] == full.final_grouping()
    assert summary["grouping"].count("{") in (1, 2) and all(c in summary["grouping"] for c in "ABCHJKL")
    rows = [json.loads(line) for line in (tmp_path / "a" / "grouping.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [2, 4]
    assert len(rows[-1]["p_tm"]) == 7 and all(abs(sum(r) - 1) < 1e-5 for r in rows[-1]["p_tm"])
    assert rows[-1]["grouping"].startswith("{A")
    with open(tmp_path / "a" / "grouping_ptm.csv", encoding="utf-8") as f:  # P_TM table: validations x 7 x heads
        table = list(csv.DictReader(f))
    assert len(table) == 2 * 7 * 2 and {r["script"] for r in table} == set(SCRIPT_ORDER)
    last = {(r["script"], int(r["head"])): float(r["probability"]) for r in table if int(r["iteration"]) == 4}
    assert [[last[(s, h)] for h in range(2)] for s in SCRIPT_ORDER] == rows[-1]["p_tm"]
    assert (tmp_path / "a" / "grouping_ptm.png").stat().st_size > 1000
    sid = rows[-1]["script_id"]
    assert len(sid["confusion"]) == 7 and sum(map(sum, sid["confusion"])) == 8  # 4 ARA + 4 LAT validation words
    assert sum(sid["confusion"][0]) == 4 and sum(sid["confusion"][6]) == 4
    val = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["script_acc"] for r in val if r["kind"] == "val"][-1] == sid["accuracy"]
    ckpt = load_checkpoint(tmp_path / "a" / "last.pt")
    assert ckpt["model_name"] == "grouped" and ckpt["model_kwargs"]["heads"] == 2
    assert "task_logits" in ckpt["model"] and "gumbel_rng" in ckpt["objective"]

    cfg_b = tiny_config(data_root, tmp_path / "b", **GROUPED)
    from cllstr.train.data import build_charset, build_eval_loaders, build_train_loader

    charset = build_charset(cfg_b.data)
    first = Trainer(cfg_b, charset, build_train_loader(cfg_b.data, charset, 8, cfg_b.seed),
                    build_eval_loaders(cfg_b.data, "validation", 8), quiet=True)
    first.fit(stop_at=2)
    resumed, _ = train(cfg_b, resume=True, quiet=True)
    want = full.model.state_dict()
    got = resumed.model.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert torch.equal(resumed.criterion.generator.get_state(), full.criterion.generator.get_state())

    rec = Recognizer.from_checkpoint(tmp_path / "a" / "last.pt", device="cpu", precision="fp32")
    x = torch.rand(3, 3, 32, 100) * 2 - 1
    preds = rec.predict(x)
    assert len(preds) == 3 and all(isinstance(p.text, str) for p in preds)
    with torch.no_grad():
        script_probs = rec.model(x, return_all=True).script_logits.softmax(-1)
    assert [p.script for p in preds] == [SCRIPT_ORDER[i] for i in script_probs.argmax(-1).tolist()]
    assert [p.script_prob for p in preds] == pytest.approx(script_probs.max(-1).values.tolist())


def test_fixed_grouping_run_builds_the_groups(data_root: Path, tmp_path: Path) -> None:
    over = {**GROUPED, "iterations": 1, "val_interval": 0, "grouping.mode": "fixed:AK-BCHJL"}
    trainer, _ = train(tiny_config(data_root, tmp_path / "f", **over), quiet=True)
    assert trainer.model.fixed and trainer.model_kwargs["groups"] == [[0, 5], [1, 2, 3, 4, 6]]
    with pytest.raises(ValueError, match="--heads is 3"):
        train(tiny_config(data_root, tmp_path / "g", **{**over, "grouping.heads": 3}), quiet=True)


@pytest.mark.parametrize(("extra", "word"), [
    (["--heads", "0"], "--heads"),
    (["--heads", "2", "--grouping", "fixed:AK-BCH"], "misses script(s) JL"),
    (["--heads", "2", "--grouping", "fixed:AK-BCHJLQ"], "unknown script letter 'Q'"),
    (["--heads", "3", "--grouping", "none"], "--grouping"),
    (["--heads", "2", "--grouping", "gumbel", "--epsilon", "-0.1"], "--epsilon"),
])
def test_cli_rejects_bad_grouping_options_with_one_line(data_root: Path, tmp_path: Path, extra: list[str],
                                                        word: str) -> None:
    from typer.testing import CliRunner

    from cllstr.cli.main import app

    res = CliRunner().invoke(app, ["train", "-m", "cnn_ctc", "-d", str(data_root), "-s", "lang_AL", "-n", "1",
                                   "-o", str(tmp_path / "run"), *extra])
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], res.stderr
    assert not (tmp_path / "run").exists()


def test_cli_trains_a_grouped_model(data_root: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cllstr.cli.main import app

    res = CliRunner().invoke(app, ["train", "-m", "cnn_ctc", "-d", str(data_root), "-s", "lang_AL", "-b", "8",
                                   "-n", "2", "--val-interval", "2", "-o", str(tmp_path / "run"), "--threads", "1",
                                   "--quiet", "--heads", "2", "--tau", "0.5", "--epsilon",
                                   "0.1", "--mu", "1", "--grouping-weight", "0.5",
                                   "--set", "model_kwargs={out_channels: 32}", "--set", "grouping.hidden_size=8"])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["model_name"] == "grouped" and not ckpt["model_kwargs"].get("groups")
    assert ckpt["config"]["grouping"] == {"heads": 2, "mode": "auto", "tau": 0.5, "epsilon": 0.1, "mu": 1.0,
                                          "weight": 0.5, "script_weight": 1.0, "hidden_size": 8}
    assert (tmp_path / "run" / "grouping.jsonl").is_file()
    (tmp_path / "cat.png").write_bytes(png_of("cat", 0))
    res = CliRunner().invoke(app, ["predict", "-m", str(tmp_path / "run" / "last.pt"), str(tmp_path / "cat.png"),
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert row["script"] in SCRIPT_ORDER and 0 < row["script_prob"] <= 1
    res = CliRunner().invoke(app, ["predict", "-m", str(tmp_path / "run" / "last.pt"), str(tmp_path / "cat.png")])
    cols = res.stdout.rstrip("\n").split("\t")
    assert res.exit_code == 0 and len(cols) == 5 and cols[3] == row["script"]
    res = CliRunner().invoke(app, ["eval", str(tmp_path / "run" / "last.pt"), "-d", str(data_root), "--json",
                                   str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    sid = json.loads((tmp_path / "eval.json").read_text())["script_id"]
    assert sum(map(sum, sid["confusion"])) == 8 and sid["scripts"][0] == "ARA"
    assert "script identification:" in res.stdout and "| true \\ predicted | ARA | " in res.stdout


def test_script_id_report_from_a_confusion_matrix() -> None:
    from cllstr.scoring.script_id import ScriptIdReport

    confusion = [[0] * 7 for _ in range(7)]
    confusion[0][0], confusion[0][6], confusion[6][6] = 3, 1, 4  # 3 of 4 ARA right, 4 of 4 LAT right
    rep = ScriptIdReport(confusion)
    assert rep.total == 8 and rep.accuracy == pytest.approx(7 / 8)
    assert rep.per_script() == {"ARA": 0.75, "LAT": 1.0}
    assert ScriptIdReport([[0] * 7 for _ in range(7)]).accuracy == 0.0
    md = rep.to_markdown().splitlines()
    assert md[0] == "script identification: 87.50% of 8 words (ARA 75.0 LAT 100.0)"
    assert md[2:] == ["| true \\ predicted | ARA | LAT |", "| --- | ---: | ---: |", "| ARA | 3 | 1 |",
                      "| LAT | 0 | 4 |"]


def test_grouping_log_reader_ignores_a_torn_last_line_and_names_bad_ones(tmp_path: Path) -> None:
    from cllstr.train.grouping_plot import read_grouping_log, write_ptm

    good = json.dumps({"iteration": 2, "p_tm": [[1.0, 0.0]] * 7, "grouping": "{ABCHJKL}"})
    (tmp_path / "grouping.jsonl").write_text(good + "\n" + good[:20], encoding="utf-8")
    assert len(read_grouping_log(tmp_path / "grouping.jsonl")) == 1
    assert [p.name for p in write_ptm(tmp_path, plot=False)] == ["grouping_ptm.csv"]
    (tmp_path / "grouping.jsonl").write_text(json.dumps({"iteration": 2, "p_tm": [[1.0]]}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="grouping.jsonl:1: p_tm"):
        read_grouping_log(tmp_path / "grouping.jsonl")
    assert write_ptm(tmp_path / "nothing") == []
