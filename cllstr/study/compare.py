"""``cllstr study compare A B``: two studies, two runs, or a study against published numbers or findings.

A source is one of

* a study folder (``study.json``; also an exported results folder, :mod:`cllstr.study.results`),
* a run folder (``eval.json``): one row, named after the run's row label,
* a numbers CSV in long form: ``row,language,metric,value`` (values in percent) and optional ``model``, ``std``,
  ``n`` columns, e.g. a paper's table typed in,
* ``paper`` (the findings CSV shipped in the package, :data:`FINDINGS_FILE`) or a findings CSV of your own:
  one line per claim ``row`` vs ``baseline`` on a language group with the published ``direction`` (``+``: the row
  is better, ``-``: it has the lower value, for CER).

Two value sources give a side-by-side table per metric (rows matched by row label and language; models by label, or
paired when each side has one); a study and findings give, per claim, the study's seed-paired gain and whether
the published direction holds here.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cllstr.scripts import SCRIPT_ORDER
from cllstr.study.report import METRIC_TITLES, Stat, _gain_stats, build_tables, load_results, stat
from cllstr.study.spec import METRICS

__all__ = ["Values", "Finding", "load_source", "compare_values", "check_findings", "compare", "FINDINGS_FILE"]

FINDINGS_FILE = "paper_findings.csv"
GROUPS = {"low-resource": [s for s in SCRIPT_ORDER if s != "LAT"]}


@dataclass
class Values:
    """Per ``(model, row, language, metric)`` statistics (fractions) of one source; ``study``: its results."""

    name: str
    cells: dict[tuple[str, str, str, str], Stat] = field(default_factory=dict)
    study: object | None = None

    def models(self) -> list[str]:
        return list(dict.fromkeys(k[0] for k in self.cells))


@dataclass
class Finding:
    """One published claim: ``row`` vs ``baseline`` on ``languages`` in ``metric`` goes in ``direction``."""

    finding: str
    preset: str
    row: str
    baseline: str
    languages: str
    metric: str
    direction: str
    claim: str
    source: str


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: cannot read CSV: {e}") from None


def load_findings(path: Path | None = None) -> list[Finding]:
    """The shipped findings (``path`` None) or a findings CSV."""
    if path is None:
        rows = list(csv.DictReader(resources.files("cllstr.study").joinpath("data", FINDINGS_FILE)
                                   .read_text(encoding="utf-8").splitlines()))
        where = FINDINGS_FILE
    else:
        rows, where = _read_csv(path), str(path)
    out = []
    for i, r in enumerate(rows, 2):
        try:
            f = Finding(**{k: (r[k] or "").strip() for k in Finding.__dataclass_fields__})
        except (KeyError, TypeError):
            raise ValueError(f"{where} line {i}: needs columns {list(Finding.__dataclass_fields__)}") from None
        if f.direction not in ("+", "-") or f.metric not in METRICS:
            raise ValueError(f"{where} line {i}: direction must be + or - and metric one of {list(METRICS)}")
        out.append(f)
    return out


def _from_study(path: Path) -> Values:
    res = load_results(path)
    built = build_tables(res)
    vals = Values(str(path), study=(res, built))
    for model, by_metric in built["tables"].items():
        for metric, t in by_metric.items():
            for row, cells in t["cells"].items():
                for col, st in cells.items():
                    vals.cells[(model, row, col, metric)] = st
    return vals


def _from_run(path: Path) -> Values:
    report = json.loads((path / "eval.json").read_text(encoding="utf-8"))
    rec = json.loads((path / "run.json").read_text(encoding="utf-8")) if (path / "run.json").is_file() else {}
    model, row = rec.get("model") or report.get("model") or "model", rec.get("row") or path.name
    vals = Values(str(path))
    for lang, scores in report.get("languages", {}).items():
        for metric in METRICS:
            if metric in scores:
                vals.cells[(model, row, lang, metric)] = stat([float(scores[metric])])
    return vals


def _from_numbers(path: Path, rows: list[dict[str, str]]) -> Values:
    vals = Values(str(path))
    for i, r in enumerate(rows, 2):
        try:
            metric = r["metric"].strip()
            value = float(r["value"]) / 100.0
            std = float(r.get("std") or 0.0) / 100.0
            n = int(r.get("n") or 1)
            key = ((r.get("model") or "paper").strip(), r["row"].strip(), r["language"].strip(), metric)
        except (KeyError, ValueError, AttributeError):
            raise ValueError(f"{path} line {i}: needs row, language, metric and a numeric value (percent)") from None
        if metric not in METRICS:
            raise ValueError(f"{path} line {i}: unknown metric {metric!r}; known: {list(METRICS)}")
        vals.cells[key] = Stat(value, std, n, [value])
    return vals


def load_source(spec: str) -> Values | list[Finding]:
    """A study/run folder, a numbers CSV (:class:`Values`), or ``paper``/a findings CSV (list of :class:`Finding`).

    Raises:
        FileNotFoundError: ``spec`` is neither ``paper`` nor an existing folder or CSV file.
        ValueError: a CSV lacks the required columns.
    """
    if spec == "paper":
        return load_findings()
    path = Path(spec)
    if path.is_dir():
        if (path / "study.json").is_file():
            return _from_study(path)
        if (path / "eval.json").is_file():
            return _from_run(path)
        raise FileNotFoundError(f"{path}: neither a study folder (study.json) nor a run folder (eval.json)")
    if path.is_file() and path.suffix.lower() == ".csv":
        rows = _read_csv(path)
        if rows and "direction" in rows[0]:
            return load_findings(path)
        return _from_numbers(path, rows)
    raise FileNotFoundError(f"{spec}: not 'paper', a study or run folder, or a .csv file")


def _pairs(a: Values, b: Values) -> list[tuple[str, str]]:
    common = [m for m in a.models() if m in b.models()]
    if common:
        return [(m, m) for m in common]
    if len(a.models()) == 1 and len(b.models()) == 1:
        return [(a.models()[0], b.models()[0])]
    raise ValueError(f"no model in common ({a.models()} vs {b.models()}); compare sources with one model each")


def _order(keys: set[str], first: list[str]) -> list[str]:
    return [k for k in first if k in keys] + sorted(keys - set(first))


def compare_values(a: Values, b: Values, metrics: list[str] | None = None) -> str:
    """Markdown: per model pair and metric, ``| row | language | A | B | B − A |`` over the cells both have."""
    single = {len({k[1] for k in v.cells}) == 1 for v in (a, b)} == {True}  # two runs: pair their rows
    out = [f"A: `{a.name}`", "", f"B: `{b.name}`", ""]
    for ma, mb in _pairs(a, b):
        ra = {(k[1], k[2], k[3]): s for k, s in a.cells.items() if k[0] == ma}
        rb = {(k[1], k[2], k[3]): s for k, s in b.cells.items() if k[0] == mb}
        if single and ra:  # two runs (or one-row sources): B's row is compared with A's whatever its label
            row_a = next(iter(ra))[0]
            rb = {(row_a, lang, m): s for (_, lang, m), s in rb.items()}
        keys = sorted(set(ra) & set(rb))
        for metric in metrics or _order({k[2] for k in keys}, list(METRICS)):
            mk = [k for k in keys if k[2] == metric]
            if not mk:
                continue
            rows = list(dict.fromkeys(k[0] for k in ra if k in rb))  # A's row order
            langs = _order({k[1] for k in mk}, list(SCRIPT_ORDER))
            title = ma if ma == mb else f"A {ma} vs B {mb}"
            out += [f"### {title}: {METRIC_TITLES.get(metric, metric)} (%)", "",
                    "| Training data | Language | A | B | B − A |", "|---|---|---:|---:|---:|"]
            for row in rows:
                for lang in langs:
                    k = (row, lang, metric)
                    if k in ra and k in rb:
                        d = 100 * (rb[k].mean - ra[k].mean)
                        out.append(f"| {row} | {lang} | {ra[k].fmt()} | {rb[k].fmt()} | {d:+.2f} |")
            out.append("")
    if len(out) == 4:
        raise ValueError(f"{a.name} and {b.name} have no (row, language, metric) in common")
    return "\n".join(out)


def _expand(f: Finding, rows: list[str]) -> list[tuple[str, str, str | None]]:
    """``(row, baseline, X)`` of a finding, ``{X}``/``{K}`` filled from the study's row labels."""
    m = re.search(r"\{([XK])\}", f.row)
    if not m:
        return [(f.row, f.baseline, None)]
    pat = re.escape(f.row).replace(re.escape(m.group(0)), "(.+)")
    out = []
    for row in rows:
        hit = re.fullmatch(pat, row)
        if hit and f.baseline.replace(m.group(0), hit.group(1)) in rows:
            out.append((row, f.baseline.replace(m.group(0), hit.group(1)), hit.group(1) if m.group(1) == "X" else None))
    return out


def check_findings(study: Values, findings: list[Finding]) -> str:
    """Markdown: per finding that applies to the study, the seed-paired gain and whether its direction holds."""
    if study.study is None:
        raise ValueError(f"{study.name}: findings are checked against a study folder, not a run or a CSV")
    res, built = study.study
    columns = built["columns"]
    out = [f"Study `{study.name}` ({res.spec.name}, seeds {res.spec.seeds}) against the published findings.", "",
           "| # | Model | Comparison | Languages | Published | Here: gain (points) | Seeds agreeing | Holds here? |",
           "|---|---|---|---|---|---:|---:|---|"]
    n = 0
    for f in findings:
        if f.preset != res.spec.name:
            continue
        for row, base, x in _expand(f, res.rows):
            group = GROUPS.get(f.languages) or (res.spec.report.focus if f.languages == "targets" else columns)
            langs = [lang for lang in group if lang in columns and lang != x]
            for model in res.models:
                diffs = _seed_diffs(res, model, row, base, f.metric, langs)
                if not diffs:
                    continue
                st = stat(diffs)
                sign = 1 if f.direction == "+" else -1
                agree = sum(sign * d > 0 for d in diffs)
                verdict = "yes" if sign * st.mean > 0 else ("tie" if st.mean == 0 else "no")
                if verdict == "yes" and agree < len(diffs):
                    verdict = "yes (not in every seed)"
                out.append(f"| {f.finding} | {model} | {row} vs {base} | {', '.join(langs)} | "
                           f"{METRIC_TITLES[f.metric]} {f.direction} | {st.fmt(signed=True)} | {agree}/{len(diffs)} | "
                           f"{verdict} |")
                n += 1
    if not n:
        raise ValueError(f"{study.name}: no finding applies to study {res.spec.name!r} with finished runs")
    claims = {f.finding: f for f in findings if f.preset == res.spec.name}
    out += ["", *[f"- Finding {k}: {f.claim} ({f.source})." for k, f in claims.items()], ""]
    return "\n".join(out)


def _seed_diffs(res: object, model: str, row: str, base: str, metric: str, langs: list[str]) -> list[float]:
    """Per seed, the mean over ``langs`` of ``row`` minus ``base`` (seeds where both have every language)."""
    g = _gain_stats(res, model, row, base, metric, langs, {"_": langs})
    return list(g["_"]["stat"].values) if "_" in g else []


def compare(a: str, b: str, metrics: list[str] | None = None) -> str:
    """The Markdown comparison of sources ``a`` and ``b`` (see the module doc)."""
    sa, sb = load_source(a), load_source(b)
    if isinstance(sa, list) and isinstance(sb, list):
        raise ValueError("both sources are findings; compare a study against 'paper'")
    if isinstance(sa, list) or isinstance(sb, list):
        study, findings = (sb, sa) if isinstance(sa, list) else (sa, sb)
        return check_findings(study, findings)
    return compare_values(sa, sb, metrics)
