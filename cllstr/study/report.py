"""Study report: tables in the paper's layout, gains over the baseline, CSV + Markdown + JSON summary (+ plots).

Layout (one table per model and metric): rows are the training-data settings in the study's order, columns the
seven languages in the paper's order (ARA BEN CHI HIN JPN KOR LAT) plus ``Avg`` (macro mean over the row's
languages, per seed) and, when the study names focus languages, ``Avg <focus label>`` (macro mean over the focus
languages only, so that rows evaluated on different language sets, e.g. "All" and "All but LAT", compare). Cells
are ``mean ± std`` over seeds in percent (sample std; no ``±`` for one seed), ``–`` where the row has no result;
the best value of each column is bold (lowest for CER). Gain tables give, per language, the seed-paired difference
to the row's baseline row (``Monolingual`` ...): positive is better for accuracy/1-NED,
negative for CER (ΔCER).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cllstr.atomic import atomic_open, atomic_write_json, atomic_write_text
from cllstr.scripts import SCRIPT_ORDER
from cllstr.study.spec import LOWER_IS_BETTER, study_from_dict
from cllstr.study.worker import EVAL_FILE, RUN_FILE, read_status

__all__ = ["Stat", "StudyResults", "load_results", "stat", "build_tables", "write_report", "grouping_counts", "AVG",
           "METRIC_TITLES"]

AVG = "Avg"
METRIC_TITLES = {"accuracy": "word accuracy", "one_minus_ned": "1-NED", "cer": "CER", "accuracy_ci": "accuracy (ci)",
                 "one_minus_ned_ci": "1-NED (ci)", "cer_ci": "CER (ci)"}


@dataclass
class Stat:
    """Mean, sample std and count of per-seed values (in the metric's unit, fractions)."""

    mean: float
    std: float
    n: int
    values: list[float]

    def fmt(self, pct: bool = True, signed: bool = False) -> str:
        k = 100.0 if pct else 1.0
        m = f"{k * self.mean:+.2f}" if signed else f"{k * self.mean:.2f}"
        return f"{m} ± {k * self.std:.2f}" if self.n > 1 else m


def stat(values: Sequence[float]) -> Stat | None:
    """:class:`Stat` of ``values`` (None when empty)."""
    vals = [float(v) for v in values]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return Stat(mean, std, len(vals), vals)


@dataclass
class StudyResults:
    """Per-seed scores gathered from a study folder.

    Attributes:
        scores: ``scores[model][row][lang][seed] = {metric: value}``.
        rows: Row labels in study order (reported rows only); models likewise.
        baselines: Row label to its baseline row label (or None).
        languages: Row label to the languages it is evaluated on.
        runs: Every run's record plus its ``state``.
    """

    spec: Any
    scores: dict[str, dict[str, dict[str, dict[int, dict[str, float]]]]]
    rows: list[str]
    models: list[str]
    baselines: dict[str, str | None]
    languages: dict[str, list[str]]
    runs: list[dict[str, Any]] = field(default_factory=list)


def load_results(study_dir: str | Path) -> StudyResults:
    """Read ``study.json`` and every run folder of ``study_dir``."""
    study_dir = Path(study_dir)
    meta_path = study_dir / "study.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{study_dir} is not a study folder (no study.json); run `cllstr study run` first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    spec = study_from_dict(meta["spec"], where=str(meta_path))
    scores: dict[str, Any] = {}
    rows: list[str] = []
    models: list[str] = []
    baselines: dict[str, str | None] = {}
    languages: dict[str, list[str]] = {}
    runs = []
    for rec in meta["runs"]:
        run_dir = study_dir / "runs" / rec["hash"]
        state = read_status(run_dir).get("state", "pending")
        runs.append({**rec, "state": state, "seconds": read_status(run_dir).get("seconds")})
        if not rec.get("report", True):
            continue
        row, model = rec["row"], rec["model"]
        if row not in rows:
            rows.append(row)
        if model not in models:
            models.append(model)
        baselines.setdefault(row, rec.get("baseline"))
        languages.setdefault(row, [])
        languages[row] += [lang for lang in rec["languages"] if lang not in languages[row]]
        eval_path = run_dir / EVAL_FILE
        if state != "done" or not eval_path.is_file() or not (run_dir / RUN_FILE).is_file():
            continue
        report = json.loads(eval_path.read_text(encoding="utf-8"))
        for lang, s in report["languages"].items():
            scores.setdefault(model, {}).setdefault(row, {}).setdefault(lang, {})[int(rec["seed"])] = dict(s)
    return StudyResults(spec, scores, rows, models, baselines, languages, runs)


def _columns(res: StudyResults) -> list[str]:
    langs = {lang for ls in res.languages.values() for lang in ls}
    return [lang for lang in SCRIPT_ORDER if lang in langs] + sorted(langs - set(SCRIPT_ORDER))


def _row_seeds(res: StudyResults, model: str, row: str, metric: str) -> dict[int, dict[str, float]]:
    """``{seed: {lang: value}}`` of one row."""
    out: dict[int, dict[str, float]] = {}
    for lang, by_seed in res.scores.get(model, {}).get(row, {}).items():
        for seed, s in by_seed.items():
            if metric in s:
                out.setdefault(seed, {})[lang] = float(s[metric])
    return out


def _averages(res: StudyResults, columns: Sequence[str]) -> dict[str, list[str] | None]:
    """Average columns: ``Avg`` (None: the row's own languages) and ``Avg <focus label>`` when the focus languages
    are a proper subset of the columns."""
    out: dict[str, list[str] | None] = {AVG: None}
    focus = [lang for lang in columns if lang in res.spec.report.focus]
    if focus and set(focus) != set(columns):
        out[f"{AVG} {res.spec.report.focus_label}"] = focus
    return out


def _avg_langs(res: StudyResults, row: str, langs: Sequence[str] | None) -> list[str]:
    """The languages one average column of ``row`` is taken over (empty: the row has none of them)."""
    own = res.languages.get(row, [])
    return list(own) if langs is None else [lang for lang in langs if lang in own]


def _cell_stats(res: StudyResults, model: str, row: str, metric: str, columns: Sequence[str],
                averages: Mapping[str, Sequence[str] | None]) -> dict[str, Stat]:
    per_seed = _row_seeds(res, model, row, metric)
    cells: dict[str, Stat] = {}
    for lang in columns:
        st = stat([v[lang] for v in per_seed.values() if lang in v])
        if st is not None:
            cells[lang] = st
    for name, langs in averages.items():
        want = _avg_langs(res, row, langs)
        st = stat([sum(v[lang] for lang in want) / len(want) for v in per_seed.values()
                   if want and all(lang in v for lang in want)])
        if st is not None:
            cells[name] = st
    return cells


def _gain_stats(res: StudyResults, model: str, row: str, base: str, metric: str, columns: Sequence[str],
                averages: Mapping[str, Sequence[str] | None]) -> dict[str, dict[str, Any]]:
    """Seed-paired gains of ``row`` over ``base`` per language (+ each average over the common languages)."""
    a, b = _row_seeds(res, model, row, metric), _row_seeds(res, model, base, metric)
    lower = metric in LOWER_IS_BETTER
    out: dict[str, dict[str, Any]] = {}
    common = [lang for lang in columns if lang in res.languages.get(row, []) and lang in res.languages.get(base, [])]
    groups = {lang: [lang] for lang in common}
    groups.update({name: [x for x in common if langs is None or x in langs] for name, langs in averages.items()})
    for lang, langs in groups.items():
        diffs = []
        for seed in sorted(set(a) & set(b)):
            if langs and all(x in a[seed] and x in b[seed] for x in langs):
                diffs.append(sum(a[seed][x] - b[seed][x] for x in langs) / len(langs))
        st = stat(diffs)
        if st is not None:
            wins = sum((d < 0) if lower else (d > 0) for d in diffs)
            out[lang] = {"stat": st, "wins": wins, "better": (st.mean < 0) if lower else (st.mean > 0)}
    return out


def _best(cells: Mapping[str, Mapping[str, Stat]], metric: str) -> dict[str, list[str]]:
    """Column to the rows holding its best mean (ties all marked)."""
    best: dict[str, list[str]] = {}
    cols = {c for row in cells.values() for c in row}
    for col in cols:
        vals = {r: round(c[col].mean, 10) for r, c in cells.items() if col in c}
        target = min(vals.values()) if metric in LOWER_IS_BETTER else max(vals.values())
        best[col] = [r for r, v in vals.items() if v == target]
    return best


def build_tables(res: StudyResults) -> dict[str, Any]:
    """Every table of the report as plain data: ``{"columns", "all_columns", "tables": {model: {metric: {...}}},
    "gains"}`` (``all_columns``: the languages then the average columns)."""
    columns = _columns(res)
    averages = _averages(res, columns)
    tables: dict[str, Any] = {}
    gains: dict[str, Any] = {}
    for model in res.models:
        for metric in res.spec.report.metrics:
            cells = {row: _cell_stats(res, model, row, metric, columns, averages) for row in res.rows}
            tables.setdefault(model, {})[metric] = {"cells": cells, "best": _best(cells, metric)}
            g = {}
            for row in res.rows:
                base = res.baselines.get(row)
                if base and base != row:
                    g[row] = {"baseline": base,
                              "langs": _gain_stats(res, model, row, base, metric, columns, averages)}
            gains.setdefault(model, {})[metric] = g
    return {"columns": columns, "all_columns": [*columns, *averages], "tables": tables, "gains": gains}


def _verdict(n: int, better: int, tied: int) -> str:
    """``beats`` (better on most), ``ties with`` (no difference anywhere) or ``does not beat``."""
    if better * 2 > n:
        return "beats"
    return "ties with" if tied == n else "does not beat"


def _scope(label: str, every: bool) -> str:
    """The languages a finding is about: an adjective (``low-resource``: "every low-resource language", "most
    low-resource languages") or a plural noun (``targets``: "all targets"; ``all languages``: "most languages")."""
    if not label:
        return "every language" if every else "most languages"
    if label.endswith("s"):
        noun = label[4:] if label.startswith("all ") else label
        return f"all {noun}" if every else f"most {noun}"
    return f"every {label} language" if every else f"most {label} languages"


def _findings(res: StudyResults, built: Mapping[str, Any]) -> list[str]:
    """One line per model, row and metric (the primary metric first): on how many focus languages the row wins."""
    focus = res.spec.report.focus
    lines = []
    for model, by_metric in built["gains"].items():
        for metric in res.spec.report.metrics:
            for row, g in by_metric[metric].items():
                langs = [lang for lang in (focus or built["columns"]) if lang in g["langs"]]
                if not langs:
                    continue
                stats = {lang: g["langs"][lang]["stat"] for lang in langs}
                better = [lang for lang in langs if g["langs"][lang]["better"]]
                tied = [lang for lang in langs if abs(stats[lang].mean) < 1e-12]
                n_seeds = max(s.n for s in stats.values())
                detail = ", ".join(f"{lang} {stats[lang].fmt(signed=True)} "
                                   f"(better in {g['langs'][lang]['wins']}/{stats[lang].n} seeds)" for lang in langs)
                mean = sum(s.mean for s in stats.values()) / len(langs)
                verdict = _verdict(len(langs), len(better), len(tied))
                scope = _scope(res.spec.report.focus_label if focus else "", every=verdict == "ties with")
                lines.append(f"{model}: **{row}** {verdict} **{g['baseline']}** on {scope} in "
                             f"{METRIC_TITLES[metric]}: better on {len(better)}/{len(langs)}, tied on {len(tied)}, "
                             f"worse on {len(langs) - len(better) - len(tied)} (mean gain {100 * mean:+.2f} points, "
                             f"{n_seeds} seed(s)): {detail}.")
    return lines


def _md_table(title: str, cols: Sequence[str], rows: Sequence[str], cells: Mapping[str, Mapping[str, str]],
              bold: Mapping[str, Sequence[str]] | None = None) -> str:
    out = [f"#### {title}", "", "| Training data | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for row in rows:
        vals = []
        for c in cols:
            v = cells.get(row, {}).get(c, "–")
            vals.append(f"**{v}**" if bold and row in bold.get(c, []) and v != "–" else v)
        out.append(f"| {row} | " + " | ".join(vals) + " |")
    return "\n".join(out) + "\n"


def write_report(study_dir: str | Path, out_dir: str | Path | None = None, plots: bool = True) -> dict[str, Any]:
    """Write ``report.md``, ``summary.json``, ``tables/*.csv`` and ``plots/*.png`` for a study folder.

    Returns:
        The JSON summary.
    """
    res = load_results(study_dir)
    out = Path(out_dir) if out_dir else Path(study_dir) / "report"
    (out / "tables").mkdir(parents=True, exist_ok=True)
    built = build_tables(res)
    columns = built["all_columns"]
    md = [f"# Study {res.spec.name}", "", res.spec.description, ""]
    states = [r["state"] for r in res.runs]
    seconds = sum(r["seconds"] or 0.0 for r in res.runs)
    md.append(f"Runs: {states.count('done')}/{len(states)} done"
              + (f", {len(states) - states.count('done')} missing or failed" if states.count("done") < len(states)
                 else "") + f"; seeds {res.spec.seeds}; data {res.spec.data.identity()}; "
              f"total run time {seconds / 60:.1f} min. Values in %, mean ± std over seeds; best per column in bold.\n")
    findings = _findings(res, built)
    if findings:
        md += ["## Findings", "", *[f"- {f}" for f in findings], ""]
    summary: dict[str, Any] = {"study": res.spec.name, "columns": columns, "rows": res.rows,
                               "metrics": res.spec.report.metrics, "seeds": res.spec.seeds, "findings": findings,
                               "runs": {"total": len(states), "done": states.count("done"),
                                        "failed": states.count("failed"), "run_seconds": round(seconds, 2)},
                               "tables": {}, "gains": {}, "files": []}
    for model in res.models:
        md += [f"## {model}", ""]
        for metric in res.spec.report.metrics:
            t = built["tables"][model][metric]
            text = {row: {c: s.fmt() for c, s in cells.items()} for row, cells in t["cells"].items()}
            md.append(_md_table(f"{METRIC_TITLES[metric]} (%)", columns, res.rows, text, t["best"]))
            summary["tables"].setdefault(model, {})[metric] = {
                "cells": {row: {c: {"mean": s.mean, "std": s.std, "n": s.n, "values": s.values}
                                for c, s in cells.items()} for row, cells in t["cells"].items()},
                "best": t["best"]}
            path = out / "tables" / f"{_slug(model)}_{metric}.csv"
            _write_csv(path, columns, res.rows, t["cells"], t["best"])
            summary["files"].append(str(path))
            g = built["gains"][model][metric]
            if g:
                sign = "ΔCER, negative is better" if metric in LOWER_IS_BETTER else "positive is better"
                gtext = {row: {c: v["stat"].fmt(signed=True) for c, v in d["langs"].items()} for row, d in g.items()}
                md.append(_md_table(f"gain in {METRIC_TITLES[metric]} over the baseline row (points; {sign})",
                                    columns, list(g), gtext))
                summary["gains"].setdefault(model, {})[metric] = {
                    row: {"baseline": d["baseline"], "langs": {c: {"mean": v["stat"].mean, "std": v["stat"].std,
                                                                    "n": v["stat"].n, "wins": v["wins"]}
                                                               for c, v in d["langs"].items()}} for row, d in g.items()}
    if plots:
        from cllstr.study.plots import plot_study

        summary["files"] += [str(p) for p in plot_study(res, built, out / "plots")]
    groupings = grouping_counts(study_dir, res)
    if groupings:
        md += ["## Learned groupings", "", "Final task-to-head grouping of each run (last validation of "
               "`grouping.jsonl`; heads are interchangeable), counted over seeds.", "",
               "| Model | Training data | Grouping | Runs |", "|---|---|---|---:|"]
        md += [f"| {m} | {row} | `{g}` | {n} |" for (m, row), counts in groupings.items()
               for g, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        md.append("")
        summary["groupings"] = {f"{m} | {row}": counts for (m, row), counts in groupings.items()}
    failed = [r for r in res.runs if r["state"] != "done"]
    if failed:
        md += ["## Unfinished runs", "", *[f"- {r['hash']}: {r['model']} | {r['mixture']} | seed {r['seed']} "
                                           f"({r['state']})" for r in failed], ""]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    # The files relative to the report folder in the JSON (it is committed with results; no machine paths).
    atomic_write_json(out / "summary.json", {**summary, "files": [str(Path(f).relative_to(out))
                                                                   for f in summary["files"]]})
    summary["files"] += [str(out / "report.md"), str(out / "summary.json")]
    return summary


def grouping_counts(study_dir: str | Path, res: StudyResults) -> dict[tuple[str, str], dict[str, int]]:
    """``(model, row)`` to how many finished runs ended with each grouping (rows of grouped runs only)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for r in res.runs:
        path = Path(study_dir) / "runs" / r["hash"] / "grouping.jsonl"
        if r["state"] != "done" or not r.get("report", True) or not path.is_file():
            continue
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines:
            g = json.loads(lines[-1]).get("grouping")
            if g:
                counts = out.setdefault((r["model"], r["row"]), {})
                counts[g] = counts.get(g, 0) + 1
    return out


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in s)


def _write_csv(path: Path, cols: Sequence[str], rows: Sequence[str], cells: Mapping[str, Mapping[str, Stat]],
               best: Mapping[str, Sequence[str]]) -> None:
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["training_data", *[f"{c}_{k}" for c in cols for k in ("mean", "std", "n")], "best_in"])
        for row in rows:
            vals: list[Any] = [row]
            for c in cols:
                s = cells.get(row, {}).get(c)
                vals += [f"{100 * s.mean:.4f}", f"{100 * s.std:.4f}", s.n] if s else ["", "", 0]
            vals.append(";".join(c for c in cols if row in best.get(c, [])))
            w.writerow(vals)
