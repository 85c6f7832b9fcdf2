"""The CPU kernels' portable code paths: the parity tests of the CTC ops again, in a process whose torch CPU
capability is capped (``ATEN_CPU_CAPABILITY``), so that the AVX2 and baseline builds of the row scans run instead of
the AVX-512 ones this machine would pick."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common import require_kernel

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_ctc_parity_on_capped_cpu_capability(capability: str) -> None:
    require_kernel("ctc_greedy_decode", "cpu")
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert probe.stdout.strip() == capability.upper(), probe.stdout
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "native_matches_reference and not cuda",
         "tests/test_ops_ctc_greedy_decode.py", "tests/test_ops_ctc_beam_search.py", "tests/test_ops_ctc_loss.py"],
        env=env, capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
