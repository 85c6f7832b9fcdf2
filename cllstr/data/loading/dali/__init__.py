"""DALI backend: LMDB records → DALI decode/resize/augment (GPU "mixed" or CPU) →
:class:`~cllstr.data.loading.batch.Batch`.

``HAS_DALI`` tells whether ``nvidia.dali`` (package ``nvidia-dali-cuda130``) is installed; it is found without
importing it (that takes most of a second). The submodules that need DALI (``ops``, ``pipeline``, ``loader``,
``plugin``) load lazily, so importing this package never fails; ``source`` needs no DALI.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__all__ = [
    "DALI_MISSING",
    "HAS_DALI",
    "AugmentConfig",
    "DaliLoader",
    "build_dali_loader",
    "plugin_status",
    "require_dali",
]

DALI_MISSING = "NVIDIA DALI is not installed: pip install nvidia-dali-cuda130 (or: pip install 'cllstr[dali]')"


def _has_dali() -> bool:
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except ModuleNotFoundError:  # no ``nvidia`` namespace package at all
        return False


HAS_DALI: bool = _has_dali()

_EXPORTS = {"AugmentConfig": "ops", "DaliLoader": "pipeline", "build_dali_loader": "backend"}


def require_dali() -> None:
    """Import DALI, or raise ``ImportError`` with install instructions (also for an install that fails to load)."""
    if not HAS_DALI:
        raise ImportError(DALI_MISSING)
    try:
        importlib.import_module("nvidia.dali")
    except ImportError as e:
        raise ImportError(f"NVIDIA DALI is installed but does not import ({e}); reinstall nvidia-dali-cuda130") from e


def plugin_status() -> str:
    """``"loaded"``, or why cllstr's DALI plugin (:mod:`cllstr.data.loading.dali.plugin`) is not; imports DALI if
    installed."""
    if not HAS_DALI:
        return "not available (DALI is not installed)"
    try:
        from cllstr.data.loading.dali import plugin
    except ImportError as e:
        return f"not available (DALI does not import: {e})"
    return "loaded" if plugin.HAS_PLUGIN else f"not loaded ({plugin.PLUGIN_ERROR})"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cllstr.data.loading.dali' has no attribute {name!r}")
    require_dali()
    return getattr(importlib.import_module(f"cllstr.data.loading.dali.{_EXPORTS[name]}"), name)
