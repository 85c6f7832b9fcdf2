"""Run a study: prepare its data, lay out one folder per run, execute runs (in order or P at a time), resume.

Layout of a study folder ``DIR``::

    DIR/study.json                    the expanded spec (what ``cllstr study report`` reads)
    DIR/data/                         the synthetic data root, when the study generates it
    DIR/runs/<hash>/                  one run: run.json, status.json, last.pt, best.pt, log.jsonl, eval.json, ...
    DIR/runs/<hash>/stdout.log        the run's console output (process executor)

A run whose folder says ``done`` (and has ``eval.json``) is skipped; an interrupted one continues from its
``last.pt``. Runs go to child processes (``python -m cllstr.study.worker``), one GPU each when several GPUs exist
(``CUDA_VISIBLE_DEVICES``), CPU threads shared out otherwise; the ``inline`` executor runs them in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from cllstr.atomic import atomic_write_json
from cllstr.data.mixture.select_data import required_folders
from cllstr.study.progress import RunState, StudyProgress
from cllstr.study.spec import RunSpec, StudySpec, expand
from cllstr.study.worker import RUN_FILE, execute_run, is_done, read_status, write_status

__all__ = ["StudyResult", "required_datasets", "prepare_data", "StudyRunner", "EXECUTORS"]

EXECUTORS = ("process", "inline", "ray")


@dataclass
class StudyResult:
    """Outcome of :meth:`StudyRunner.run`: run hashes per state and the wall time."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def required_datasets(runs: Sequence[RunSpec], eval_split: str) -> list[str]:
    """Relative LMDB folders the runs read: their training sources, validation and evaluation languages."""
    need: list[str] = []
    for run in runs:
        data = run.config.data
        rels = required_folders(data.select_data, run.languages, eval_split, data.val_select,
                                validation=bool(run.config.val_interval))
        need += [r for r in rels if r not in need]
    return need


def prepare_data(spec: StudySpec, root: Path, runs: Sequence[RunSpec], console: Console | None = None,
                 progress: bool = True) -> list[str]:
    """Make sure every dataset the runs need exists under ``root``; synthesise missing ones from the profile.

    Returns:
        The relative folders that were (re)generated or continued.

    Raises:
        FileNotFoundError: real data (no profile) lacks a folder, or the profile does not produce it.
    """
    need = required_datasets(runs, spec.eval.split)
    if not spec.data.profile:
        missing = [r for r in need if not (root / r).is_dir()]
        if missing:
            raise FileNotFoundError(f"data root {root} lacks {len(missing)} folder(s) the study needs: "
                                    f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        return []
    from cllstr.synth.generate import generate
    from cllstr.synth.profiles import get_profile

    specs = {s.relpath: s for s in get_profile(spec.data.profile)(scale=spec.data.scale, seed=spec.data.seed)}
    unknown = [r for r in need if r not in specs]
    if unknown:
        raise FileNotFoundError(f"synthetic profile {spec.data.profile!r} does not produce {unknown}")
    results = generate([specs[r] for r in need], root, progress=progress, console=console)
    return [r for r, res in zip(need, results, strict=True) if res.status != "complete"]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class StudyRunner:
    """Executes the runs of ``spec`` under ``out_dir``.

    Args:
        spec: The study.
        out_dir: Study folder.
        parallel: Runs at a time (process executor).
        executor: ``process`` (child processes), ``inline`` (this process, one at a time) or ``ray`` (one Ray task
            per run, :mod:`cllstr.study.ray_executor`).
        data_root: Data root; default ``spec.data.root`` or ``out_dir/data``.
        quiet: No progress view.
        console: Rich console for the progress view.
        device: Device for every run (``auto``: one GPU per run when GPUs exist, else CPU).
        ray: Cluster address and per-run resources of the ``ray`` executor.
    """

    def __init__(self, spec: StudySpec, out_dir: str | Path, parallel: int = 1, executor: str = "process",
                 data_root: str | Path | None = None, quiet: bool = False, console: Console | None = None,
                 device: str = "auto", ray: Any = None) -> None:
        if parallel < 1:
            raise ValueError(f"--parallel must be >= 1, got {parallel}")
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        self.spec = spec
        self.out = Path(out_dir)
        self.parallel = 1 if executor == "inline" else parallel
        self.executor = executor
        self.data_root = Path(data_root or spec.data.root or self.out / "data").resolve()
        self.quiet = quiet
        self.console = console or Console(stderr=True, quiet=quiet)
        self.device = device
        self.ray = ray
        self.runs = expand(spec)

    def run_dir(self, run: RunSpec) -> Path:
        return self.out / "runs" / run.hash

    def layout(self) -> None:
        """Write ``study.json`` and each run's ``run.json`` (absolute data root, resolved ``init_from``)."""
        self.out.mkdir(parents=True, exist_ok=True)
        study = {"spec": self.spec.to_dict(), "data_root": str(self.data_root),
                 "runs": [{k: v for k, v in r.record().items() if k != "config"} for r in self.runs]}
        atomic_write_json(self.out / "study.json", study)
        for run in self.runs:
            d = self.run_dir(run)
            d.mkdir(parents=True, exist_ok=True)
            run.config.data.root = str(self.data_root)
            run.config.out_dir = str(d.resolve())
            if run.depends_on:
                parent = self.out / "runs" / run.depends_on
                run.config.init_from = str((parent / f"{self.spec.eval.checkpoint}.pt").resolve())
            record = {**run.record(), "eval": self.spec.to_dict()["eval"], "study": self.spec.name}
            atomic_write_json(d / RUN_FILE, record)

    def _placement(self, slot: int) -> tuple[dict[str, str], str | None, int | None, str]:
        """Environment, device, threads and a label for the run in ``slot``."""
        import torch

        env = dict(os.environ)
        n_gpu = torch.cuda.device_count() if self.device in ("auto", "cuda") else 0
        if n_gpu and self.executor == "process":
            gpu = slot % n_gpu
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
            return env, "cuda", None, f"GPU {gpu}"
        if self.device.startswith("cuda"):
            return env, self.device, None, self.device
        threads = max(1, (os.cpu_count() or 1) // self.parallel)
        return env, "cpu", threads, f"CPU x{threads}"

    def _start(self, run: RunSpec, slot: int) -> subprocess.Popen:
        env, device, threads, _ = self._placement(slot)
        cmd = [sys.executable, "-m", "cllstr.study.worker", str(self.run_dir(run))]
        if device:
            cmd += ["--device", device]
        if threads:
            cmd += ["--threads", str(threads)]
        log = open(self.run_dir(run) / "stdout.log", "ab")
        try:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()

    def shared_charset(self) -> Path:
        """Build (once) the study's charset over every training set its runs use; set it on every run."""
        modes = {r.config.data.charset_mode for r in self.runs}
        if len(modes) > 1:
            raise ValueError(f"study {self.spec.name}: a shared charset needs one charset_mode, got {sorted(modes)}")
        sources = sorted({rel for rel in required_datasets(self.runs, self.spec.eval.split)
                          if rel.startswith("training/")})
        key = hashlib.sha256(json.dumps([sources, *modes]).encode()).hexdigest()[:12]
        path = self.out / "charsets" / f"{key}.txt"
        if not path.is_file():
            from cllstr.data.store.charsets import charset_from_lmdbs

            charset, _ = charset_from_lmdbs([self.data_root / s for s in sources], mode=modes.pop())
            charset.save(path)  # atomic
        for run in self.runs:
            if run.config.data.charset is None:
                run.config.data.charset = str(path.resolve())
        return path

    def run(self, prepare: bool = True) -> StudyResult:
        """Prepare the data (and the shared charset), then execute every unfinished run; returns what happened."""
        t0 = time.perf_counter()
        if self.executor == "ray":  # a bad address or a cluster too small fails before anything is written
            from cllstr.study.ray_executor import RayOptions, connect

            self.ray = self.ray or RayOptions()
            connect(self.ray)
        self.out.mkdir(parents=True, exist_ok=True)
        if prepare:
            prepare_data(self.spec, self.data_root, self.runs, self.console, progress=not self.quiet)
        if self.spec.charset == "shared":
            self.shared_charset()
        self.layout()
        states = {r.hash: RunState(f"{r.model} | {r.mixture}" + (f" | {r.init}" if r.init != "scratch" else "")
                                   + f" | seed {r.seed}", self.run_dir(r), r.config.iterations) for r in self.runs}
        result = StudyResult()
        for r in self.runs:
            if is_done(self.run_dir(r)):
                states[r.hash].state = "skipped"
                result.skipped.append(r.hash)
        view = StudyProgress(self.spec.name, list(states.values()), self.parallel)
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main else None  # stop children on SIGTERM
        live = nullcontext() if self.quiet else Live(view, console=self.console, refresh_per_second=2,
                                                     redirect_stderr=False)
        try:
            with live:
                if self.executor == "inline":
                    self._run_inline(states, result)
                elif self.executor == "ray":
                    self._run_ray(states, result)
                else:
                    self._run_processes(states, result)
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
        result.seconds = time.perf_counter() - t0
        self._log_event({"event": "run", "done": len(result.done), "skipped": len(result.skipped),
                         "failed": result.failed, "seconds": round(result.seconds, 2)})
        return result

    def _ready(self, run: RunSpec, states: dict[str, RunState], result: StudyResult) -> bool | None:
        """True: can start; False: wait for its pre-training run; None: its pre-training run failed."""
        if run.depends_on is None:
            return True
        parent = states[run.depends_on].state
        if parent in ("done", "skipped"):
            return True
        return None if parent == "failed" else False

    def _finish(self, run: RunSpec, states: dict[str, RunState], result: StudyResult, ok: bool,
                error: str = "") -> None:
        st = states[run.hash]
        status = read_status(self.run_dir(run))
        if ok and is_done(self.run_dir(run)):
            st.state, st.seconds = "done", status.get("seconds")
            result.done.append(run.hash)
        else:
            st.state = "failed"
            result.failed[run.hash] = status.get("error") or error or "the run process ended without a result"
            self.console.print(f"[red]run {run.hash} ({st.label}) failed:[/] {result.failed[run.hash]} "
                               f"(see {self.run_dir(run)})")

    def _finished_meanwhile(self, run: RunSpec, states: dict[str, RunState], result: StudyResult) -> bool:
        """True (and the run marked skipped) when another process finished ``run`` after this study started, so
        that it is neither trained nor evaluated again (which would overwrite its recorded wall time)."""
        if not is_done(self.run_dir(run)):
            return False
        states[run.hash].state = "skipped"
        result.skipped.append(run.hash)
        return True

    def _run_inline(self, states: dict[str, RunState], result: StudyResult) -> None:
        for run in self.runs:
            st = states[run.hash]
            if st.state != "pending":
                continue
            if self._ready(run, states, result) is not True:
                self._finish(run, states, result, False, f"pre-training run {run.depends_on} did not finish")
                continue
            if self._finished_meanwhile(run, states, result):
                continue
            st.state, st.started, st.where = "running", time.monotonic(), "this process"
            device = None if self.device == "auto" else self.device
            try:
                execute_run(self.run_dir(run), device=device, quiet=True)
                self._finish(run, states, result, True)
            except Exception as e:  # noqa: BLE001 - a failed run must not stop the study
                write_status(self.run_dir(run), "failed", error=f"{type(e).__name__}: {e}")
                self._finish(run, states, result, False, f"{type(e).__name__}: {e}")

    def _pick(self, pending: list[RunSpec], states: dict[str, RunState], result: StudyResult) -> RunSpec | None:
        """Remove and return the first pending run that can start (None: none can yet); runs whose pre-training run
        failed are marked failed, runs another process finished meanwhile skipped."""
        while True:
            pick = None
            for run in list(pending):
                ready = self._ready(run, states, result)
                if ready is None:
                    pending.remove(run)
                    self._finish(run, states, result, False, f"pre-training run {run.depends_on} failed")
                elif ready and pick is None:
                    pick = run
            if pick is None:
                return None
            pending.remove(pick)
            if not self._finished_meanwhile(pick, states, result):
                return pick

    def _run_processes(self, states: dict[str, RunState], result: StudyResult) -> None:
        pending = [r for r in self.runs if states[r.hash].state == "pending"]
        active: dict[int, tuple[RunSpec, subprocess.Popen]] = {}
        try:
            while pending or active:
                for slot in [s for s in range(self.parallel) if s not in active]:
                    pick = self._pick(pending, states, result)
                    if pick is None:
                        break
                    st = states[pick.hash]
                    st.state, st.started, st.where = "running", time.monotonic(), self._placement(slot)[3]
                    active[slot] = (pick, self._start(pick, slot))
                if not active and pending:
                    raise RuntimeError(f"runs {[r.hash for r in pending]} wait for runs that will never finish")
                time.sleep(0.2)
                for slot, (run, proc) in list(active.items()):
                    if proc.poll() is not None:
                        del active[slot]
                        self._finish(run, states, result, proc.returncode == 0,
                                     "" if proc.returncode == 0 else f"exit code {proc.returncode}")
        finally:
            for run, proc in active.values():  # interrupted: stop the children, their last.pt stays
                proc.terminate()
                proc.wait(timeout=30)
                write_status(self.run_dir(run), "interrupted")

    def _run_ray(self, states: dict[str, RunState], result: StudyResult) -> None:
        from cllstr.study.ray_executor import run_tasks

        def start(run: RunSpec, where: str) -> None:
            st = states[run.hash]
            st.state, st.started, st.where = "running", time.monotonic(), where

        run_tasks([r for r in self.runs if states[r.hash].state == "pending"], self.run_dir,
                  lambda run: self._ready(run, states, result),
                  lambda run, ok, error: self._finish(run, states, result, ok, error), start, self.ray)

    def _log_event(self, row: dict[str, Any]) -> None:
        with open(self.out / "study_log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **row}, ensure_ascii=False) + "\n")
