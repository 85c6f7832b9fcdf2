"""The ``cllstr`` CLI skeleton: version, doctor, and the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys

from typer.testing import CliRunner

import cllstr
from cllstr.cli.main import app
from cllstr.scripts import SCRIPT_ORDER

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"cllstr {cllstr.__version__}"


def test_doctor_reports_native_ops_and_every_script() -> None:
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and "native cpu kernels" in result.output
    assert "DALI plugin" in result.output
    for name in SCRIPT_ORDER:
        assert name in result.output


def test_console_script_is_installed() -> None:
    exe = shutil.which("cllstr", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe is not None, "the cllstr console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert cllstr.__version__ in out
