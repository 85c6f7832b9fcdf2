"""Model registry: ``@register_model`` factories, ``create_model(name, num_classes, **kw)`` and ``list_models()``.

Every family module (``crnn.py``, ``svtr.py``, ``cnn_ctc.py``) decorates its factories; importing
``cllstr.models`` imports the families so that the registry is complete.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "create_model", "list_models", "is_model", "model_entrypoint"]

ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {}


def register_model(fn: ModelFactory) -> ModelFactory:
    """Register ``fn`` under its function name; the factory takes ``num_classes`` and keyword overrides."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching the shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODELS


def model_entrypoint(name: str) -> ModelFactory:
    """The factory registered as ``name``; ``KeyError`` listing the known models otherwise."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name: str, num_classes: int, **kwargs: object) -> nn.Module:
    """Build the registered model ``name``.

    Args:
        name: A name from :func:`list_models` (``crnn``, ``svtr_tiny``...).
        num_classes: Output classes including the CTC blank (``Charset.num_classes``).
        **kwargs: Family-specific overrides (``in_chans``, ``img_size``...).

    Returns:
        An ``nn.Module`` mapping images ``(B, C, H, W)`` to logits ``(B, T, num_classes)``. It carries
        ``model_name`` and ``model_kwargs`` attributes so that checkpoints can rebuild it.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (blank + at least one token), got {num_classes}")
    model = model_entrypoint(name)(num_classes=num_classes, **kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model
