"""``cllstr demo`` end to end at a tiny size: synthesise → train → evaluate → table; a re-run reuses everything."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.scripts import SCRIPT_ORDER

runner = CliRunner()


def test_demo_end_to_end_and_idempotent(tmp_path: Path) -> None:
    args = ["demo", "--out", str(tmp_path), "--scale", "0.002", "--iters", "2", "--batch-size", "8",
            "--val-interval", "2", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert sorted(report["languages"]) == sorted(SCRIPT_ORDER)
    table = (tmp_path / "eval.md").read_text(encoding="utf-8")
    for name in SCRIPT_ORDER:
        assert f"| {name} |" in table
    # Only the mixture's datasets were rendered: the 7 MLT19-like sets, no synthetic pool.
    rendered = sorted(p.name for p in (tmp_path / "data" / "training").iterdir() if not p.name.endswith(".tmp"))
    assert rendered == sorted(SCRIPT_ORDER)
    # What the model reads: one sheet with a block per script, sample crops and the predict command for them.
    from PIL import Image

    sheet = Image.open(tmp_path / "reads.png")
    assert sheet.width >= 400 and sheet.height >= 7 * 60
    crops = sorted((tmp_path / "samples").glob("*.png"))
    assert {p.name.split("_")[0] for p in crops} == set(SCRIPT_ORDER)
    assert f"cllstr predict -m {tmp_path / 'run'}" in result.output
    predicted = runner.invoke(app, ["predict", "-m", str(tmp_path / "run" / "last.pt"), *map(str, crops)])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.splitlines()) == len(crops)
    ckpt = tmp_path / "run" / "last.pt"
    mtime = ckpt.stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert ckpt.stat().st_mtime_ns == mtime, "a finished demo run was trained again"
