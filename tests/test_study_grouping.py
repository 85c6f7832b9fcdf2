"""The ``task-grouping`` preset (rows per m and the ε ablation) and the report's learned-groupings table."""

from __future__ import annotations

import json
from pathlib import Path

from cllstr.study.presets import get_preset
from cllstr.study.report import write_report
from cllstr.study.runner import StudyRunner
from cllstr.study.spec import expand
from cllstr.study.worker import EVAL_FILE, write_status


def test_task_grouping_rows() -> None:
    runs = expand(get_preset("task-grouping", scale=0.01, seeds=2))
    assert len(runs) == 10 * 2  # m = 1..7, the two ε rows, m=7 fixed
    by = {r.mixture: r.config.grouping for r in runs if r.seed == 21}
    assert by["m=1"].heads == 1 and by["m=4"].heads == 4 and by["m=4"].mode == "auto"
    assert (by["m=7"].heads, by["m=7"].mode) == (7, "auto") and by["m=5"].heads == 5
    assert (by["m=3, ε=0"].heads, by["m=3, ε=0"].epsilon) == (3, 0.0) and by["m=3"].epsilon == 0.2
    assert by["m=7 fixed"].mode == "fixed:one-per-script"
    assert {r.baseline for r in runs} == {"m=1"}
    assert len({r.hash for r in runs}) == len(runs)


def test_report_counts_learned_groupings(tmp_path: Path) -> None:
    runner = StudyRunner(get_preset("task-grouping", scale=0.01, seeds=3), tmp_path, quiet=True)
    runner.layout()
    final = {21: "{A,K} {B,C,H,J,L}", 22: "{A,K} {B,C,H,J,L}", 23: "{A} {B,C,H,J,K,L}"}
    for run in runner.runs:
        langs = {lang: {"accuracy": 0.5, "samples": 10} for lang in run.languages}
        (runner.run_dir(run) / EVAL_FILE).write_text(json.dumps({"languages": langs}), encoding="utf-8")
        if run.mixture == "m=2":
            rows = [{"iteration": 1, "grouping": "{A,B,C,H,J,K,L}"}, {"iteration": 2, "grouping": final[run.seed]}]
            (runner.run_dir(run) / "grouping.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n",
                                                                encoding="utf-8")
        write_status(runner.run_dir(run), "done", seconds=1.0)
    summary = write_report(tmp_path, plots=False)
    assert summary["groupings"] == {"SVTR-T | m=2": {"{A,K} {B,C,H,J,L}": 2, "{A} {B,C,H,J,K,L}": 1}}
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "| SVTR-T | m=2 | `{A,K} {B,C,H,J,L}` | 2 |" in md and "## Learned groupings" in md
