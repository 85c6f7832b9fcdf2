"""Helpers shared by test modules."""

from __future__ import annotations

import functools
import importlib
import shutil
import subprocess
from types import ModuleType

import pytest


class OpLog:
    """Context manager recording every operator that reaches the dispatcher (what ran, not what was asked for)."""

    def __init__(self) -> None:
        self.ops: list = []
        self._mode = None

    def __enter__(self) -> OpLog:
        from torch.utils._python_dispatch import TorchDispatchMode

        log = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                log.ops.append(func)
                return func(*args, **(kwargs or {}))

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)


#: Set by ``conftest.py`` from ``--require-native`` / ``CLLSTR_REQUIRE_NATIVE=1``: a missing build fails, not skips.
REQUIRE_NATIVE = False


def devices() -> list:
    """Parametrisation over devices: CPU always, CUDA with the ``cuda`` marker (skipped without a GPU)."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def missing(what: str) -> None:
    """Skip because ``what`` is not built or installed on this machine; under ``--require-native`` fail instead."""
    if REQUIRE_NATIVE:
        pytest.fail(f"{what} (--require-native: `make build` should have provided it)", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def require_kernel(op: str, device: str) -> None:
    """Skip (or fail, under ``--require-native``) unless ``torch.ops.cllstr.<op>`` has a native ``device`` kernel."""
    from cllstr.ops import HAS_NATIVE, NATIVE_ERROR, has_kernel

    if not HAS_NATIVE:
        missing(f"native library not loaded: {NATIVE_ERROR}")
    if not has_kernel(op, device):
        missing(f"no native {device} kernel of cllstr::{op} in this build")


def require_module(name: str) -> ModuleType:
    """Import ``name`` at module level, or skip the module (fail it under ``--require-native``)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if REQUIRE_NATIVE:
            pytest.fail(f"{name} does not import ({e}); --require-native needs it", pytrace=False)
        pytest.skip(f"{name} is not installed ({e})", allow_module_level=True)


def require_dali_plugin() -> None:
    """Skip (or fail, under ``--require-native``) unless cllstr's DALI plugin (``fn.cllstr.text_resize``) loaded."""
    from cllstr.data.loading.dali import plugin

    if not plugin.HAS_PLUGIN:
        missing(f"DALI plugin not loaded: {plugin.PLUGIN_ERROR}")


@functools.cache
def font_installed(family: str) -> bool:
    """Whether fontconfig lists ``family`` (asked with ``fc-list`` directly, not through the code under test)."""
    exe = shutil.which("fc-list")
    if exe is None:
        return False
    out = subprocess.run([exe, ":", "family"], capture_output=True, text=True, timeout=60, check=False).stdout
    return any(family in [f.strip() for f in line.split(",")] for line in out.splitlines())


def require_font(family: str) -> None:
    """Skip (or fail, under ``--require-native``) unless the machine has the font ``family`` (``make fonts``)."""
    if not font_installed(family):
        missing(f"font {family!r} is not installed (`make fonts` installs fonts-noto-core fonts-noto-cjk)")


def fuzz_settings(max_examples: int, **kwargs):
    """Hypothesis settings of the fuzz suite: no deadline (2 shared cores), ``max_examples`` scaled by the environment
    variable ``CLLSTR_FUZZ_SCALE`` (e.g. 20 for a long local hunt; the default keeps the suite under two minutes)."""
    import os

    from hypothesis import HealthCheck, settings

    scale = float(os.environ.get("CLLSTR_FUZZ_SCALE", "1"))
    return settings(max_examples=max(1, round(max_examples * scale)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], **kwargs)


def spec(root, select_data=None, **fields):
    """A :class:`~cllstr.data.loading.spec.LoaderSpec` of ``root`` (+ ``select_data``) and spec ``fields``."""
    from cllstr.data.loading.spec import LoaderSpec

    return LoaderSpec(root=root, select_data=select_data, **fields)
