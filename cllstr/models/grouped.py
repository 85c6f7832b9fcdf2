"""Task grouping over several recognition heads (*Task Grouping for Multilingual Text Recognition*, Huang et al.).

One shared encoder — the feature part of any registered CTC backbone, i.e. that model with its classifier replaced by
an identity (``cnn_ctc``: VGG columns; ``crnn``: VGG + its BiLSTMs; ``svtr_*``: the SVTR feature row; ``four_stage``
CTC combinations) — feeds ``m`` recognition heads (each its own BiLSTM and a classifier over the full charset) and a
script-identification head (7 scripts, :data:`cllstr.scripts.SCRIPT_ORDER`). A learnable ``t x m`` task-to-head matrix
``W`` (``task_logits``, zero = uniform initialisation) says which head reads which script; a fixed grouping (``groups``)
replaces it with a constant one-hot ``assignment`` buffer.

Outputs:

- ``forward(images, return_all=True)`` gives a :class:`GroupedOutput` (every head's logits and the script logits) for
  the trainer (:mod:`cllstr.train.grouping` holds the losses);
- ``forward(images)`` in eval mode routes each word to ``argmax(softmax(script_logits) @ softmax(W))`` and runs only
  the heads that receive words: logits ``(B, T, K)`` like any single-head CTC model, so eval, predict and export work
  unchanged (while tracing for export every head runs and the routed rows are gathered);
- ``forward(images)`` in training mode gives the soft mixture ``sum_j P_WM[:, j] * logits_j`` (differentiable in
  every parameter).

Pruned heads (``keep``, written by ``cllstr prune``, :mod:`cllstr.train.prune`): head ``j`` may classify only the
global classes ``keep[j]`` (the blank and the characters of its scripts); its classifier is that much smaller and a
``class_map`` buffer ``(m, K)`` (global class → local class, -1 when pruned) scatters its logits back to the global
charset, pruned classes getting :data:`PRUNED_LOGIT`. Every head thus still gives ``(B, T, K)`` logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from cllstr.models.crnn import BidirectionalLSTM, init_reference_
from cllstr.models.registry import create_model, register_model
from cllstr.scripts import SCRIPT_ORDER

__all__ = ["PRUNED_LOGIT", "GroupedOutput", "GroupedRecognizer", "grouped"]

#: Logit of a class a pruned head cannot output: finite (CTC and fp16 stay finite), yet never the argmax.
PRUNED_LOGIT = -1.0e4


class GroupedOutput(NamedTuple):
    """What the grouped model gives the trainer.

    Attributes:
        head_logits: ``(m, B, T, K)`` logits of every head.
        script_logits: ``(B, t)`` script-identification logits (columns in ``SCRIPT_ORDER``).
    """

    head_logits: torch.Tensor
    script_logits: torch.Tensor


class GroupedRecognizer(nn.Module):
    """Shared encoder, ``heads`` recognition heads, a script-identification head and the task-to-head matrix.

    Args:
        num_classes: Output classes of every head (CTC blank included).
        backbone: A registered CTC model whose feature part is the shared encoder.
        backbone_kwargs: Its overrides (``{"out_channels": 32}``).
        heads: Number of recognition heads ``m`` (>= 1).
        groups: Fixed grouping: for each head the script indices (into ``SCRIPT_ORDER``) it reads, a partition of all
            scripts; None learns ``W``.
        hidden_size: Width of each head's BiLSTM; 0 gives a classifier on the shared features alone.
        keep: Pruned heads: for each head the sorted global classes (blank 0 included) its classifier outputs, or
            None for a full head; None (the default) leaves every head full.
    """

    prediction = "ctc"  # how eval / predict / export read the routed logits
    objective = "grouped"  # how the trainer trains it (cllstr.train.objective.OBJECTIVES)

    def __init__(self, num_classes: int, backbone: str = "cnn_ctc", backbone_kwargs: dict | None = None,
                 heads: int = 3, groups: Sequence[Sequence[int]] | None = None, hidden_size: int = 256,
                 keep: Sequence[Sequence[int] | None] | None = None) -> None:
        super().__init__()
        if heads < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        if backbone == "grouped":
            raise ValueError("backbone must be a single-head model, not 'grouped'")
        encoder = create_model(backbone, 2, **(backbone_kwargs or {}))
        kind = str(getattr(encoder, "prediction", "ctc"))
        if kind != "ctc" or not isinstance(getattr(encoder, "head", None), nn.Linear):
            raise ValueError(f"backbone {backbone!r} is not a CTC model with a linear classifier 'head' "
                             f"(prediction {kind!r}); choose e.g. cnn_ctc, crnn, svtr_tiny")
        width = encoder.head.in_features
        encoder.head = nn.Identity()  # what is left maps images to the feature row (B, T, width)
        self.encoder = encoder
        self.num_tasks = len(SCRIPT_ORDER)
        self.num_heads = heads
        self.num_classes = num_classes
        self.keep = _check_keep(keep, heads, num_classes)
        self.heads = nn.ModuleList(self._head(width, hidden_size, num_classes if k is None else len(k))
                                   for k in self.keep)
        self.script_head = nn.Linear(width, self.num_tasks)
        init_reference_(self.heads)
        init_reference_(self.script_head)
        if groups is None:
            self.task_logits = nn.Parameter(torch.zeros(self.num_tasks, heads))
        else:
            self.register_buffer("assignment", _one_hot_groups(groups, self.num_tasks, heads))
        if any(k is not None for k in self.keep):  # derived from ``keep`` (a model kwarg): not in the state dict
            self.register_buffer("class_map", _class_map(self.keep, num_classes), persistent=False)

    @staticmethod
    def _head(width: int, hidden_size: int, num_classes: int) -> nn.Module:
        if hidden_size <= 0:
            return nn.Linear(width, num_classes)
        return nn.Sequential(BidirectionalLSTM(width, hidden_size, hidden_size), nn.Linear(hidden_size, num_classes))

    @property
    def pruned(self) -> bool:
        """Whether some head is pruned (``keep``)."""
        return hasattr(self, "class_map")

    def classifier(self, j: int) -> nn.Linear:
        """The final linear classifier of head ``j``."""
        head = self.heads[j]
        return head if isinstance(head, nn.Linear) else head[-1]

    def head_logits(self, j: int, feats: torch.Tensor) -> torch.Tensor:
        """Args: j: head; feats: ``(B, T, width)``. Returns: its logits ``(B, T, K)`` over the global charset."""
        y = self.heads[j](feats)
        if self.keep[j] is None:
            return y
        cmap = self.class_map[j]  # (K,)
        out = y.gather(-1, cmap.clamp(min=0).expand(*y.shape[:-1], cmap.shape[0]))
        return out.masked_fill(cmap < 0, PRUNED_LOGIT)

    def _all_heads(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.head_logits(j, feats) for j in range(self.num_heads)])  # (m, B, T, K)

    @property
    def fixed(self) -> bool:
        """Whether the grouping is fixed (no learnable ``W``)."""
        return not hasattr(self, "task_logits")

    def head_probs(self) -> torch.Tensor:
        """``(t, m)`` inference task-to-head probabilities: ``softmax(W)`` row-wise, or the fixed one-hot."""
        if self.fixed:
            return self.assignment
        return self.task_logits.float().softmax(dim=-1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, H, W)``. Returns: shared features ``(B, T, width)``, contiguous."""
        return self.encoder(images).contiguous()

    def route(self, script_logits: torch.Tensor) -> torch.Tensor:
        """``(B,)`` head of each word: ``argmax(softmax(script_logits) @ head_probs())``."""
        return (script_logits.float().softmax(dim=-1) @ self.head_probs()).argmax(dim=-1)

    def forward(self, images: torch.Tensor, return_all: bool = False) -> torch.Tensor | GroupedOutput:
        """Args: images: ``(B, C, H, W)``; return_all: give every head's logits (training).

        Returns: :class:`GroupedOutput`, or logits ``(B, T, K)`` (routed in eval mode, soft mixture in training).
        """
        feats = self.features(images)
        script_logits = self.script_head(feats.mean(dim=1))
        if return_all:
            return GroupedOutput(self._all_heads(feats), script_logits)
        if self.training:
            p_wm = script_logits.float().softmax(dim=-1) @ self.head_probs()  # (B, m)
            all_logits = self._all_heads(feats)  # (m, B, T, K)
            return torch.einsum("bm,mbtk->btk", p_wm.to(all_logits.dtype), all_logits)
        return self._routed(feats, script_logits)

    def forward_routed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference with the script: routed logits ``(B, T, K)`` and script logits ``(B, t)`` in one pass."""
        feats = self.features(images)
        script_logits = self.script_head(feats.mean(dim=1))
        return self._routed(feats, script_logits), script_logits

    def _routed(self, feats: torch.Tensor, script_logits: torch.Tensor) -> torch.Tensor:
        route = self.route(script_logits)
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling() or feats.shape[0] == 0:
            all_logits = self._all_heads(feats)  # (m, B, T, K)
            index = route.view(1, -1, 1, 1).expand(1, *all_logits.shape[1:])
            return all_logits.gather(0, index).squeeze(0)
        out: torch.Tensor | None = None
        for j in torch.unique(route).tolist():  # only the heads that receive words run
            idx = (route == j).nonzero(as_tuple=True)[0]
            y = self.head_logits(j, feats[idx])
            if out is None:
                out = y.new_zeros((feats.shape[0], *y.shape[1:]))
            out[idx] = y
        return out


def _one_hot_groups(groups: Sequence[Sequence[int]], tasks: int, heads: int) -> torch.Tensor:
    """``(tasks, heads)`` one-hot of a fixed grouping; ``groups`` must partition ``range(tasks)`` into ``heads``."""
    if len(groups) != heads:
        raise ValueError(f"groups lists {len(groups)} groups for {heads} heads")
    flat = [int(i) for g in groups for i in g]
    if sorted(flat) != list(range(tasks)):
        raise ValueError(f"groups must assign each of the {tasks} scripts to exactly one head, got {list(groups)}")
    out = torch.zeros(tasks, heads)
    for j, g in enumerate(groups):
        for i in g:
            out[int(i), j] = 1.0
    return out


def _check_keep(keep: Sequence[Sequence[int] | None] | None, heads: int, num_classes: int) -> list[list[int] | None]:
    """Validate ``keep``: one entry per head, each None or sorted unique classes in ``[0, num_classes)`` with 0."""
    if keep is None:
        return [None] * heads
    if len(keep) != heads:
        raise ValueError(f"keep lists {len(keep)} heads for {heads} heads")
    out: list[list[int] | None] = []
    for j, k in enumerate(keep):
        if k is None:
            out.append(None)
            continue
        k = [int(c) for c in k]
        if k != sorted(set(k)) or not k or k[0] != 0 or k[-1] >= num_classes:
            raise ValueError(f"keep[{j}] must be sorted unique classes in [0, {num_classes}) starting with the "
                             "blank 0")
        out.append(k)
    return out


def _class_map(keep: Sequence[Sequence[int] | None], num_classes: int) -> torch.Tensor:
    """``(m, K)`` global class → local class of each head (identity for a full head, -1 for a pruned class)."""
    out = torch.full((len(keep), num_classes), -1, dtype=torch.long)
    for j, k in enumerate(keep):
        if k is None:
            out[j] = torch.arange(num_classes)
        else:
            out[j, torch.tensor(k, dtype=torch.long)] = torch.arange(len(k))
    return out


# One classifier per head (``heads.<j>``), each over its own group's classes: no single class-row module.
@register_model(classifier=())
def grouped(num_classes: int, **kwargs: object) -> GroupedRecognizer:
    """Task-grouped multi-head CTC recogniser (shared ``cnn_ctc`` encoder by default, 3 heads, script ID)."""
    return GroupedRecognizer(num_classes, **kwargs)
