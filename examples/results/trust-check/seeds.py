"""The trust check over seeds: per-iteration means of both trainers and an exact permutation test at each iteration.

Reads the per-seed tables kept here (``seed<N>-session<S>.md``, each written from compare.py's output) and leaves
out session 7's, which trained cllstr with the charset defect that session fixed. For each validation iteration:
the reference's and cllstr's LAT 1-NED per seed, both means and standard deviations, the mean difference (cllstr
minus reference), how many seeds cllstr is ahead (and tied) on, and the two-sided p-value of the exact permutation test of
that difference (every split of the pooled scores into two groups of the same sizes; the seeds of one trainer are
independent of the other's, since each trainer draws its own weights and batch order from a seed).

    python examples/results/trust-check/seeds.py [--dir examples/results/trust-check] [--exclude session7]
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
from pathlib import Path


def read_table(path: Path) -> dict[int, tuple[float, float]]:
    """Iteration to (reference 1-NED, cllstr LAT 1-NED) from one seed's table (rows with both values)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        try:
            out[int(cells[0])] = (float(cells[1]), float(cells[2]))
        except ValueError:  # '–' where one trainer has no validation at that iteration
            continue
    return out


def permutation_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact permutation p-value of mean(b) - mean(a)."""
    pooled, n = a + b, len(a)
    observed = abs(statistics.fmean(b) - statistics.fmean(a))
    hits = total = 0
    for idx in itertools.combinations(range(len(pooled)), n):
        chosen = set(idx)
        ga = [pooled[i] for i in chosen]
        gb = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += abs(statistics.fmean(gb) - statistics.fmean(ga)) >= observed - 1e-12
    return hits / total


def summarise(tables: dict[str, dict[int, tuple[float, float]]]) -> list[str]:
    iterations = sorted(set.intersection(*(set(t) for t in tables.values()))) if tables else []
    lines = [f"{len(tables)} seeds: {', '.join(tables)}", "",
             "| iteration | reference 1-NED mean ± std | cllstr 1-NED mean ± std | cllstr - reference | cllstr ahead / tied |"
             " permutation p |",
             "|---:|---:|---:|---:|---:|---:|"]
    for it in iterations:
        ref = [t[it][0] for t in tables.values()]
        ours = [t[it][1] for t in tables.values()]
        sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
        ahead = sum(o > r for o, r in zip(ours, ref, strict=True))
        tied = sum(o == r for o, r in zip(ours, ref, strict=True))
        lines.append(f"| {it} | {statistics.fmean(ref):.2f} ± {sd(ref):.2f} | {statistics.fmean(ours):.2f} ± "
                     f"{sd(ours):.2f} | {statistics.fmean(ours) - statistics.fmean(ref):+.2f} | {ahead} / {tied} of {len(ref)} | "
                     f"{permutation_p(ref, ours):.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--exclude", action="append", default=["session7"],
                    help="leave out tables whose name contains this (repeatable; default: session7)")
    args = ap.parse_args()
    tables = {}
    for path in sorted(args.dir.glob("seed*-session*.md")):
        if any(x in path.name for x in args.exclude):
            continue
        table = read_table(path)
        if table:
            tables[path.stem] = table
    if not tables:
        raise SystemExit(f"seeds.py: no seed tables (seed*-session*.md) in {args.dir}")
    print("\n".join(summarise(tables)))


if __name__ == "__main__":
    main()
