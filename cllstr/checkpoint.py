"""Checkpoint files: atomic writes (temp file + rename) of a training state, checked reads, and the model in one.

The layer below training, evaluation and inference: all three read and write checkpoints through this module.

A checkpoint is a dict with ``format`` (``cllstr-ckpt/1``), ``model_name``, ``model_kwargs``, ``charset``
(``{"tokens": [...], "mode": ...}``), ``model`` (state dict), and for training checkpoints ``optimizer``,
``scheduler``, ``scaler``, ``rng`` (python/numpy/torch/cuda), ``data`` (data position), ``iteration``,
``best_score`` and ``config``. Inference needs only the first five entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cllstr.atomic import atomic_open
from cllstr.models import create_model
from cllstr.text.charset import Charset

__all__ = ["FORMAT", "LoadedModel", "load_checkpoint", "load_model", "save_checkpoint"]

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


@dataclass
class LoadedModel:
    """A checkpoint's model (weights loaded, on the CPU, in eval mode), its charset and its input format.

    Attributes:
        model: The registered model of ``state["model_name"]`` built with ``state["model_kwargs"]``.
        charset: The model's charset.
        image: ``img_h``, ``img_w``, ``rgb``, ``keep_ratio`` (the training data's; defaults 32, 100, RGB, fixed).
        state: The whole checkpoint dict.
    """

    model: torch.nn.Module
    charset: Charset
    image: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


#: Input format of a checkpoint that records none (the reference's 32x100 RGB fixed resize).
DEFAULT_IMAGE = {"img_h": 32, "img_w": 100, "rgb": True, "keep_ratio": False}


def load_model(path: str | Path) -> LoadedModel:
    """Read ``path`` and rebuild its model from the registry with the checkpoint's weights.

    Raises:
        FileNotFoundError / ValueError: a missing or unreadable checkpoint, or weights that do not fit the model.
    """
    state = load_checkpoint(path)
    charset = Charset(state["charset"]["tokens"], mode=state["charset"].get("mode", "codepoint"))
    model = create_model(state["model_name"], charset.num_classes, **state.get("model_kwargs", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path}: weights do not fit model {state['model_name']!r}: {e}") from e
    return LoadedModel(model.eval(), charset, {**DEFAULT_IMAGE, **state.get("image", {})}, state)
