"""Classifier pruning of a grouped model (Huang et al., Table 4): each head keeps the classes of its scripts.

Once the task-to-head assignment is stable, head ``j`` reads only the scripts ``i`` with ``argmax_j softmax(W)[i]``
(or the fixed grouping's head), so its classifier needs only:

- the CTC blank (class 0);
- every character of those scripts (:meth:`cllstr.scripts.Script.contains` of any code point of the token, so a han
  character belongs to both CHI and JPN and CJK punctuation to CHI, JPN and KOR);
- every neutral character, one in no script's ranges (digits, punctuation, symbols, space), in every head.

A head that receives no script keeps the blank and the neutral characters. The pruned model
(``GroupedRecognizer(keep=...)``) gives the same logits as the original on the kept classes and
:data:`~cllstr.models.grouped.PRUNED_LOGIT` on the others, so a word routed to a head whose characters are all kept
decodes as before (greedy, whenever the original's argmax is a kept class).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cllstr.checkpoint import load_checkpoint, save_checkpoint
from cllstr.models import create_model
from cllstr.models.grouped import GroupedRecognizer
from cllstr.scripts import SCRIPT_ORDER, get_script
from cllstr.text.charset import Charset

__all__ = ["HeadPruning", "token_scripts", "head_keep", "prune_model", "prune_checkpoint", "format_report"]


@dataclass(frozen=True)
class HeadPruning:
    """What pruning did to one head: its scripts, classes and parameters before and after."""

    head: int
    scripts: tuple[str, ...]
    classes_before: int
    classes_after: int
    params_before: int
    params_after: int

    @property
    def ratio(self) -> float:
        """``params_before / params_after``."""
        return self.params_before / max(self.params_after, 1)


def token_scripts(token: str) -> frozenset[str]:
    """Scripts (names in ``SCRIPT_ORDER``) that some code point of ``token`` belongs to; empty for a neutral token."""
    return frozenset(n for n in SCRIPT_ORDER if any(get_script(n).contains(ch) for ch in token))


def head_keep(charset: Charset, scripts: set[str] | frozenset[str]) -> list[int]:
    """Sorted global classes a head reading ``scripts`` keeps: the blank, neutral tokens and tokens of ``scripts``."""
    keep = [0]
    for i, tok in enumerate(charset.tokens):
        owners = token_scripts(tok)
        if not owners or owners & scripts:
            keep.append(i + 1)
    return keep


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _classifier_prefix(model: GroupedRecognizer, j: int) -> str:
    """State-dict prefix of head ``j``'s final classifier (``heads.0.`` or ``heads.0.1.``)."""
    target = model.classifier(j)
    for name, mod in model.heads[j].named_modules():
        if mod is target:
            return f"heads.{j}." + (f"{name}." if name else "")
    raise AssertionError("classifier not found in its head")


def prune_model(model: GroupedRecognizer, model_kwargs: dict[str, Any],
                charset: Charset) -> tuple[GroupedRecognizer, dict[str, Any], list[HeadPruning]]:
    """Prune every head of ``model`` to its assigned scripts' classes.

    Args:
        model: A grouped model with ``charset.num_classes`` classes (already pruned heads are pruned further).
        model_kwargs: The kwargs it was built with (``create_model("grouped", K, **model_kwargs)``).
        charset: Its charset.

    Returns:
        The pruned model (eval mode), its model kwargs (with ``keep``) and one :class:`HeadPruning` per head.
    """
    if not isinstance(model, GroupedRecognizer):
        raise ValueError(f"pruning needs a grouped model, got {type(model).__name__}")
    num_classes = charset.num_classes
    if model.num_classes != num_classes:
        raise ValueError(f"model has {model.num_classes} classes but the charset {num_classes}")
    with torch.no_grad():
        owner = model.head_probs().argmax(dim=-1).tolist()  # head of each task
    keep: list[list[int]] = []
    head_scripts: list[tuple[str, ...]] = []
    for j in range(model.num_heads):
        names = tuple(SCRIPT_ORDER[i] for i, h in enumerate(owner) if h == j)
        wanted = head_keep(charset, set(names))
        old = model.keep[j]
        keep.append(wanted if old is None else [c for c in wanted if c in set(old)])
        head_scripts.append(names)
    kwargs = {**model_kwargs, "keep": keep}
    pruned = create_model("grouped", num_classes, **kwargs)
    state = model.state_dict()
    for j, k in enumerate(keep):
        old = model.keep[j]
        rows = torch.tensor(k if old is None else [old.index(c) for c in k], dtype=torch.long)
        prefix = _classifier_prefix(model, j)
        for name in ("weight", "bias"):
            if prefix + name in state:
                state[prefix + name] = state[prefix + name].index_select(0, rows.to(state[prefix + name].device))
    pruned.load_state_dict(state)
    report = [HeadPruning(j, head_scripts[j], model.classifier(j).out_features, len(keep[j]),
                          _params(model.heads[j]), _params(pruned.heads[j])) for j in range(model.num_heads)]
    return pruned.eval(), kwargs, report


def prune_checkpoint(path: str | Path, out: str | Path) -> list[HeadPruning]:
    """Read the grouped checkpoint ``path``, prune it and write an inference checkpoint ``out`` (model, model kwargs
    with ``keep``, charset, image format, and the pruning report under ``pruned``)."""
    state = load_checkpoint(path)
    if state["model_name"] != "grouped":
        raise ValueError(f"checkpoint {path} holds model {state['model_name']!r}, not a grouped model "
                         "(train one with --heads M --grouping gumbel|fixed:...)")
    charset = Charset(state["charset"]["tokens"], mode=state["charset"].get("mode", "codepoint"))
    kwargs = dict(state.get("model_kwargs", {}))
    model = create_model("grouped", charset.num_classes, **kwargs)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path}: weights do not fit model 'grouped': {e}") from e
    pruned, new_kwargs, report = prune_model(model, kwargs, charset)
    out_state: dict[str, Any] = {
        "model_name": "grouped", "model_kwargs": new_kwargs, "charset": state["charset"],
        "model": pruned.state_dict(), "image": state.get("image", {}),
        "pruned": {"from": str(path), "heads": [r.__dict__ for r in report]},
    }
    save_checkpoint(out_state, out)
    return report


def format_report(report: list[HeadPruning]) -> str:
    """A plain-text table: head, scripts, classes and parameters before → after, and the ratio; then the total."""
    rows = [("head", "scripts", "classes", "params before", "params after", "ratio")]
    for r in report:
        letters = "".join(get_script(n).letter for n in r.scripts) or "-"
        rows.append((str(r.head), letters, f"{r.classes_before} -> {r.classes_after}", f"{r.params_before:,}",
                     f"{r.params_after:,}", f"{r.ratio:.2f}x"))
    before = sum(r.params_before for r in report)
    after = sum(r.params_after for r in report)
    rows.append(("all", "", "", f"{before:,}", f"{after:,}", f"{before / max(after, 1):.2f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                     strict=True))).rstrip() for row in rows)
