"""Portable study results: keep finished runs' records (no checkpoints) and continue a study from them elsewhere.

``export_results(study_dir, dest)`` copies ``study.json`` and, for every finished run, the small files that
describe it (:data:`RESULT_FILES`: ``run.json``, ``status.json``, ``eval.json``, ``eval.md``, the training and
validation logs) into ``dest/runs/<hash>/``. ``dest`` is itself a study folder that ``cllstr study report`` reads,
small enough to commit (``examples/results/<study>/``).

``import_results(sources, study_dir, runs)`` copies the records of runs that are finished in a source folder (and
not in ``study_dir``) into ``study_dir``, so that ``cllstr study run --results-from DIR`` skips them: a run is
identified by its hash, which does not depend on the machine or the folders. Checkpoints do not travel, so a
pre-training run of a cascade is imported only when every run that starts from it is finished in the sources too;
otherwise it is trained again, to give its dependants their initial checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from cllstr.atomic import atomic_write_json
from cllstr.study.spec import RunSpec
from cllstr.study.worker import EVAL_FILE, RUN_FILE, STATUS_FILE, is_done

__all__ = ["RESULT_FILES", "export_results", "import_results", "finished_runs"]

#: Files of a finished run folder that make up its result (everything but checkpoints and console output).
RESULT_FILES = (RUN_FILE, STATUS_FILE, EVAL_FILE, "eval.md", "log.jsonl", "train.csv", "val.csv", "grouping.jsonl")


def finished_runs(study_dir: str | Path) -> dict[str, Path]:
    """Hash to folder of every finished run (``done`` with ``eval.json``) under ``study_dir/runs``."""
    runs = Path(study_dir) / "runs"
    if not runs.is_dir():
        return {}
    return {d.name: d for d in sorted(runs.iterdir()) if d.is_dir() and is_done(d)}


def _portable_record(record: dict) -> dict:
    """``run.json`` without the paths of the machine that ran it (the runner writes its own when it lays out runs)."""
    cfg = record.get("config", {})
    cfg["out_dir"] = None
    data = cfg.get("data", {})
    data["root"] = None
    for section, key in ((data, "charset"), (cfg, "init_from")):
        if section.get(key):
            section[key] = Path(section[key]).name
    return record


def _copy_run(src: Path, dst: Path) -> list[str]:
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in RESULT_FILES:
        if name == STATUS_FILE or not (src / name).is_file():
            continue
        if name == RUN_FILE:
            atomic_write_json(dst / name, _portable_record(json.loads((src / name).read_text(encoding="utf-8"))))
        else:
            shutil.copyfile(src / name, dst / name)
        copied.append(name)
    # status last: a folder only reads as done once its evaluation is in place
    status = json.loads((src / STATUS_FILE).read_text(encoding="utf-8"))
    atomic_write_json(dst / STATUS_FILE, status)
    return [*copied, STATUS_FILE]


def export_results(study_dir: str | Path, dest: str | Path) -> list[str]:
    """Copy ``study.json`` and the result files of every finished run of ``study_dir`` into ``dest``.

    Returns:
        Hashes of the exported runs.

    Raises:
        FileNotFoundError: ``study_dir`` has no ``study.json``.
        ValueError: ``dest`` is ``study_dir`` itself.
    """
    study_dir, dest = Path(study_dir), Path(dest)
    if not (study_dir / "study.json").is_file():
        raise FileNotFoundError(f"{study_dir} is not a study folder (no study.json)")
    if dest.resolve() == study_dir.resolve():
        raise ValueError(f"export destination {dest} is the study folder itself")
    dest.mkdir(parents=True, exist_ok=True)
    meta = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    meta.pop("data_root", None)  # a path of the machine that ran it
    atomic_write_json(dest / "study.json", meta)
    done = finished_runs(study_dir)
    for h, d in done.items():
        _copy_run(d, dest / "runs" / h)
    return list(done)


def import_results(sources: Sequence[str | Path], study_dir: str | Path, runs: Sequence[RunSpec]) -> list[str]:
    """Copy the records of runs of ``runs`` finished in one of ``sources`` into ``study_dir`` (see module doc).

    Returns:
        Hashes of the imported runs (already-finished runs of ``study_dir`` are left alone).

    Raises:
        FileNotFoundError: a source folder does not exist.
    """
    found: dict[str, Path] = {}
    for src in sources:
        src = Path(src)
        if not src.is_dir():
            raise FileNotFoundError(f"--results-from {src}: no such folder")
        for h, d in finished_runs(src).items():
            found.setdefault(h, d)
    study_dir = Path(study_dir)
    have = set(finished_runs(study_dir))
    children: dict[str, list[str]] = {}
    for r in runs:
        if r.depends_on:
            children.setdefault(r.depends_on, []).append(r.hash)
    imported = []
    for r in runs:
        if r.hash in have or r.hash not in found:
            continue
        if any(c not in have and c not in found for c in children.get(r.hash, [])):
            continue  # its checkpoint is still needed by an unfinished cascade run
        _copy_run(found[r.hash], study_dir / "runs" / r.hash)
        imported.append(r.hash)
    return imported
