"""Study grids on a Ray cluster: every run is a Ray task with its resource request, retried after a worker dies.

A task runs ``python -m cllstr.study.worker RUN_DIR`` (the same worker as the local executor) on whichever node Ray
picks, so the study folder and the data root must be on storage every node sees under the same path. A run whose
process or node dies is retried (``max_retries``): the worker resumes it from its ``last.pt``. The study folder
ends up exactly as with the local executor (same run hashes, ``status.json``, ``eval.json``, same report). Ray is
an optional dependency: ``pip install 'cllstr[ray]'``.

A distributed run (``ranks_per_run > 1``, ``--ranks-per-run``) is one Ray task that holds the resources of all its
ranks on one node (``ranks x`` the CPUs and GPUs of one rank) and runs the worker under ``torchrun --standalone``
there: a gang that starts, fails and is retried as a whole (a killed rank takes the gang down; the retry resumes from
``last.pt``, which holds every rank's RNG state). Ray sets ``CUDA_VISIBLE_DEVICES`` to the task's GPUs, so rank ``i``
uses the task's ``i``-th GPU. Gangs spanning several nodes are not supported.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RayOptions", "connect", "run_tasks", "worker_command"]

RAY_MISSING = "the ray executor needs Ray: pip install 'cllstr[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and what one run asks of it.

    Attributes:
        address: ``auto`` (a running cluster this machine belongs to), ``HOST:PORT``, or None (start a local one).
        cpus_per_run: CPUs reserved for one run, per rank (also each rank's torch threads).
        gpus_per_run: GPUs reserved for one run, per rank (0: CPU runs).
        max_retries: Times a run is retried after its process or node dies.
        ranks_per_run: Data-parallel ranks of one run (a torchrun gang on one node; 1: a plain process).
    """

    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0
    max_retries: int = 2
    ranks_per_run: int = 1

    def __post_init__(self) -> None:
        if self.cpus_per_run < 1:
            raise ValueError(f"--cpus-per-run must be >= 1, got {self.cpus_per_run}")
        if self.gpus_per_run < 0:
            raise ValueError(f"--gpus-per-run must be >= 0, got {self.gpus_per_run}")
        if self.max_retries < 0:
            raise ValueError(f"--max-retries must be >= 0, got {self.max_retries}")
        if self.ranks_per_run < 1:
            raise ValueError(f"--ranks-per-run must be >= 1, got {self.ranks_per_run}")
        if self.ranks_per_run > 1 and 0 < self.gpus_per_run < 1:
            raise ValueError(f"a distributed run needs whole GPUs per rank, got --gpus-per-run {self.gpus_per_run:g}")

    @property
    def task_cpus(self) -> int:
        """CPUs of one run's task (all its ranks)."""
        return self.cpus_per_run * self.ranks_per_run

    @property
    def task_gpus(self) -> float:
        """GPUs of one run's task (all its ranks)."""
        return self.gpus_per_run * self.ranks_per_run

    def describe(self) -> str:
        """Where a run goes, for the study view."""
        gpus = f", {self.gpus_per_run:g} GPU" if self.gpus_per_run else ""
        ranks = f"{self.ranks_per_run} ranks x " if self.ranks_per_run > 1 else ""
        return f"Ray ({ranks}{self.cpus_per_run} CPU{gpus})"


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"{RAY_MISSING} ({e})") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail fast (Ray itself retries for a minute) when nothing listens at ``HOST:PORT``."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--address must be auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConnectionError(f"--address {address}: no Ray head answers there ({e})") from None


def connect(options: RayOptions) -> Any:
    """Join (or start) the cluster and check that it can place one run; returns the ``ray`` module.

    Raises:
        ImportError: Ray is not installed.
        ConnectionError: the address does not answer (the message names it).
        ValueError: no node has the CPUs/GPUs one run asks for.
    """
    ray = _ray()
    if options.address not in (None, "auto"):
        _check_reachable(options.address)
    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, ignore_reinit_error=True)
        except Exception as e:  # ray raises ConnectionError, RuntimeError or ValueError for a bad address
            where = options.address or "a new local cluster"
            raise ConnectionError(f"--address {where}: cannot connect to Ray: {str(e).splitlines()[0]}") from None
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    fits = [r for r in nodes if r.get("CPU", 0) >= options.task_cpus and r.get("GPU", 0) >= options.task_gpus]
    if not fits:
        have = ", ".join(f"{r.get('CPU', 0):g} CPU / {r.get('GPU', 0):g} GPU" for r in nodes) or "no live node"
        gang = f" ({options.ranks_per_run} ranks on one node)" if options.ranks_per_run > 1 else ""
        raise ValueError(f"the Ray cluster cannot place a run of {options.task_cpus} CPU / "
                         f"{options.task_gpus:g} GPU{gang} (nodes: {have}); lower --cpus-per-run / --gpus-per-run"
                         + (" / --ranks-per-run" if gang else ""))
    return ray


def worker_command(run_dir: str, device: str, threads: int, ranks: int = 1) -> list[str]:
    """The study worker's command line: one process, or a torchrun gang of ``ranks`` on this node."""
    worker = ["-m", "cllstr.study.worker", run_dir, "--device", device, "--threads", str(threads)]
    if ranks == 1:
        return [sys.executable, *worker]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *worker]


def _execute(run_dir: str, device: str, threads: int, ranks: int = 1) -> int:
    """Body of a run's Ray task: the study worker (or its torchrun gang) in a child process, its output appended to
    ``stdout.log``."""
    with open(Path(run_dir) / "stdout.log", "ab") as log:
        code = subprocess.run(worker_command(run_dir, device, threads, ranks), stdout=log, stderr=subprocess.STDOUT,
                              check=False).returncode
    if code != 0:  # a crash or a kill: raise, so that Ray retries the task (the worker resumes from last.pt)
        raise RuntimeError(f"study worker for {run_dir} exited with code {code}")
    return code


def run_tasks(runs: list[Any], run_dir: Any, ready: Any, finish: Any, start: Any, options: RayOptions,
              poll: float = 0.2) -> None:
    """Submit runs as their dependencies finish and collect them.

    Args:
        runs: Pending runs (``RunSpec``), dependencies first.
        run_dir: ``run -> Path``.
        ready: ``run -> True | False | None`` (can start, wait, its dependency failed).
        finish: ``(run, ok, error) -> None``, called once per run.
        start: ``(run, where) -> None``, called when a run is submitted.
        options: The resource request.
        poll: Seconds between checks.
    """
    ray = _ray()
    device = "cuda" if options.gpus_per_run > 0 else "cpu"
    task = ray.remote(num_cpus=options.task_cpus, num_gpus=options.task_gpus, max_retries=options.max_retries,
                      retry_exceptions=True)(_execute)
    pending, active = list(runs), {}
    while pending or active:
        for run in list(pending):
            state = ready(run)
            if state is None:
                pending.remove(run)
                finish(run, False, f"pre-training run {run.depends_on} failed")
            elif state:
                pending.remove(run)
                start(run, options.describe())
                active[task.remote(str(run_dir(run)), device, options.cpus_per_run, options.ranks_per_run)] = run
        if not active:
            if pending:
                raise RuntimeError(f"runs {[r.hash for r in pending]} wait for runs that will never finish")
            break
        done, _ = ray.wait(list(active), num_returns=1, timeout=poll)
        for ref in done:
            run = active.pop(ref)
            try:
                ray.get(ref)
                finish(run, True, "")
            except Exception as e:  # noqa: BLE001 - retries exhausted: the run failed, the study goes on
                finish(run, False, f"failed on Ray after {options.max_retries} retries: {str(e).splitlines()[0]}")
        if not done:
            time.sleep(0)
