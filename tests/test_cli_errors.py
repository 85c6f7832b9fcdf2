"""The error policy of every command, swept with bad input: one ``error: ...`` line on stderr naming what is wrong,
exit 2 for usage errors and 1 for data/runtime errors, no traceback, and nothing left half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cllstr.cli.main import app
from tests.test_train_engine import make_data_root, png_of

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad")
    root = make_data_root(base / "data", ("LAT",), n_train=16, n_val=4)
    run = base / "run"
    res = runner.invoke(app, ["train", "-m", "cnn_ctc", "-d", str(root), "-s", "lang_L", "-b", "8", "-n", "2",
                              "--val-interval", "2", "-o", str(run), "--threads", "1", "--quiet",
                              "--set", "model_kwargs={out_channels: 32}"])
    assert res.exit_code == 0, res.output
    (base / "not_a_checkpoint.pt").write_text("hello")
    (base / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (base / "good.png").write_bytes(png_of("word", 1))
    (base / "bad.yaml").write_text("model: [unclosed\n")
    (base / "unknown_key.yaml").write_text("modle: crnn\n")
    (base / "study_bad.yaml").write_text("name: x\nrows: 3\n")
    (base / "gt_missing_images.tsv").write_text("nope1.png\tword\nnope2.png\tother\n")
    (base / "empty_dir").mkdir()
    (base / "not_lmdb").mkdir()
    (base / "not_lmdb" / "data.mdb").write_bytes(b"garbage" * 10)
    return {"base": base, "root": root, "ckpt": run / "best.pt"}


def _default_sigint() -> None:
    """The child gets Ctrl-C as a terminal's foreground job does, even when this test runs in a background job
    (which inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cases(e: dict[str, Path]) -> list[tuple[list[str], int, str]]:
    """(argv, exit code, a word the one-line message must contain)."""
    b, root, ck = e["base"], str(e["root"]), str(e["ckpt"])
    out = str(b / "out")
    return [
        (["--nope"], 2, "--nope"),
        (["nosuchcommand"], 2, "nosuchcommand"),
        (["train", "--nope"], 2, "--nope"),
        (["train", "-m", "crnnn", "-d", root], 2, "crnnn"),
        (["train", "-s", "lang_CBHJXKL", "-d", root], 2, "'X'"),
        (["train", "-s", "lang_L-nope_", "-d", root], 1, "nope_"),
        (["train", "-d", str(b / "missing_root")], 2, "missing_root"),
        (["train", "-d", root, "--batch-size", "x"], 2, "--batch-size"),
        (["train", "-d", root, "-n", "0"], 2, "--iterations"),
        (["train", "-d", root, "--cap", "LAT=abc"], 2, "LAT"),
        (["train", "-d", root, "--cap", "LAT"], 2, "NAME=COUNT"),
        (["train", "-d", root, "-s", "lang_L", "--batch-ratio", "0.5-x"], 2, "--batch-ratio"),
        (["train", "-d", root, "-s", "lang_L", "--batch-ratio", "0.5-0.5"], 2, "--batch-ratio"),
        (["train", "-d", root, "--set", "nosuch=1"], 2, "nosuch"),
        (["train", "-d", root, "--set", "optim"], 2, "optim"),
        (["train", "--config", str(b / "missing.yaml")], 2, "missing.yaml"),
        (["train", "--config", str(b / "bad.yaml")], 2, "bad.yaml"),
        (["train", "--config", str(b / "unknown_key.yaml")], 2, "modle"),
        (["train", "-d", root, "-o", str(b / "fresh_run"), "--resume"], 2, "last.pt"),
        (["train", "-d", root, "--init-from", str(b / "missing.pt")], 2, "missing.pt"),
        (["eval", str(b / "missing.pt"), "-d", root], 2, "missing.pt"),
        (["eval", str(b / "not_a_checkpoint.pt"), "-d", root], 1, "not_a_checkpoint.pt"),
        (["eval", ck, "-d", str(b / "missing_root")], 2, "missing_root"),
        (["eval", ck, "-d", root, "--langs", "KOR"], 1, "KOR"),
        (["eval", ck, "-d", root, "--split", "nosplit"], 1, "nosplit"),
        (["predict", "-m", str(b / "missing.pt"), str(b / "good.png")], 2, "missing.pt"),
        (["predict", "-m", str(b / "not_a_checkpoint.pt"), str(b / "good.png")], 1, "not_a_checkpoint.pt"),
        (["predict", "-m", ck, "--format", "xml", str(b / "good.png")], 2, "--format"),
        (["predict", "-m", ck, "--folder", str(b / "missing_dir")], 2, "missing_dir"),
        (["predict", "-m", ck, "--folder", str(b / "empty_dir")], 1, "empty_dir"),
        (["predict", "-m", ck], 2, "--folder"),
        (["data", "create", str(b), str(b / "gt_missing_images.tsv"), str(b / "created.lmdb")], 1, "not found"),
        (["data", "create", str(b), str(b / "missing.tsv"), str(b / "created2.lmdb")], 1, "missing.tsv"),
        (["data", "create", str(b / "no_images"), str(b / "gt_missing_images.tsv"), out], 1, "no_images"),
        (["data", "inspect", str(b / "missing.lmdb")], 1, "missing.lmdb"),
        (["data", "inspect", str(b / "not_lmdb")], 1, "not_lmdb"),
        (["data", "charset", str(b / "missing.lmdb"), "-o", str(b / "cs.txt")], 1, "missing.lmdb"),
        (["synth"], 2, "--profile"),
        (["synth", "--profile", "mlt19-mini"], 2, "--out"),
        (["synth", "--profile", "nosuch", "--out", out], 2, "nosuch"),
        (["synth", "--scripts", "XYZ", "--out", out], 2, "XYZ"),
        (["synth", "--scripts", "LAT", "--n", "0", "--out", out], 2, "--n"),
        (["synth", "--profile", "mlt19-mini", "--scale", "-1", "--out", out], 2, "scale"),
        (["synth", "preview", "--scripts", "XYZ", "--out", str(b / "sheet.png")], 2, "XYZ"),
        (["study", "run"], 2, "--preset"),
        (["study", "run", "--preset", "cll-joint"], 2, "--out"),
        (["study", "run", str(b / "missing.yaml"), "--out", out], 1, "missing.yaml"),
        (["study", "run", str(b / "study_bad.yaml"), "--out", out], 1, "study_bad.yaml"),
        (["study", "run", "--preset", "nosuch", "--out", out], 2, "nosuch"),
        (["study", "run", "--preset", "cll-joint", "--out", out, "--set", "novalue"], 2, "--set"),
        (["study", "report", str(b / "missing_study")], 1, "missing_study"),
        (["demo", "--iters", "0", "--out", out], 2, "--iters"),
        (["demo", "-m", "crnnn", "--out", out], 2, "crnnn"),
        (["demo", "-s", "lang_Q", "--out", out], 2, "'Q'"),
        (["demo", "--batch-ratio", "0.5-0.5", "--out", out], 2, "--batch-ratio"),
    ]


def test_every_command_rejects_bad_input_with_one_line(env: dict[str, Path]) -> None:
    failures = []
    for argv, code, word in _cases(env):
        res = runner.invoke(app, argv)
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        ok = (res.exit_code == code and len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0]
              and "Traceback" not in res.output)
        if not ok:
            failures.append(f"{argv}: exit {res.exit_code} (want {code}), stderr {res.stderr!r}")
    assert not failures, "\n".join(failures)
    base = env["base"]
    for name in ("out", "created.lmdb", "created2.lmdb", "cs.txt", "sheet.png", "fresh_run"):
        assert not (base / name).exists(), f"{name} was written by a failing command"
    assert not list(base.glob("*.tmp")) and not list(base.glob(".*.tmp")), "a temporary file was left behind"


def test_predict_skips_an_unreadable_image_and_keeps_the_rest(env: dict[str, Path]) -> None:
    b = env["base"]
    out = b / "preds.json"
    res = runner.invoke(app, ["predict", "-m", str(env["ckpt"]), str(b / "good.png"), str(b / "corrupt.png"),
                              "--format", "json", "-o", str(out)])
    assert res.exit_code == 1
    assert "corrupt.png" in res.stderr and "Traceback" not in res.output
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [Path(r["path"]).name for r in rows] == ["good.png"]


def test_debug_shows_the_traceback(env: dict[str, Path]) -> None:
    argv = ["eval", str(env["base"] / "not_a_checkpoint.pt"), "-d", str(env["root"])]
    assert "Traceback" not in runner.invoke(app, argv).stderr
    assert "Traceback" in runner.invoke(app, ["--debug", *argv]).stderr
    assert "Traceback" in runner.invoke(app, argv, env={"CLLSTR_DEBUG": "1"}).stderr


def test_help_is_wide_with_examples_when_not_a_terminal() -> None:
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": None, "TERMINAL_WIDTH": None})
    assert res.exit_code == 0
    assert max(len(x) for x in res.stdout.splitlines()) > 100
    assert "Wall-clock budget; stops with a checkpoint." in res.stdout  # not cut at 80 columns
    assert "Examples" in res.stdout and "cllstr train -m svtr_tiny -d data" in res.stdout


def test_console_script_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "cllstr"
    res = subprocess.run([str(exe), "train", "-m", "crnnn"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    res = subprocess.run([str(exe), "eval", str(tmp_path / "x.pt"), "-d", str(tmp_path)], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "x.pt" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_resume_with_more_iterations_extends_the_schedule(env: dict[str, Path], tmp_path: Path) -> None:
    args = ["train", "-m", "cnn_ctc", "-d", str(env["root"]), "-s", "lang_L", "-b", "8", "--val-interval", "0",
            "-o", str(tmp_path), "--threads", "1", "--set", "model_kwargs={out_channels: 32}"]
    assert runner.invoke(app, [*args, "-n", "3", "--quiet"]).exit_code == 0
    res = runner.invoke(app, [*args, "-n", "5", "--resume"])
    assert res.exit_code == 0, res.output
    assert "recomputed for 5 iterations" in res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["iterations"] == 5
    res = runner.invoke(app, [*args, "-n", "4", "--resume"])
    assert res.exit_code == 1 and "iteration 5" in res.stderr and "--iterations 5" in res.stderr


def test_start_line_names_loader_device_precision_threads(env: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "-m", "cnn_ctc", "-d", str(env["root"]), "-s", "lang_L", "-b", "8", "-n", "1",
                              "--val-interval", "0", "-o", str(tmp_path), "--threads", "1", "--precision", "fp32",
                              "--set", "model_kwargs={out_channels: 32}"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if "parameters" in x)
    for word in ("device cpu", "precision fp32", "threads 1", "loader torch"):
        assert word in line, line


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_during_training_saves_and_says_how_to_resume(env: dict[str, Path], tmp_path: Path) -> None:
    """A real SIGINT to a training process: last.pt is written, the message names --resume, exit 130."""
    exe = Path(sys.executable).parent / "cllstr"
    args = [str(exe), "train", "-m", "cnn_ctc", "-d", str(env["root"]), "-s", "lang_L", "-b", "4", "-n", "100000",
            "--val-interval", "0", "-o", str(tmp_path), "--threads", "1", "--set", "model_kwargs={out_channels: 32}",
            "--set", "log_interval=1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    log = tmp_path / "log.jsonl"
    deadline = time.monotonic() + 180
    while not (log.is_file() and '"train"' in log.read_text(encoding="utf-8")):  # training is under way
        assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert (tmp_path / "last.pt").is_file()


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_during_synthesis_keeps_the_committed_part_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C to the whole process group (as a terminal sends it): exit 130, one message, no worker tracebacks; the
    same command then finishes the LMDB with every sample."""
    import lmdb

    exe = Path(sys.executable).parent / "cllstr"
    out = tmp_path / "lat.lmdb"
    cmd = [str(exe), "synth", "--scripts", "LAT", "--n", "8000", "--out", str(out), "--no-progress", "-j", "2",
           "--chunk", "64"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob("*.tmp/data.mdb")):  # rendering is under way
        assert proc.poll() is None and time.monotonic() < deadline, "synthesis did not start"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "ForkPoolWorker" not in err and err.startswith("interrupted: ")
    assert not out.exists()  # the finished store appears only when it is complete
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        assert int(txn.get(b"num-samples")) == 8000
    env.close()
