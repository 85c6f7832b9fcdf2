"""Cascade learning: initialise a model from another run's checkpoint, remapping the charset by token.

Every tensor of the state dict whose name and shape match is copied (between a single-head model and a grouped model
over the same backbone, the backbone's tensors are matched under the grouped model's ``encoder.`` prefix), BatchNorm
running statistics included (the reference copies ``named_parameters`` only and so drops them, which de-calibrates
BatchNorm after the transfer). The classifier modules of the model's registry entry
(:attr:`cllstr.models.registry.ModelInfo.classifier`: ``head``, ``Linear(F, num_classes)``, and for attention models
also the decoder's input embedding ``decoder.embed``, one row per class plus its start token) are remapped row by row:
the blank row and the row of every token present in both charsets are copied; rows of new tokens keep their fresh
initialisation. ``freeze=True`` stops the gradient of every copied parameter except these class-indexed ones, and
:func:`freeze_bn_stats` keeps the running statistics of fully frozen BatchNorm layers fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cllstr.checkpoint import load_checkpoint
from cllstr.models.registry import is_model, model_info

__all__ = ["CascadeReport", "init_from_checkpoint", "freeze_bn_stats", "class_row_prefixes"]


def class_row_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the tensors whose rows are the classes (class 0 first, possibly followed by extra
    input-only rows such as a start token), from the model's registry entry (``("head.",)`` for unregistered ones)."""
    name = getattr(model, "model_name", None)
    classifier = model_info(name).classifier if name is not None and is_model(name) else ("head",)
    return tuple(f"{c}." for c in classifier)


@dataclass
class CascadeReport:
    """What :func:`init_from_checkpoint` did."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    tokens_shared: int = 0
    tokens_new: int = 0

    def summary(self) -> str:
        """One line for the log."""
        return (f"init-from: {len(self.copied)} tensors copied, {len(self.skipped)} skipped, "
                f"{len(self.frozen)} frozen; classifier: {self.tokens_shared} shared tokens, {self.tokens_new} new")


def _remap_rows(new: torch.Tensor, old: torch.Tensor, old_tokens: list[str], new_tokens: list[str]) -> int:
    """Copy classifier rows by token (row 0 is the blank, rows after the classes are copied in order); returns the
    number of shared tokens."""
    old_index = {t: i + 1 for i, t in enumerate(old_tokens)}
    new[0] = old[0]
    extra = old.shape[0] - len(old_tokens) - 1
    if extra:
        new[new.shape[0] - extra:] = old[old.shape[0] - extra:]
    shared = 0
    for j, tok in enumerate(new_tokens, start=1):
        i = old_index.get(tok)
        if i is not None:
            new[j] = old[i]
            shared += 1
    return shared


ENCODER = "encoder."  # a grouped model's shared encoder: its backbone without the classifier


def _align_encoder(old_sd: dict[str, torch.Tensor], new_keys: Any) -> dict[str, torch.Tensor]:
    """Translate state-dict names between a single-head model and a grouped model over the same backbone: the
    backbone's tensors are ``X`` in one and ``encoder.X`` in the other (the single head's classifier has no
    counterpart in the grouped model, whose heads start fresh)."""
    new_grouped = any(k.startswith(ENCODER) for k in new_keys)
    old_grouped = any(k.startswith(ENCODER) for k in old_sd)
    if new_grouped and not old_grouped:
        return {ENCODER + k: v for k, v in old_sd.items()}
    if old_grouped and not new_grouped:
        return {k.removeprefix(ENCODER): v for k, v in old_sd.items() if k.startswith(ENCODER)}
    return dict(old_sd)


def init_from_checkpoint(model: nn.Module, tokens: list[str], path: str | Path, freeze: bool = False,
                         state: dict[str, Any] | None = None) -> CascadeReport:
    """Load weights of checkpoint ``path`` into ``model`` whose charset is ``tokens``.

    Args:
        model: The freshly built model (its classifier has ``len(tokens) + 1`` outputs).
        tokens: The new charset's tokens (class ``i`` is ``tokens[i - 1]``).
        path: A cllstr checkpoint.
        freeze: Freeze every copied parameter outside the classifier.
        state: An already loaded checkpoint (skips reading ``path``).

    Returns:
        A :class:`CascadeReport`.
    """
    ckpt = state if state is not None else load_checkpoint(path)
    old_sd = _align_encoder(ckpt["model"], model.state_dict().keys())
    old_tokens = list(ckpt["charset"]["tokens"])
    report = CascadeReport()
    class_rows = class_row_prefixes(model)
    new_sd = model.state_dict()
    with torch.no_grad():
        for name, tensor in new_sd.items():
            src = old_sd.get(name)
            if src is None:
                report.skipped.append(name)
            elif (class_rows and name.startswith(class_rows) and tensor.shape[1:] == src.shape[1:]
                  and src.shape[0] - len(old_tokens) == tensor.shape[0] - len(tokens) >= 1):
                shared = _remap_rows(tensor, src.to(tensor.dtype), old_tokens, tokens)
                if name.startswith(class_rows[0]):
                    report.tokens_shared = shared
                report.copied.append(name)
            elif src.shape == tensor.shape:
                tensor.copy_(src)
                report.copied.append(name)
            else:
                report.skipped.append(name)
    report.tokens_new = len(tokens) - report.tokens_shared
    if freeze:
        copied = set(report.copied)
        for name, p in model.named_parameters():
            if name in copied and not (class_rows and name.startswith(class_rows)):
                p.requires_grad_(False)
                report.frozen.append(name)
    return report


def freeze_bn_stats(model: nn.Module) -> None:
    """Put every BatchNorm layer whose parameters are all frozen in eval mode (call after ``model.train()``)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
