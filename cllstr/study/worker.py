"""Execute one study run in its folder: train (resuming ``last.pt``), evaluate the chosen checkpoint, mark it done.

A run folder ``<study>/runs/<hash>/`` holds ``run.json`` (grid coordinates and the TrainConfig, written by the
runner), the training outputs (``last.pt``, ``best.pt``, ``charset.txt``, ``log.jsonl``, ``train.csv``,
``val.csv``), ``eval.json`` / ``eval.md`` and ``status.json`` (``running`` → ``done`` or ``failed``). Run it in a
separate process with ``python -m cllstr.study.worker RUN_DIR [--device D] [--threads N]``, or as a data-parallel
gang under ``torchrun`` (``python -m torch.distributed.run --nproc-per-node R -m cllstr.study.worker RUN_DIR``): every
rank trains its share, rank 0 alone writes ``status.json`` and evaluates the chosen checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from cllstr.atomic import atomic_write_json

__all__ = ["RUN_FILE", "STATUS_FILE", "EVAL_FILE", "read_status", "write_status", "is_done", "execute_run", "main"]

RUN_FILE = "run.json"
STATUS_FILE = "status.json"
EVAL_FILE = "eval.json"


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """``status.json`` of a run folder (``{"state": "pending"}`` when absent or unreadable)."""
    path = Path(run_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"state": "pending"}


def write_status(run_dir: str | Path, state: str, **extra: Any) -> None:
    """Atomically write ``status.json`` with ``state`` and ``extra`` fields."""
    atomic_write_json(Path(run_dir) / STATUS_FILE, {"state": state, "time": round(time.time(), 3), **extra})


def is_done(run_dir: str | Path) -> bool:
    """A run is finished when its status says so and its evaluation exists."""
    return read_status(run_dir).get("state") == "done" and (Path(run_dir) / EVAL_FILE).is_file()


def execute_run(run_dir: str | Path, device: str | None = None, threads: int | None = None,
                quiet: bool = True) -> dict[str, Any]:
    """Train and evaluate the run described by ``run_dir/run.json``; resumes an interrupted run from ``last.pt``.

    Args:
        run_dir: The run folder.
        device: Overrides the config's device (``cpu``, ``cuda``...), not part of the run's identity.
        threads: CPU threads for this run.
        quiet: Do not print training progress.

    Returns:
        The ``status.json`` content of the finished run.
    """
    import torch

    from cllstr.eval.checkpoint import evaluate_checkpoint
    from cllstr.scoring.evaluate import write_report
    from cllstr.train.config import TrainConfig, config_from_dict
    from cllstr.train.engine import train

    run_dir = Path(run_dir)
    record = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    cfg: TrainConfig = config_from_dict(TrainConfig, record["config"])
    cfg.out_dir = str(run_dir)
    if device:
        cfg.device = device
    if threads:
        cfg.threads = threads
    if cfg.init_from and not Path(cfg.init_from).is_file():
        raise FileNotFoundError(f"run {record['hash']}: initial checkpoint {cfg.init_from} is missing "
                                f"(its pre-training run {record.get('depends_on')} did not finish)")
    t0 = time.perf_counter()
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if rank == 0:
        write_status(run_dir, "running", pid=os.getpid(), **({"ranks": world} if world > 1 else {}))
    resume = (run_dir / "last.pt").is_file()  # read by every rank before any of them can train (and save)
    trainer, summary = train(cfg, resume=resume, quiet=quiet)
    if world > 1:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if rank != 0:  # rank 0 evaluates and marks the run done
            return {"state": "trained", "rank": rank}
    ev = record["eval"]
    ckpt = run_dir / ("best.pt" if ev["checkpoint"] == "best" else "last.pt")
    if not ckpt.is_file():  # no validation happened (val_interval 0): the last weights are the result
        ckpt = run_dir / "last.pt"
    report = evaluate_checkpoint(ckpt, cfg.data.root, ev["split"], record["languages"], ev["batch_size"],
                                 ev["max_samples"], gt_in_charset=not ev.get("full_gt", False),
                                 device=str(trainer.device), precision=cfg.precision,
                                 channels_last=cfg.channels_last)
    write_report(report, run_dir / EVAL_FILE, run_dir / "eval.md",
                 extra={"hash": record["hash"], "checkpoint": ckpt.name, "split": ev["split"]})
    seconds = time.perf_counter() - t0
    status = {"iterations": summary["iterations"], "img_per_s": round(summary["img_per_s"], 2),
              "seconds": round(seconds, 2), "resumed": resume, "checkpoint": ckpt.name,
              "device": str(trainer.device), "threads": torch.get_num_threads(),
              **({"ranks": world} if world > 1 else {})}
    write_status(run_dir, "done", **status)
    return read_status(run_dir)


def main(argv: list[str] | None = None) -> int:
    """Process entry point; exit code 0 on success, 1 after writing a ``failed`` status."""
    parser = argparse.ArgumentParser(description="Run one cllstr study run folder.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        execute_run(args.run_dir, args.device, args.threads, quiet=False)
    except Exception as e:  # noqa: BLE001 - any failure is recorded for the runner and the report
        write_status(args.run_dir, "failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
