"""Helpers shared by test modules."""

from __future__ import annotations

import pytest


def devices() -> list:
    """Parametrisation over devices: CPU always, CUDA with the ``cuda`` marker (skipped without a GPU)."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
