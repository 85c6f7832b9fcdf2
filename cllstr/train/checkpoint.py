"""Training checkpoints: atomic writes (temp file + rename) of the full training state, and RNG capture.

A checkpoint is a dict with ``format`` (``cllstr-ckpt/1``), ``model_name``, ``model_kwargs``, ``charset``
(``{"tokens": [...], "mode": ...}``), ``model`` (state dict), and for training checkpoints ``optimizer``,
``scheduler``, ``scaler``, ``rng`` (python/numpy/torch/cuda), ``data`` (data position), ``iteration``,
``best_score`` and ``config``. Inference needs only the first five entries.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cllstr.atomic import atomic_open

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "capture_rng", "restore_rng"]

FORMAT = "cllstr-ckpt/1"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a crash leaves either the old file or the new one, never a torn one.

    The state is written to a temporary file in the same directory, flushed and fsync'ed, then renamed over
    ``path`` (:func:`cllstr.atomic.atomic_open`).
    """
    path = Path(path)
    state = {"format": FORMAT, **state}
    with atomic_open(path, "wb") as f:
        torch.save(state, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, checking that it is one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several unrelated types for corrupt files
        raise ValueError(f"checkpoint {path} cannot be read: {e}") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} is not a cllstr checkpoint (format {FORMAT!r} expected)")
    for key in ("model_name", "model", "charset"):
        if key not in state:
            raise ValueError(f"checkpoint {path} lacks the key {key!r}")
    return state


def capture_rng() -> dict[str, Any]:
    """States of the python, numpy, torch (and CUDA, when present) random generators."""
    state: dict[str, Any] = {
        "python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore generator states captured by :func:`capture_rng`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
