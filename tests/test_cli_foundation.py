"""The ``cllstr`` CLI skeleton: version, doctor, and the console script."""

from __future__ import annotations

import shutil
import subprocess
import sys

from typer.testing import CliRunner

import cllstr
from cllstr.cli.main import app
from cllstr.scripts import SCRIPT_ORDER
from tests import common

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"cllstr {cllstr.__version__}"


def _doctor_rows() -> dict[str, str]:
    """``cllstr doctor``'s table rows as ``{first cell: second cell}``."""
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) >= 2 and cells[0]:
            rows[cells[0]] = cells[1]
    rows["_output"] = result.output
    return rows


def test_doctor_reports_native_ops_and_every_script() -> None:
    from cllstr import ops
    from cllstr.data.loading.dali import plugin_status
    from cllstr.scripts import SCRIPTS
    from cllstr.synth.fonts import find_fonts

    rows = _doctor_rows()
    assert rows["native library"] == ("loaded" if ops.HAS_NATIVE else f"not loaded ({ops.NATIVE_ERROR})")
    for device in ("cpu", "cuda"):
        assert rows[f"native {device} kernels"] == ("yes" if ops.has_kernel("ctc_greedy_decode", device) else "no")
    assert rows["DALI plugin (CPU resize)"] == plugin_status()
    for name in SCRIPT_ORDER:
        assert rows[name] == str(len(find_fonts(SCRIPTS[name])))
    if common.REQUIRE_NATIVE:  # what `make build` provides must show up as present
        assert rows["native library"] == "loaded" and rows["native cpu kernels"] == "yes"
        assert rows["DALI plugin (CPU resize)"] == "loaded"


def test_doctor_rows_follow_what_is_missing(monkeypatch) -> None:
    import cllstr.data.loading.dali as dali
    import cllstr.ops as ops
    import cllstr.synth.fonts as fonts

    real_find = fonts.find_fonts

    def no_korean(script, *args, **kwargs):
        if script.name == "KOR":
            raise fonts.FontNotFoundError("no font covers Hangul (simulated)")
        return real_find(script, *args, **kwargs)

    monkeypatch.setattr(ops, "HAS_NATIVE", False)
    monkeypatch.setattr(ops, "NATIVE_ERROR", "ImportError: simulated")
    monkeypatch.setattr(ops, "has_kernel", lambda op, device: False)
    monkeypatch.setattr(dali, "plugin_status", lambda: "not loaded (simulated)")
    monkeypatch.setattr(fonts, "find_fonts", no_korean)
    rows = _doctor_rows()
    assert rows["native library"] == "not loaded (ImportError: simulated)"
    assert rows["native cpu kernels"] == rows["native cuda kernels"] == "no"
    assert rows["DALI plugin (CPU resize)"] == "not loaded (simulated)"
    assert rows["KOR"] == "0" and rows["LAT"] != "0"
    assert "no font for KOR" in rows["_output"]


def test_console_script_is_installed() -> None:
    exe = shutil.which("cllstr", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe is not None, "the cllstr console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert cllstr.__version__ in out
