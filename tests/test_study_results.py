"""Portable results: export finished runs without checkpoints, report from them, continue a study elsewhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.study.report import write_report
from cllstr.study.results import export_results, finished_runs, import_results
from cllstr.study.runner import StudyRunner
from cllstr.study.spec import expand, study_from_dict

TINY = {"iterations": 2, "batch_size": 4, "val_interval": 2, "save_interval": 1, "log_interval": 1, "threads": 1}
STUDY = {
    "name": "tiny-cascade", "data": {"scale": 0.001}, "base": TINY,
    "models": [{"name": "cnn_ctc", "kwargs": {"out_channels": 16}, "label": "CNN"}],
    "mixtures": [{"name": "LAT only", "select_data": "lang_L", "row": "Monolingual"},
                 {"name": "KOR only", "select_data": "lang_K", "row": "Monolingual"},
                 {"name": "LAT→KOR", "select_data": "lang_K", "init": "LAT only", "row": "CL"}],
    "eval": {"max_samples": 4, "full_gt": True}, "report": {"baseline": "Monolingual"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("results")
    result = StudyRunner(study_from_dict(STUDY), root / "a", executor="inline", data_root=root / "data",
                         quiet=True).run()
    assert result.ok and len(result.done) == 3
    return root, root / "data"


def test_export_keeps_results_not_checkpoints(study: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = study
    done = export_results(root / "a", tmp_path / "exp")
    assert sorted(done) == sorted(finished_runs(root / "a")) and len(done) == 3
    files = {p.name for p in (tmp_path / "exp").rglob("*") if p.is_file()}
    assert not any(f.endswith(".pt") for f in files) and {"eval.json", "run.json", "status.json"} <= files
    assert "data_root" not in json.loads((tmp_path / "exp" / "study.json").read_text(encoding="utf-8"))
    for run_json in (tmp_path / "exp" / "runs").glob("*/run.json"):  # no paths of this machine
        text = run_json.read_text(encoding="utf-8")
        assert str(root) not in text and str(Path.cwd()) not in text, run_json
    a = write_report(root / "a", tmp_path / "rep_a", plots=False)
    b = write_report(tmp_path / "exp", tmp_path / "rep_b", plots=False)
    assert a["tables"] == b["tables"] and b["runs"]["done"] == 3
    with pytest.raises(FileNotFoundError, match="study.json"):
        export_results(tmp_path / "nothing", tmp_path / "x")
    with pytest.raises(ValueError, match="itself"):
        export_results(root / "a", root / "a")


def test_continue_from_exported_results_trains_nothing(study: tuple[Path, Path], tmp_path: Path) -> None:
    root, data = study
    export_results(root / "a", tmp_path / "exp")
    spec = study_from_dict(STUDY)
    got = import_results([tmp_path / "exp"], tmp_path / "b", expand(spec))
    assert len(got) == 3
    result = StudyRunner(spec, tmp_path / "b", executor="inline", data_root=data, quiet=True).run()
    assert result.done == [] and len(result.skipped) == 3
    assert import_results([tmp_path / "exp"], tmp_path / "b", expand(spec)) == []  # already there


def test_a_pretraining_run_is_imported_only_with_its_dependants(study: tuple[Path, Path], tmp_path: Path) -> None:
    root, data = study
    export_results(root / "a", tmp_path / "exp")
    runs = expand(study_from_dict(STUDY))
    parent = next(r for r in runs if r.mixture == "LAT only")
    child = next(r for r in runs if r.depends_on == parent.hash)
    shutil.rmtree(tmp_path / "exp" / "runs" / child.hash)
    got = import_results([tmp_path / "exp"], tmp_path / "c", runs)
    assert parent.hash not in got and len(got) == 1  # KOR only; LAT only must train again for LAT→KOR
    result = StudyRunner(study_from_dict(STUDY), tmp_path / "c", executor="inline", data_root=data, quiet=True).run()
    assert sorted(result.done) == sorted([parent.hash, child.hash]) and result.ok


def test_cli_export_and_results_from(study: tuple[Path, Path], tmp_path: Path) -> None:
    root, data = study
    cli = CliRunner()
    res = cli.invoke(app, ["study", "export", str(root / "a"), str(tmp_path / "exp")])
    assert res.exit_code == 0 and "3 finished run(s)" in res.output
    (tmp_path / "s.json").write_text(json.dumps(STUDY), encoding="utf-8")
    res = cli.invoke(app, ["study", "run", str(tmp_path / "s.json"), "--out", str(tmp_path / "d"), "--data", str(data),
                           "--results-from", str(tmp_path / "exp"), "--executor", "inline", "--quiet", "--no-report"])
    assert res.exit_code == 0, res.output
    assert "3 finished run(s) taken over" in res.output and "0 run(s) trained, 3 already finished" in res.output
    res = cli.invoke(app, ["study", "run", str(tmp_path / "s.json"), "--out", str(tmp_path / "e"),
                           "--results-from", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "--results-from" in res.output and "missing" in res.output
    res = cli.invoke(app, ["study", "export", str(tmp_path / "missing"), str(tmp_path / "x")])
    assert res.exit_code == 1 and "study.json" in res.output
