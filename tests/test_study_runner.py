"""Study runner end to end: a tiny ``cll-joint`` on tiny synthetic data, resume by hash, the CLI, child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.scripts import SCRIPT_ORDER
from cllstr.study.presets import get_preset
from cllstr.study.report import write_report
from cllstr.study.runner import StudyRunner, required_datasets
from cllstr.study.spec import ModelEntry, StudySpec, deep_merge
from cllstr.study.worker import EVAL_FILE, read_status, write_status

TINY = {"iterations": 2, "batch_size": 4, "val_interval": 2, "save_interval": 1, "log_interval": 1, "threads": 1}


def tiny_joint() -> StudySpec:
    """``cll-joint`` with a small CNN, 2 iterations and 4 evaluation samples per language."""
    spec = get_preset("cll-joint", scale=0.001, seeds=1)
    spec.models = [ModelEntry("cnn_ctc", {"out_channels": 16}, "CNN")]
    spec.base = deep_merge(spec.base, TINY)
    spec.eval.max_samples = 4
    return spec


@pytest.fixture(scope="module")
def joint_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("study")
    data = root / "data"
    result = StudyRunner(tiny_joint(), root / "joint", executor="inline", data_root=data, quiet=True).run()
    return root, data, result


def test_required_datasets_cover_training_validation_evaluation() -> None:
    need = required_datasets(StudyRunner(tiny_joint(), "unused", quiet=True).runs, "evaluation")
    assert {f"{s}/{lang}" for s in ("training", "validation", "evaluation") for lang in SCRIPT_ORDER} == set(need)
    assert not any("SynthMLT" in n for n in need)


def test_tiny_cll_joint_end_to_end(joint_study: tuple[Path, Path, object]) -> None:
    root, data, result = joint_study
    assert result.ok and len(result.done) == 9 and not result.skipped
    assert (data / "training" / "KOR").is_dir() and not (data / "training" / "SynthMLT_KOR").exists()
    for h in result.done:
        run_dir = root / "joint" / "runs" / h
        for name in ("run.json", "status.json", "last.pt", "best.pt", "log.jsonl", EVAL_FILE, "charset.txt"):
            assert (run_dir / name).is_file(), f"{run_dir}/{name}"
        assert read_status(run_dir)["iterations"] == 2
    charsets = {(root / "joint" / "runs" / h / "charset.txt").read_text(encoding="utf-8") for h in result.done}
    assert len(charsets) == 1  # one shared charset, like the reference's fixed MLT19 charset
    summary = write_report(root / "joint")
    cells = summary["tables"]["CNN"]["accuracy"]["cells"]
    assert summary["rows"] == ["Monolingual", "All", "All but LAT"]
    assert set(cells["Monolingual"]) == set(cells["All"]) == {*SCRIPT_ORDER, "Avg", "Avg low-resource"}
    assert set(cells["All but LAT"]) == {*SCRIPT_ORDER, "Avg", "Avg low-resource"} - {"LAT"}
    assert all(0.0 <= c["mean"] <= 1.0 for row in cells.values() for c in row.values())
    assert (root / "joint" / "report" / "plots" / "gain_heatmap_CNN.png").is_file()


def test_rerun_skips_finished_and_resumes_interrupted(joint_study: tuple[Path, Path, object]) -> None:
    root, data, first = joint_study
    again = StudyRunner(tiny_joint(), root / "joint", executor="inline", data_root=data, quiet=True).run()
    assert sorted(again.skipped) == sorted(first.done) and not again.done
    victim = root / "joint" / "runs" / first.done[3]
    (victim / EVAL_FILE).unlink()
    write_status(victim, "running")
    third = StudyRunner(tiny_joint(), root / "joint", executor="inline", data_root=data, quiet=True).run()
    assert third.done == [victim.name] and len(third.skipped) == 8
    assert read_status(victim)["resumed"] is True and (victim / EVAL_FILE).is_file()


def test_cli_report_and_bad_input(joint_study: tuple[Path, Path, object], tmp_path: Path) -> None:
    root, _, _ = joint_study
    cli = CliRunner()
    res = cli.invoke(app, ["study", "report", str(root / "joint"), "--out", str(tmp_path / "rep"), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "9/9 runs done" in res.output and (tmp_path / "rep" / "report.md").is_file()
    res = cli.invoke(app, ["study", "report", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "study.json" in res.output
    res = cli.invoke(app, ["study", "run", "--preset", "nope", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "cll-joint" in res.output
    res = cli.invoke(app, ["study", "run", "--preset", "cll-joint", "--out", str(tmp_path / "x"), "--set", "bogus=1",
                           "--dry-run"])
    assert res.exit_code == 1 and "bogus" in res.output
    res = cli.invoke(app, ["study", "run", "--preset", "cll-joint", "--out", str(tmp_path / "x"), "--seeds", "2",
                           "--dry-run"])
    assert res.exit_code == 0 and res.output.strip().endswith("18 runs")
    res = cli.invoke(app, ["study", "run", "--preset", "cll-joint", "--out", str(tmp_path / "x"), "--model", "crnn",
                           "--set", "optim.lr=5e-4", "--dry-run"])
    assert res.exit_code == 0 and res.output.count(" crnn | ") == 9


def test_cli_study_file_in_child_processes(joint_study: tuple[Path, Path, object], tmp_path: Path) -> None:
    _, data, _ = joint_study
    study = {"name": "two", "data": {"scale": 0.001}, "models": [{"name": "cnn_ctc", "kwargs": {"out_channels": 16}}],
             "base": {**TINY, "val_interval": 0}, "eval": {"max_samples": 4, "checkpoint": "last"},
             "mixtures": [{"name": "LAT only", "select_data": "lang_L", "row": "Mono"},
                          {"name": "HIN only", "select_data": "lang_H", "row": "Mono"}]}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    out = tmp_path / "two"
    res = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(out), "--data", str(data), "--parallel", "2",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 run(s) trained" in res.output
    summary = json.loads((out / "report" / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["tables"]["cnn_ctc"]["accuracy"]["cells"]["Mono"]) == {"HIN", "LAT", "Avg"}
    for run_dir in (out / "runs").iterdir():
        assert read_status(run_dir)["threads"] >= 1 and (run_dir / "stdout.log").is_file()
