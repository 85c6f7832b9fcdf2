"""Training logs: JSONL (every record), CSV (one file per record kind), optional TensorBoard, and a progress line.

The progress line shows iteration, loss, learning rate, images/s (over the last logging window), elapsed time and
ETA; it is printed with rich (``Console``), which falls back to plain text when the output is not a terminal.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["RunMonitor", "format_duration"]


def format_duration(seconds: float) -> str:
    """``3725`` → ``1:02:05``."""
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class RunMonitor:
    """Writes ``log.jsonl``, ``<kind>.csv`` and prints progress for one run directory.

    Args:
        out_dir: Run directory.
        total: Total iterations (for the ETA).
        start: Iteration the run starts from (nonzero on resume).
        tensorboard: Also write TensorBoard scalars (needs the ``tensorboard`` package).
        quiet: Print nothing (logs are still written).
        write: Write the log files (False on the non-zero ranks of a distributed run, which also print nothing).
    """

    def __init__(self, out_dir: str | Path, total: int, start: int = 0, tensorboard: bool = False,
                 quiet: bool = False, write: bool = True) -> None:
        self.dir = Path(out_dir)
        self.write = write
        if write:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.total = total
        self.console = Console(stderr=True, quiet=quiet or not write, highlight=False)
        self._jsonl = open(self.dir / "log.jsonl", "a", encoding="utf-8") if write else None
        self._csv: dict[str, tuple[Any, csv.DictWriter]] = {}
        self._tb = None
        if tensorboard and write:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise RuntimeError("tensorboard logging needs: pip install tensorboard") from e
            self._tb = SummaryWriter(str(self.dir / "tb"))
        self._t0 = time.perf_counter()
        self._start_iter = start
        self._win_t = self._t0
        self._win_images = 0

    def count_images(self, n: int) -> None:
        """Add ``n`` trained images to the current throughput window."""
        self._win_images += n

    def record(self, kind: str, row: dict[str, Any]) -> None:
        """Append ``row`` (flat scalars) to the JSONL log, ``<kind>.csv`` and TensorBoard."""
        if self._jsonl is None:
            return
        row = {"kind": kind, "time": round(time.time(), 3), **row}
        self._jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._jsonl.flush()
        flat = {k: v for k, v in row.items() if not isinstance(v, (dict, list))}
        entry = self._csv.get(kind)
        path = self.dir / f"{kind}.csv"
        if entry is None:
            new = not path.exists()
            fh = open(path, "a", newline="", encoding="utf-8")
            writer = csv.DictWriter(fh, fieldnames=list(flat), extrasaction="ignore")
            if new:
                writer.writeheader()
            entry = self._csv[kind] = (fh, writer)
        entry[1].writerow(flat)
        entry[0].flush()
        if self._tb is not None and "iteration" in row:
            for k, v in flat.items():
                if isinstance(v, (int, float)) and k not in ("iteration", "time"):
                    self._tb.add_scalar(f"{kind}/{k}", v, row["iteration"])

    def progress(self, iteration: int, loss: float, lr: float, extra: str = "") -> dict[str, float]:
        """Print the progress line and return the throughput window's statistics (then reset the window)."""
        now = time.perf_counter()
        window = max(now - self._win_t, 1e-9)
        ips = self._win_images / window
        done = iteration - self._start_iter
        elapsed = now - self._t0
        eta = elapsed / done * (self.total - iteration) if done > 0 else float("nan")
        pct = 100.0 * iteration / max(self.total, 1)
        self.console.print(
            f"[bold]{iteration:>7d}/{self.total}[/] {pct:5.1f}% | loss {loss:7.4f} | lr {lr:.2e} | "
            f"{ips:7.1f} img/s | {format_duration(elapsed)} elapsed | ETA {format_duration(eta) if done else '?'}"
            + (f" | {extra}" if extra else ""),
            soft_wrap=True,
        )
        self._win_t, self._win_images = now, 0
        return {"img_per_s": ips, "elapsed_s": elapsed}

    def info(self, message: str) -> None:
        """Print a plain message."""
        self.console.print(message, soft_wrap=True)

    def warn(self, message: str) -> None:
        """Print a warning."""
        self.console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)

    def close(self) -> None:
        """Flush and close every log file."""
        if self._jsonl is not None:
            self._jsonl.close()
        for fh, _ in self._csv.values():
            fh.close()
        if self._tb is not None:
            self._tb.close()
