"""Study grids on a real local Ray cluster (head on 127.0.0.1, 2 CPUs) started by the test.

Every ``cllstr study run`` runs in a child process: a Ray driver leaves gRPC threads behind, and a later ``fork()`` in
the test process (multiprocessing pools of the synthetic engine) can then hang, so the test process never imports
Ray itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from cllstr.study.worker import read_status

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="the ray executor's tests need Ray: pip install 'cllstr[ray]'")


class _Result:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.exit_code, self.output = proc.returncode, proc.stdout + proc.stderr


def _cllstr(args: list[str]) -> _Result:
    """``cllstr ARGS`` in a child process (see the module docstring)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    return _Result(subprocess.run([sys.executable, "-m", "cllstr.cli.main", *args], env=env, capture_output=True,
                                  text=True, timeout=900, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                                           signal.SIG_DFL)))

TINY = {"iterations": 2, "batch_size": 4, "val_interval": 0, "save_interval": 1, "log_interval": 1, "threads": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``ray start --head`` with 2 CPUs on 127.0.0.1; its address."""
    port = _free_port()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True, timeout=240)
    yield f"127.0.0.1:{port}"
    subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _study(tmp_path: Path, iterations: int = 2) -> Path:
    study = {"name": "two", "data": {"scale": 0.001},
             "models": [{"name": "cnn_ctc", "kwargs": {"out_channels": 16}}],
             "base": {**TINY, "iterations": iterations}, "eval": {"max_samples": 4, "checkpoint": "last"},
             "mixtures": [{"name": "LAT only", "select_data": "lang_L", "row": "Mono"},
                          {"name": "HIN only", "select_data": "lang_H", "row": "Mono"}]}
    path = tmp_path / f"two-{iterations}.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _tables(out: Path) -> dict:
    return json.loads((out / "report" / "summary.json").read_text(encoding="utf-8"))["tables"]


def test_ray_executor_gives_the_local_executors_study(cluster: str, tmp_path: Path) -> None:
    study, data = _study(tmp_path), tmp_path / "data"
    local = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "local"), "--data", str(data),
                             "--parallel", "2", "--quiet"])
    assert local.exit_code == 0, local.output
    on_ray = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "ray"), "--data", str(data),
                              "--executor", "ray", "--address", cluster, "--cpus-per-run", "1",
                              "--quiet"])
    assert on_ray.exit_code == 0, on_ray.output
    assert "2 run(s) trained" in on_ray.output
    runs_local = sorted(p.name for p in (tmp_path / "local" / "runs").iterdir())
    assert sorted(p.name for p in (tmp_path / "ray" / "runs").iterdir()) == runs_local  # same run hashes
    assert _tables(tmp_path / "ray") == _tables(tmp_path / "local")  # same runs, same threads: the same report
    for h in runs_local:
        assert read_status(tmp_path / "ray" / "runs" / h)["state"] == "done"


def test_a_distributed_run_is_one_ray_task_holding_a_torchrun_gang(cluster: str, tmp_path: Path) -> None:
    # 2 ranks x 1 CPU per run on the 2-CPU cluster: each run's task holds both CPUs, its torchrun gang trains with
    # gloo, rank 0 evaluates; the run hashes are those of a plain run (the world size is not part of a run)
    study, data = _study(tmp_path, iterations=4), tmp_path / "data"
    res = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "gang"), "--data", str(data), "--executor",
                   "ray", "--address", cluster, "--cpus-per-run", "1", "--ranks-per-run", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    plain = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "plain"), "--data", str(data), "--dry-run"])
    hashes = sorted(p.name for p in (tmp_path / "gang" / "runs").iterdir())
    assert hashes == sorted(line.split()[0] for line in plain.output.splitlines() if "|" in line)
    for h in hashes:
        run = tmp_path / "gang" / "runs" / h
        status = read_status(run)
        assert status["state"] == "done" and status["ranks"] == 2 and status["iterations"] == 4
        assert ", 2 ranks" in (run / "stdout.log").read_text(encoding="utf-8")  # the loader line of a 2-rank run
        assert (run / "eval.json").is_file()
    res = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "big"), "--executor", "ray", "--address",
                   cluster, "--ranks-per-run", "3", "--quiet"])
    assert res.exit_code == 1 and "cannot place a run of 3 CPU / 0 GPU (3 ranks on one node)" in res.output
    assert not (tmp_path / "big").exists()
    res = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "bad"), "--executor", "ray", "--address",
                   cluster, "--ranks-per-run", "0", "--quiet"])
    assert res.exit_code == 2 and "--ranks-per-run must be >= 1" in res.output


def _kill_worker_when_running(out: Path, killed: list[int], stop: threading.Event) -> None:
    """Kill the first study worker process of ``out`` once it has written a checkpoint."""
    while not stop.is_set():
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (b"cllstr.study.worker" in cmd and b"torch.distributed.run" not in cmd  # a worker or a rank
                    and any(str(out).encode() in c for c in cmd)):
                run_dir = Path(next(c for c in cmd if str(out).encode() in c).decode())
                if (run_dir / "last.pt").is_file():
                    os.kill(int(d.name), signal.SIGKILL)
                    killed.append(int(d.name))
                    return
        time.sleep(0.05)


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_killed_run_is_retried_from_its_checkpoint(cluster: str, tmp_path: Path, ranks: int) -> None:
    # ranks=2: one rank of a torchrun gang is killed; torchrun stops the gang, Ray retries the whole task
    study, data = _study(tmp_path, iterations=300), tmp_path / "data"
    out = tmp_path / "ray"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_worker_when_running, args=(out, killed, stop), daemon=True)
    killer.start()
    try:
        res = _cllstr(["study", "run", str(study), "--out", str(out), "--data", str(data),
                                       "--executor", "ray", "--address", cluster, "--quiet", "--no-report",
                                       "--ranks-per-run", str(ranks)])
    finally:
        stop.set()
    assert res.exit_code == 0, res.output
    assert killed, "no study worker was killed"
    states = [read_status(d) for d in (out / "runs").iterdir()]
    assert all(s["state"] == "done" and s["iterations"] == 300 and s.get("ranks", 1) == ranks for s in states)
    assert any(s["resumed"] for s in states)  # the killed run continued from its last.pt


def test_bad_address_or_too_small_a_cluster_write_nothing(cluster: str, tmp_path: Path) -> None:
    study = _study(tmp_path)
    res = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "a"), "--executor", "ray",
                                   "--address", f"127.0.0.1:{_free_port()}", "--quiet"])
    assert res.exit_code == 1 and "--address" in res.output and not (tmp_path / "a").exists()
    res = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "b"), "--executor", "ray",
                                   "--address", cluster, "--cpus-per-run", "64", "--quiet"])
    assert res.exit_code == 1 and "cannot place a run of 64 CPU" in res.output and not (tmp_path / "b").exists()
    res = _cllstr(["study", "run", str(study), "--out", str(tmp_path / "c"), "--address", cluster])
    assert res.exit_code == 2 and "--executor ray" in res.output
