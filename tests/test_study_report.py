"""Study report: paper layout (every row and column), mean ± std over seeds, best marks, gains, CSV, JSON, plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from cllstr.scripts import SCRIPT_ORDER
from cllstr.study.presets import get_preset
from cllstr.study.report import _scope, stat, write_report
from cllstr.study.runner import StudyRunner
from cllstr.study.worker import EVAL_FILE, write_status

#: Made-up accuracies: joint beats mono on every language but LAT; seed 22 adds 0.02 everywhere.
MONO = {"ARA": 0.30, "BEN": 0.20, "CHI": 0.10, "HIN": 0.25, "JPN": 0.15, "KOR": 0.35, "LAT": 0.80}
GAIN = {"All": 0.10, "All but LAT": 0.05}


def fake_score(row: str, lang: str, seed: int) -> float:
    base = MONO[lang] + GAIN.get(row, 0.0)
    if row == "All" and lang == "LAT":
        base = MONO[lang] - 0.04
    return base + (0.02 if seed == 22 else 0.0)


def fake_study(root: Path, seeds: int = 2, skip: set[str] | None = None) -> StudyRunner:
    """A laid-out cll-joint study whose runs carry made-up ``eval.json`` results (no training)."""
    runner = StudyRunner(get_preset("cll-joint", scale=0.01, seeds=seeds), root, quiet=True)
    runner.layout()
    for run in runner.runs:
        if skip and run.mixture in skip:
            continue
        langs = {lang: {"accuracy": fake_score(run.row, lang, run.seed),
                        "one_minus_ned": fake_score(run.row, lang, run.seed) + 0.1,
                        "cer": 1.0 - fake_score(run.row, lang, run.seed) - 0.1, "samples": 10}
                 for lang in run.languages}
        (runner.run_dir(run) / EVAL_FILE).write_text(json.dumps({"languages": langs}), encoding="utf-8")
        write_status(runner.run_dir(run), "done", seconds=1.5)
    return runner


def table_lines(md: str, title: str) -> list[str]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("####") and title in line)
    out = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        out.append(line)
    return out


def test_stat_mean_and_sample_std() -> None:
    s = stat([0.1, 0.3])
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(math.sqrt(0.02)) and s.n == 2
    assert s.fmt() == "20.00 ± 14.14" and stat([0.5]).fmt() == "50.00" and stat([]) is None


def test_report_layout_rows_columns_best_and_std(tmp_path: Path) -> None:
    fake_study(tmp_path)
    summary = write_report(tmp_path)
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    table = table_lines(md, "word accuracy (%)")
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["Training data", *SCRIPT_ORDER, "Avg", "Avg low-resource"]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]] for line in table[2:]}
    assert list(rows) == ["Monolingual", "All", "All but LAT"]
    # mean ± std over seeds 21/22: ARA mono = 30 and 32
    assert rows["Monolingual"][0] == "31.00 ± 1.41"
    assert rows["All"][0] == "**41.00 ± 1.41**"  # best ARA
    assert rows["Monolingual"][6] == "**81.00 ± 1.41**"  # best LAT: joint loses there
    assert rows["All but LAT"][6] == "–"  # no LAT in that row
    assert all(cell != "–" for row in ("Monolingual", "All") for cell in rows[row])
    # Avg is over the row's own languages; Avg low-resource over the six non-LAT languages in every row
    low = [lang for lang in SCRIPT_ORDER if lang != "LAT"]
    assert rows["Monolingual"][7] == f"{100 * (sum(MONO.values()) / 7 + 0.01):.2f} ± 1.41"
    assert rows["Monolingual"][8] == f"{100 * (sum(MONO[x] for x in low) / 6 + 0.01):.2f} ± 1.41"
    assert rows["All but LAT"][7] == rows["All but LAT"][8].strip("*")
    assert rows["All"][8] == f"**{100 * (sum(MONO[x] for x in low) / 6 + 0.11):.2f} ± 1.41**"
    # CER: lower is better, so the best marks follow the same rows
    cer = table_lines(md, "CER (%)")
    cer_all = [c.strip() for c in cer[3].strip("|").split("|")]
    assert cer_all[0] == "All" and cer_all[1].startswith("**")
    assert summary["tables"]["SVTR-T"]["accuracy"]["best"]["ARA"] == ["All"]
    assert summary["tables"]["SVTR-T"]["cer"]["best"]["LAT"] == ["Monolingual"]
    assert summary["runs"] == {"total": 18, "done": 18, "failed": 0, "run_seconds": 27.0}


def test_gains_and_findings(tmp_path: Path) -> None:
    fake_study(tmp_path)
    summary = write_report(tmp_path)
    g = summary["gains"]["SVTR-T"]["accuracy"]
    assert set(g) == {"All", "All but LAT"} and g["All"]["baseline"] == "Monolingual"
    assert g["All"]["langs"]["KOR"]["mean"] == pytest.approx(0.10)
    assert g["All"]["langs"]["KOR"]["std"] == pytest.approx(0.0, abs=1e-9)
    assert g["All"]["langs"]["KOR"]["wins"] == 2
    assert g["All"]["langs"]["LAT"]["mean"] == pytest.approx(-0.04) and g["All"]["langs"]["LAT"]["wins"] == 0
    assert g["All"]["langs"]["Avg"]["mean"] == pytest.approx((6 * 0.10 - 0.04) / 7)
    assert g["All"]["langs"]["Avg low-resource"]["mean"] == pytest.approx(0.10)
    assert g["All but LAT"]["langs"]["Avg low-resource"]["mean"] == pytest.approx(0.05)
    assert "LAT" not in g["All but LAT"]["langs"]
    dcer = summary["gains"]["SVTR-T"]["cer"]["All"]["langs"]["ARA"]
    assert dcer["mean"] == pytest.approx(-0.10) and dcer["wins"] == 2  # lower CER counts as a win
    joint = [f for f in summary["findings"] if "**All**" in f][0]
    assert "beats **Monolingual** on most low-resource languages" in joint and "better on 6/6, tied on 0" in joint


def test_csv_json_and_plots_written(tmp_path: Path) -> None:
    fake_study(tmp_path, seeds=3)
    summary = write_report(tmp_path)
    with open(tmp_path / "report" / "tables" / "SVTR-T_accuracy.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["training_data"] for r in rows] == ["Monolingual", "All", "All but LAT"]
    assert rows[0]["LAT_n"] == "3" and float(rows[0]["LAT_mean"]) == pytest.approx(100 * (0.80 + 0.02 / 3))
    assert "ARA" in rows[1]["best_in"].split(";") and rows[2]["LAT_mean"] == ""
    data = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    assert data["columns"] == [*SCRIPT_ORDER, "Avg", "Avg low-resource"]
    assert data["rows"] == ["Monolingual", "All", "All but LAT"]
    assert data["files"] and all(not Path(f).is_absolute() and (tmp_path / "report" / f).is_file()
                                 for f in data["files"])
    pngs = [Path(p) for p in summary["files"] if p.endswith(".png")]
    assert {p.name for p in pngs} == {f"{kind}_SVTR-T{suffix}.png" for kind in ("gain_heatmap", "bars")
                                      for suffix in ("", "_one_minus_ned", "_cer")}
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_missing_runs_keep_rows_and_are_listed(tmp_path: Path) -> None:
    fake_study(tmp_path, seeds=1, skip={"All but LAT", "KOR only"})
    summary = write_report(tmp_path, plots=False)
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    table = table_lines(md, "word accuracy (%)")
    assert [line.split("|")[1].strip() for line in table[2:]] == ["Monolingual", "All", "All but LAT"]
    mono = [c.strip() for c in table[2].strip("|").split("|")]
    assert mono[SCRIPT_ORDER.index("KOR") + 1] == "–" and mono[-2:] == ["–", "–"]  # no Avg without every language
    assert "## Unfinished runs" in md and summary["runs"]["done"] == 7


def test_findings_cover_every_metric_and_say_tie(tmp_path: Path) -> None:
    """A metric with no difference anywhere (e.g. 0% accuracy everywhere) is called a tie; the other metrics still
    get their own finding (1-NED, ΔCER)."""
    runner = fake_study(tmp_path, seeds=1)
    for run in runner.runs:
        path = runner.run_dir(run) / EVAL_FILE
        data = json.loads(path.read_text(encoding="utf-8"))
        for scores in data["languages"].values():
            scores["accuracy"] = 0.0
        path.write_text(json.dumps(data), encoding="utf-8")
    findings = write_report(tmp_path)["findings"]
    joint = [f for f in findings if "**All**" in f]
    assert len(joint) == 3  # accuracy, 1-NED, CER
    assert "ties with **Monolingual** on every low-resource language in word accuracy" in joint[0]
    assert "tied on 6" in joint[0]
    assert "beats **Monolingual**" in joint[1] and "1-NED" in joint[1]
    assert "beats **Monolingual**" in joint[2] and "better on 6/6" in joint[2]


@pytest.mark.parametrize(("label", "every", "expected"), [
    ("low-resource", True, "every low-resource language"), ("low-resource", False, "most low-resource languages"),
    ("all languages", True, "all languages"), ("all languages", False, "most languages"),
    ("targets", True, "all targets"), ("targets", False, "most targets"), ("", False, "most languages"),
])
def test_finding_scope_reads_as_english(label: str, every: bool, expected: str) -> None:
    assert _scope(label, every) == expected
