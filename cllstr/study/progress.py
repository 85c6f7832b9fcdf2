"""One progress view over a whole study: runs done/total, each active run's iteration and img/s, the study's ETA.

The view reads what runs write anyway (``log.jsonl`` of the training monitor, ``status.json`` of the worker), so it
works the same for runs in this process and in child processes. It is a rich renderable, refreshed by ``Live``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cllstr.train.monitor import format_duration

__all__ = ["last_train_record", "RunState", "StudyProgress"]


def last_train_record(run_dir: str | Path, tail_bytes: int = 8192) -> dict[str, Any] | None:
    """The last ``"kind": "train"`` record of ``run_dir/log.jsonl`` (reads only the file's tail)."""
    path = Path(run_dir) / "log.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - tail_bytes))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a partial first line of the tail, or a line being written
        if row.get("kind") == "train":
            return row
    return None


@dataclass
class RunState:
    """What the view knows about one run."""

    label: str
    run_dir: Path
    iterations: int
    state: str = "pending"
    started: float | None = None
    seconds: float | None = None
    where: str = ""


@dataclass
class StudyProgress:
    """Rich renderable summarising a study.

    Args:
        name: Study name.
        runs: One :class:`RunState` per run, updated by the runner.
        parallel: Runs at a time (for the ETA).
    """

    name: str
    runs: Sequence[RunState]
    parallel: int = 1
    t0: float = field(default_factory=time.monotonic)

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "skipped": 0, "failed": 0, "running": 0, "pending": 0}
        for r in self.runs:
            out[r.state] = out.get(r.state, 0) + 1
        return out

    def seconds_per_iteration(self) -> float | None:
        """Mean wall seconds per iteration over finished (or, failing that, running) runs of this session."""
        finished = [(r.seconds, r.iterations) for r in self.runs if r.state == "done" and r.seconds]
        if finished:
            return sum(s for s, _ in finished) / max(1, sum(n for _, n in finished))
        rates = []
        for r in self.runs:
            rec = last_train_record(r.run_dir) if r.state == "running" and r.started else None
            if rec and rec.get("iteration"):
                rates.append((time.monotonic() - r.started) / rec["iteration"])
        return sum(rates) / len(rates) if rates else None

    def eta(self) -> float | None:
        """Remaining wall seconds: remaining iterations x seconds per iteration / parallel runs."""
        spi = self.seconds_per_iteration()
        if spi is None:
            return None
        left = 0
        for r in self.runs:
            if r.state == "pending":
                left += r.iterations
            elif r.state == "running":
                rec = last_train_record(r.run_dir)
                left += r.iterations - (rec or {}).get("iteration", 0)
        return spi * left / max(1, min(self.parallel, max(1, sum(r.state in ("pending", "running")
                                                                  for r in self.runs))))

    def __rich__(self) -> Group:
        c = self.counts()
        total = len(self.runs)
        finished = c["done"] + c["skipped"]
        eta = self.eta()
        head = Text.assemble(
            (f"study {self.name}: ", "bold"), f"{finished}/{total} runs done",
            f" ({c['skipped']} resumed as finished" + (f", {c['failed']} failed" if c["failed"] else "") + ")",
            f" | elapsed {format_duration(time.monotonic() - self.t0)}",
            f" | ETA {format_duration(eta) if eta is not None else '?'}")
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        for col in ("run", "where", "iteration", "img/s", "run ETA"):
            table.add_column(col)
        for r in self.runs:
            if r.state != "running":
                continue
            rec = last_train_record(r.run_dir) or {}
            it = rec.get("iteration", 0)
            ips = rec.get("img_per_s")
            run_eta = "?"
            if it and r.started:
                run_eta = format_duration((time.monotonic() - r.started) / it * (r.iterations - it))
            table.add_row(r.label, r.where, f"{it}/{r.iterations}", f"{ips:.1f}" if ips is not None else "-", run_eta)
        return Group(head, table) if table.row_count else Group(head)

    def line(self) -> str:
        """Plain one-line summary (for logs and non-terminal output)."""
        c = self.counts()
        eta = self.eta()
        return (f"{self.name}: {c['done'] + c['skipped']}/{len(self.runs)} runs done, {c['running']} running, "
                f"{c['failed']} failed, ETA {format_duration(eta) if eta is not None else '?'}")
