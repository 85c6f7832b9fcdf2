"""The task-to-head matrix ``P_TM`` of a grouped run as a table and a heatmap, from its ``grouping.jsonl``.

``grouping.jsonl`` holds one line per validation (``iteration``, ``p_tm``: scripts x heads, ``grouping``, ``changes``).
:func:`write_ptm` writes ``grouping_ptm.csv`` (every validation, long format: iteration, script, head, probability)
and ``grouping_ptm.png`` (the last ``P_TM`` as an annotated heatmap beside how often each script changed head).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from cllstr.atomic import atomic_open
from cllstr.scripts import SCRIPT_ORDER

__all__ = ["read_grouping_log", "write_ptm"]


def read_grouping_log(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``grouping.jsonl``; a torn last line (a run killed mid-write) is ignored.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a row without a ``p_tm`` matrix of ``len(SCRIPT_ORDER)`` rows (the message names the line).
    """
    rows = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise ValueError(f"{path}:{n}: not a JSON line") from None
        p_tm = row.get("p_tm")
        if not isinstance(p_tm, list) or len(p_tm) != len(SCRIPT_ORDER):
            raise ValueError(f"{path}:{n}: p_tm must be a {len(SCRIPT_ORDER)} x heads matrix")
        rows.append(row)
    return rows


def write_ptm(run_dir: str | Path, plot: bool = True) -> list[Path]:
    """Write ``grouping_ptm.csv`` (and ``grouping_ptm.png``) of ``run_dir/grouping.jsonl``; returns the files.

    Returns an empty list when the run logged no validation of a grouped model.
    """
    run_dir = Path(run_dir)
    log = run_dir / "grouping.jsonl"
    if not log.is_file():
        return []
    rows = read_grouping_log(log)
    if not rows:
        return []
    out = [run_dir / "grouping_ptm.csv"]
    with atomic_open(out[0], "w") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "script", "head", "probability"])
        for row in rows:
            for s, probs in zip(SCRIPT_ORDER, row["p_tm"], strict=True):
                for h, p in enumerate(probs):
                    w.writerow([row["iteration"], s, h, p])
    if plot:
        out.append(_heatmap(rows, run_dir / "grouping_ptm.png"))
    return out


def _heatmap(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    last = np.asarray(rows[-1]["p_tm"], dtype=float)
    heads = last.shape[1]
    # how often each script's head (the arg-max of its row) changed between consecutive validations
    assign = np.asarray([np.argmax(np.asarray(r["p_tm"]), axis=1) for r in rows])
    changes = (assign[1:] != assign[:-1]).sum(axis=0) if len(rows) > 1 else np.zeros(len(SCRIPT_ORDER), int)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(2.2 + 0.9 * heads + 2.5, 4.2),
                                 gridspec_kw={"width_ratios": [max(heads, 1), 2]})
    im = ax.imshow(last, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(heads), [f"head {h}" for h in range(heads)])
    ax.set_yticks(range(len(SCRIPT_ORDER)), SCRIPT_ORDER)
    for i in range(last.shape[0]):
        for j in range(heads):
            ax.text(j, i, f"{last[i, j]:.2f}", ha="center", va="center", color="w" if last[i, j] < 0.6 else "k",
                    fontsize=8)
    ax.set_title(f"P_TM at iteration {rows[-1]['iteration']}\n{rows[-1].get('grouping', '')}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    bx.barh(range(len(SCRIPT_ORDER)), changes, color="tab:gray")
    bx.set_yticks(range(len(SCRIPT_ORDER)), SCRIPT_ORDER)
    bx.invert_yaxis()
    bx.set_title(f"head changes over {len(rows)} validations", fontsize=9)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
