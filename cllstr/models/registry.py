"""Model registry: ``@register_model`` factories with their metadata, ``create_model(name, num_classes, **kw)``,
``model_info(name)`` and ``list_models()``.

Every family module (``crnn.py``, ``svtr.py``, ``cnn_ctc.py``...) decorates its factories; importing
``cllstr.models`` imports the families so that the registry is complete. Each registration carries a
:class:`ModelInfo` (as timm's ``pretrained_cfg``): the default input size and channels, the sequence length T at that
size, the prediction head and the modules whose rows are the classes. The trainer builds a model for its data's input
with :meth:`ModelInfo.input_kwargs`, cascade learning remaps the :attr:`ModelInfo.classifier` rows, and the registry
tests check every model against its declaration.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = ["ModelInfo", "register_model", "create_model", "list_models", "is_model", "model_entrypoint", "model_info"]

ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {}
_INFO: dict[str, ModelInfo] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is, known without building it.

    Attributes:
        name: Registry name.
        prediction: ``ctc`` (per image column, class 0 = blank) or ``attn`` (per decoding step, class 0 = end).
        input_size: Default input ``(H, W)``.
        in_chans: Default input channels.
        seq_len: Output length T at ``input_size``.
        classifier: Modules (dotted names) whose weight rows are the classes, class 0 first.
        sized: The factory takes ``img_size=(H, W)`` (its layers depend on the input size), else any width works.
    """

    name: str
    prediction: str = "ctc"
    input_size: tuple[int, int] = (32, 100)
    in_chans: int = 3
    seq_len: int = 26
    classifier: tuple[str, ...] = ("head",)
    sized: bool = False

    def input_kwargs(self, img_h: int, img_w: int, in_chans: int) -> dict[str, Any]:
        """``create_model`` keywords that build this model for ``(in_chans, img_h, img_w)`` input; empty at the
        defaults, so that default runs record no extra keywords."""
        kwargs: dict[str, Any] = {}
        if in_chans != self.in_chans:
            kwargs["in_chans"] = in_chans
        if self.sized and (img_h, img_w) != self.input_size:
            kwargs["img_size"] = (img_h, img_w)
        return kwargs


def register_model(fn: ModelFactory | None = None, **info: Any) -> Any:
    """Register a factory under its function name, with :class:`ModelInfo` fields as keywords.

    Use as ``@register_model`` or ``@register_model(seq_len=25, sized=True)``; the factory takes ``num_classes``
    and keyword overrides.
    """

    def wrap(factory: ModelFactory) -> ModelFactory:
        name = factory.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _INFO[name] = ModelInfo(name, **info)
        _MODELS[name] = factory
        return factory

    return wrap(fn) if fn is not None else wrap


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of registered model ``name``; ``KeyError`` listing the known models otherwise."""
    model_entrypoint(name)
    return _INFO[name]


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
