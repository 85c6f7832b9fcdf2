"""Generation into LMDB: the mlt19-mini tree, validation of every store, worker-count independence, resume, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.data.store.reader import LmdbReader
from cllstr.data.store.validate import validate_lmdb
from cllstr.data.store.writer import LmdbWriter
from cllstr.scripts import SCRIPT_ORDER
from cllstr.synth.generate import generate
from cllstr.synth.profiles import DatasetSpec, mlt19_mini


def _records(path: Path) -> list[tuple[str, bytes]]:
    r = LmdbReader(path)
    try:
        return [(r[i].label, r[i].image) for i in range(len(r))]
    finally:
        r.close()


def test_mlt19_mini_tree_every_lmdb_validates(tmp_path):
    specs = mlt19_mini(scale=0.0001, seed=0, min_size=2)
    results = generate(specs, tmp_path, workers=1, progress=False)
    expected = {f"{split}/{lang}" for split in ("training", "validation", "evaluation") for lang in SCRIPT_ORDER}
    expected |= {f"training/SynthMLT_{lang}" for lang in SCRIPT_ORDER}
    assert {s.relpath for s in specs} == expected
    for spec, res in zip(specs, results, strict=True):
        report = validate_lmdb(tmp_path / spec.relpath)
        assert report.ok, (spec.relpath, report.errors())
        assert report.num_samples == spec.size == res.written
        meta = LmdbReader(tmp_path / spec.relpath).meta
        assert meta["script"] == spec.scripts[0] and meta["synth"]["style"] == spec.style


def test_output_does_not_depend_on_worker_count(tmp_path):
    spec = [DatasetSpec("", ("KOR", "LAT"), "synthmlt", 10, 3)]
    generate(spec, tmp_path / "one", workers=1, chunk=3, progress=False)
    generate(spec, tmp_path / "two", workers=2, chunk=3, progress=False)
    assert _records(tmp_path / "one") == _records(tmp_path / "two")


class _Interrupt(Exception):
    pass


def _dying_writer(after: int):
    class Dying(LmdbWriter):
        def add(self, image: bytes, label: str, image_path: str | None = None) -> int:
            if self.num_samples >= after:
                raise _Interrupt
            return super().add(image, label, image_path)

    return Dying


def test_interrupted_run_resumes_to_the_same_lmdb(tmp_path):
    spec = [DatasetSpec("", ("ARA",), "real", 9, 5)]
    with pytest.raises(_Interrupt):
        generate(spec, tmp_path / "x", workers=1, chunk=2, progress=False, writer_factory=_dying_writer(5))
    assert not (tmp_path / "x").exists()
    res = generate(spec, tmp_path / "x", workers=1, chunk=2, progress=False)
    assert res[0].status == "resumed" and res[0].resumed_from == 5 and res[0].written == 4
    generate(spec, tmp_path / "ref", workers=1, chunk=4, progress=False)
    assert _records(tmp_path / "x") == _records(tmp_path / "ref")
    again = generate(spec, tmp_path / "x", workers=1, progress=False)
    assert again[0].status == "complete" and again[0].written == 0


def test_a_different_finished_dataset_is_not_overwritten_silently(tmp_path):
    generate([DatasetSpec("", ("LAT",), "clean", 3, 0)], tmp_path / "x", workers=1, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate([DatasetSpec("", ("LAT",), "clean", 4, 0)], tmp_path / "x", workers=1, progress=False)
    generate([DatasetSpec("", ("LAT",), "clean", 4, 0)], tmp_path / "x", workers=1, progress=False, overwrite=True)
    assert validate_lmdb(tmp_path / "x").num_samples == 4


def test_cli_scripts_mode_and_preview(tmp_path):
    runner = CliRunner()
    out = tmp_path / "x.lmdb"
    res = runner.invoke(
        app, ["synth", "--scripts", "KOR,LAT", "--n", "6", "--out", str(out), "-j", "1", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert validate_lmdb(out).ok and validate_lmdb(out).num_samples == 6
    res = runner.invoke(
        app,
        [
            "synth",
            "run",
            "--profile",
            "mlt19-mini",
            "--scale",
            "0.00005",
            "--out",
            str(tmp_path / "tree"),
            "-j",
            "1",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert validate_lmdb(tmp_path / "tree" / "evaluation" / "HIN").ok
    sheet = tmp_path / "sheet.png"
    res = runner.invoke(app, ["synth", "preview", "--out", str(sheet), "--scripts", "ARA,LAT", "--n", "2"])
    assert res.exit_code == 0, res.output
    assert sheet.stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth"], "--profile"),
        (["synth", "--profile", "mlt19-mini"], "--out"),
        (["synth", "--out", "x"], "exactly one"),
        (["synth", "--out", "x", "--profile", "nope"], "unknown synth profile"),
        (["synth", "--out", "x", "--scripts", "XYZ"], "unknown script"),
        (["synth", "--out", "x", "--scripts", "LAT", "--style", "fancy"], "unknown synth style"),
    ],
)
def test_cli_bad_input_is_a_clear_error(args, message):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert message in res.output
