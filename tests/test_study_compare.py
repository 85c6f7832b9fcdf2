"""``cllstr study compare``: studies, runs and numbers side by side; a study against the published findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.study.compare import compare, load_findings, load_source
from cllstr.study.presets import get_preset, list_presets
from cllstr.study.runner import StudyRunner
from cllstr.study.spec import expand
from cllstr.study.worker import EVAL_FILE, write_status

MONO = {"ARA": 0.30, "BEN": 0.20, "CHI": 0.10, "HIN": 0.25, "JPN": 0.15, "KOR": 0.35, "LAT": 0.80}


def fake_joint(root: Path, gain: dict[int, float], offset: float = 0.0, model: str | None = None) -> Path:
    """A cll-joint study with made-up results: row All = Monolingual + ``gain[seed]`` on every language."""
    spec = get_preset("cll-joint", scale=0.01, seeds=sorted(gain))
    if model:
        spec.models[0].label = model
    runner = StudyRunner(spec, root, quiet=True)
    runner.layout()
    for run in runner.runs:
        add = {"All": gain[run.seed], "All but LAT": gain[run.seed] / 2}.get(run.row, 0.0)
        langs = {lang: {"accuracy": MONO[lang] + add + offset, "cer": 0.5 - add, "samples": 10}
                 for lang in run.languages}
        (runner.run_dir(run) / EVAL_FILE).write_text(json.dumps({"languages": langs}), encoding="utf-8")
        write_status(runner.run_dir(run), "done", seconds=1.0)
    return root


def rows_of(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def test_study_against_paper_findings(tmp_path: Path) -> None:
    holds = compare(str(fake_joint(tmp_path / "a", {21: 0.10, 22: 0.04})), "paper")
    row = next(r for r in rows_of(holds) if r[0] == "1" and "All vs Monolingual" in r[2])
    assert row[1] == "SVTR-T" and row[3] == "ARA, BEN, CHI, HIN, JPN, KOR"
    assert row[5] == "+7.00 ± 4.24" and row[6] == "2/2" and row[7] == "yes"
    assert "Baek et al., ICASSP 2024" in holds
    mixed = compare(str(fake_joint(tmp_path / "b", {21: 0.02, 22: -0.01})), "paper")
    row = next(r for r in rows_of(mixed) if "All vs Monolingual" in r[2])
    assert row[6] == "1/2" and row[7] == "yes (not in every seed)"
    fails = compare("paper", str(fake_joint(tmp_path / "c", {21: -0.03, 22: -0.01})))
    row = next(r for r in rows_of(fails) if "All vs Monolingual" in r[2])
    assert row[5].startswith("-2.00") and row[6] == "0/2" and row[7] == "no"


def test_two_studies_side_by_side(tmp_path: Path) -> None:
    a = fake_joint(tmp_path / "a", {21: 0.10})
    b = fake_joint(tmp_path / "b", {21: 0.10}, offset=0.05)
    md = compare(str(a), str(b), ["accuracy"])
    table = rows_of(md)
    assert table[0] == ["Training data", "Language", "A", "B", "B − A"]
    ara = next(r for r in table if r[:2] == ["Monolingual", "ARA"])
    assert ara[2:] == ["30.00", "35.00", "+5.00"]
    assert all(r[4] == "+5.00" for r in table[1:])
    assert "CER" not in md


def test_study_against_typed_in_numbers_and_two_runs(tmp_path: Path) -> None:
    a = fake_joint(tmp_path / "a", {21: 0.10}, model="CRNN-h")
    csv_path = tmp_path / "paper.csv"
    csv_path.write_text("model,row,language,metric,value\nSVTR,Monolingual,KOR,accuracy,40.5\n"
                        "SVTR,All,KOR,accuracy,52.0\n", encoding="utf-8")
    md = compare(str(a), str(csv_path))
    assert "A CRNN-h vs B SVTR" in md
    table = rows_of(md)
    assert ["Monolingual", "KOR", "35.00", "40.50", "+5.50"] in table and ["All", "KOR", "45.00", "52.00", "+7.00"] \
        in table and len(table) == 3
    runs = {r.mixture: r.hash for r in expand(get_preset("cll-joint", scale=0.01))}
    md = compare(str(a / "runs" / runs["KOR only"]), str(a / "runs" / runs["All"]), ["accuracy"])
    assert ["Monolingual", "KOR", "35.00", "45.00", "+10.00"] in rows_of(md)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing"):
        load_source(str(tmp_path / "nothing"))
    bad = tmp_path / "bad.csv"
    bad.write_text("row,language\nAll,KOR\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        load_source(str(bad))
    with pytest.raises(ValueError, match="both sources are findings"):
        compare("paper", "paper")
    cli = CliRunner()
    res = cli.invoke(app, ["study", "compare", str(tmp_path / "nothing"), "paper"])
    assert res.exit_code == 1 and "nothing" in res.output
    res = cli.invoke(app, ["study", "compare", "paper", "paper", "--metric", "bleu"])
    assert res.exit_code == 2 and "--metric" in res.output


def test_cli_compare_writes_markdown(tmp_path: Path) -> None:
    a = fake_joint(tmp_path / "a", {21: 0.10, 22: 0.04})
    res = CliRunner().invoke(app, ["study", "compare", str(a), "paper", "--out", str(tmp_path / "c.md")])
    assert res.exit_code == 0, res.output
    assert "All vs Monolingual" in res.output and (tmp_path / "c.md").read_text(encoding="utf-8").strip() == \
        res.output.strip()


@pytest.mark.parametrize("protocol", ["gpu", "cpu"])
def test_every_shipped_finding_names_rows_of_its_preset(protocol: str) -> None:
    findings = load_findings()
    assert {f.finding for f in findings} >= {"1", "2", "3"}
    for f in findings:
        assert f.preset in list_presets()
        rows = {r.row for r in expand(get_preset(f.preset, protocol=protocol))}
        if "{" in f.row:
            stem = f.row.split("{")[0]
            assert any(r.startswith(stem) for r in rows), (f.row, sorted(rows))
        else:
            assert f.row in rows and f.baseline in rows, (f.row, f.baseline, sorted(rows))
