"""One table of the trust check: validation 1-NED (and cllstr's accuracy) per iteration, and wall time.

Usage: ``python compare.py REF_LOG_TRAIN_TXT CLLSTR_LOG_JSONL [--wall wall.txt]``. The reference's ``log_train.txt``
prints, per validation, ``[it/N] Train_loss ...``, ``Current_score: S`` (1-NED in percent, ICDAR 2019, its default
``--NED``) and ``Elapsed_time: T``; cllstr's ``log.jsonl`` has ``kind: val`` rows with ``<LANG>_1ned`` and
``<LANG>_acc`` (fractions) and a timestamp per row.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def reference_curve(path: Path) -> dict[int, tuple[float, float]]:
    """Iteration to (1-NED %, elapsed s) from the reference's log."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out = {}
    pat = r"\[(\d+)/\d+\] Train_loss.*?Current_score\s*:\s*([\d.]+).*?Elapsed_time:\s*([\d.]+)"
    for m in re.finditer(pat, text, re.S):
        out[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return out


def cllstr_curve(path: Path) -> tuple[dict[int, dict[str, float]], float]:
    """Iteration to the validation row, and the start time of the run (first log row)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    start = rows[0]["time"] if rows else 0.0
    return {int(r["iteration"]): r for r in rows if r.get("kind") == "val"}, start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref_log", type=Path)
    ap.add_argument("cllstr_log", type=Path)
    ap.add_argument("--wall", type=Path)
    args = ap.parse_args()
    ref = reference_curve(args.ref_log)
    ours, start = cllstr_curve(args.cllstr_log)
    langs = sorted({k[:-5] for r in ours.values() for k in r if k.endswith("_1ned") and k[:3].isupper()})
    head = ["iteration", "reference 1-NED", *[f"cllstr {lang} 1-NED" for lang in langs],
            *[f"cllstr {lang} acc" for lang in langs], "reference elapsed s", "cllstr elapsed s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    for it in sorted(set(ref) | set(ours)):
        r, o = ref.get(it), ours.get(it)
        cells = [str(it), f"{r[0]:.2f}" if r else "–"]
        cells += [f"{100 * o[f'{lang}_1ned']:.2f}" if o else "–" for lang in langs]
        cells += [f"{100 * o[f'{lang}_acc']:.2f}" if o else "–" for lang in langs]
        cells += [f"{r[1]:.0f}" if r else "–", f"{o['time'] - start:.0f}" if o else "–"]
        print("| " + " | ".join(cells) + " |")
    if args.wall and args.wall.is_file():
        print(f"\nWall time (training + the reference's final evaluation): {args.wall.read_text().strip()}")


if __name__ == "__main__":
    main()
