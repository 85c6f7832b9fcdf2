"""A run finished by another process after the study started is skipped, not trained and evaluated again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cllstr.study.runner as runner_mod
from cllstr.study.runner import StudyRunner
from cllstr.study.spec import study_from_dict
from cllstr.study.worker import EVAL_FILE, read_status, write_status

STUDY = {"name": "skip", "data": {"root": "unused", "profile": None}, "base": {"iterations": 2},
         "models": [{"name": "cnn_ctc", "kwargs": {"out_channels": 16}}], "charset": "per-run",
         "mixtures": [{"name": "LAT", "select_data": "lang_L"}, {"name": "KOR", "select_data": "lang_K"},
                      {"name": "ARA", "select_data": "lang_A"}]}


def finish(run_dir: Path, seconds: float) -> None:
    (run_dir / EVAL_FILE).write_text(json.dumps({"languages": {}}), encoding="utf-8")
    write_status(run_dir, "done", seconds=seconds)


class FakeProc:
    """A child process that has already exited successfully after finishing its run."""

    def __init__(self, run_dir: Path) -> None:
        finish(run_dir, 1.0)
        self.returncode = 0

    def poll(self) -> int:
        return 0


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_run_finished_meanwhile_is_skipped(executor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = StudyRunner(study_from_dict(STUDY), tmp_path, executor=executor, data_root=tmp_path, quiet=True)
    first, second, third = runner.runs
    started: list[str] = []

    def fake_execute(run_dir: Path, **_: object) -> dict:
        started.append(Path(run_dir).name)
        finish(Path(run_dir), 1.0)
        if Path(run_dir).name == first.hash:  # meanwhile another process finishes the second run
            finish(runner.run_dir(second), 4455.0)
        return {}

    def fake_start(run, slot: int) -> FakeProc:
        fake_execute(runner.run_dir(run))
        return FakeProc(runner.run_dir(run))

    monkeypatch.setattr(runner_mod, "execute_run", fake_execute)
    monkeypatch.setattr(runner, "_start", fake_start)
    result = runner.run(prepare=False)
    assert started == [first.hash, third.hash]
    assert result.skipped == [second.hash] and sorted(result.done) == sorted([first.hash, third.hash])
    assert read_status(runner.run_dir(second))["seconds"] == 4455.0
