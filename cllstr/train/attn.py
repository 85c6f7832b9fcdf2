"""Attention-decoder targets and loss: cross-entropy over the character sequence followed by an end token.

A label of ``L`` tokens becomes the teacher-forcing inputs ``[sos, y_1, ..., y_L]`` and the targets
``[y_1, ..., y_L, eos]`` (``eos`` = class 0), padded to the batch's longest label with ignored positions. Tokens are
in visual order (right-to-left scripts reversed), as for CTC, so that one decoding rule serves both heads. Labels
longer than the decoder's ``max_length`` cannot be produced at inference; like CTC-infeasible samples they are
counted and contribute no loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cllstr.scripts import is_rtl

__all__ = ["IGNORE", "AttnTargets", "encode_attn_targets", "AttnLoss"]

#: Target value of padded and over-long positions (``F.cross_entropy``'s ``ignore_index``).
IGNORE = -100


@dataclass
class AttnTargets:
    """A batch of attention targets.

    Attributes:
        inputs: ``(B, L + 1)`` teacher-forcing input ids (``sos`` first; padding repeats ``eos`` = 0).
        targets: ``(B, L + 1)`` class ids, ``eos`` after each label, :data:`IGNORE` elsewhere.
        lengths: ``(B,)`` label lengths (without the end token).
        too_long: Per sample, whether the label exceeds ``max_length`` (its targets are all ignored).
        unknown: Label characters the charset does not know (skipped).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor
    too_long: list[bool]
    unknown: int = 0


def encode_attn_targets(charset: object, labels: Sequence[str], scripts: Sequence[str] | None = None,
                        max_length: int = 25, sos_id: int = 0) -> AttnTargets:
    """Encode ``labels`` with ``charset`` (unknown characters skipped) in visual order.

    Args:
        charset: A :class:`~cllstr.text.charset.Charset` (class 0 is the end token here).
        labels: Label texts.
        scripts: Per-label script codes (used for the right-to-left rule), or None.
        max_length: The decoder's longest label.
        sos_id: The decoder's start-token input id.
    """
    before = sum(charset.unknown.values()) if hasattr(charset, "unknown") else 0
    seqs: list[list[int]] = []
    for i, label in enumerate(labels):
        ids = list(charset.encode(label, on_unknown="skip"))
        if is_rtl(label, scripts[i] if scripts else None):
            ids.reverse()
        seqs.append(ids)
    unknown = (sum(charset.unknown.values()) if hasattr(charset, "unknown") else 0) - before
    too_long = [len(s) > max_length for s in seqs]
    width = min(max((len(s) for s in seqs), default=0), max_length) + 1
    inputs = torch.zeros(len(seqs), width, dtype=torch.long)
    targets = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    inputs[:, 0] = sos_id
    for b, ids in enumerate(seqs):
        ids = ids[: width - 1]
        if ids:
            inputs[b, 1:1 + len(ids)] = torch.tensor(ids)
        if not too_long[b]:
            if ids:
                targets[b, : len(ids)] = torch.tensor(ids)
            targets[b, len(ids)] = 0
    return AttnTargets(inputs, targets, torch.tensor([len(s) for s in seqs], dtype=torch.long), too_long, unknown)


class AttnLoss:
    """Mean token cross-entropy of ``(B, L + 1, K)`` logits, in float32, counting over-long samples.

    Attributes:
        infeasible: Over-long samples seen since construction (or :meth:`reset`).
        seen: Samples seen.
    """

    def __init__(self) -> None:
        self.infeasible = 0
        self.seen = 0

    def reset(self) -> None:
        """Zero the counters."""
        self.infeasible = 0
        self.seen = 0

    def __call__(self, logits: torch.Tensor, enc: AttnTargets) -> torch.Tensor:
        """Cross-entropy averaged over the non-ignored target tokens (0 when there are none)."""
        b, steps, k = logits.shape
        if enc.targets.shape != (b, steps):
            raise ValueError(f"attention targets have shape {tuple(enc.targets.shape)} but logits {(b, steps, k)}")
        self.seen += b
        self.infeasible += sum(enc.too_long)
        targets = enc.targets.to(logits.device)
        if not bool((targets != IGNORE).any()):
            return logits.float().sum() * 0.0
        return F.cross_entropy(logits.float().reshape(-1, k), targets.reshape(-1), ignore_index=IGNORE)
