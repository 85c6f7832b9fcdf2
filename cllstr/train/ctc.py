"""CTC loss with infeasible-sample accounting (targets from :func:`cllstr.text.ctc.encode_targets`).

A CTC alignment of a target with ``L`` tokens and ``R`` adjacent repeats (``"ll"`` in ``"hello"``) needs at least
``L + R`` frames, because a blank must separate repeated tokens. Samples whose targets need more frames than the
model emits get an infinite loss; like the reference (``CTCLoss(zero_infinity=True)``) we zero them, and we also
count them so that the trainer can warn (a model whose T is too short for the data silently learns nothing on them).

Targets are encoded in visual (left-to-right) order, since CTC aligns them monotonically with the image columns:
tokens of right-to-left scripts (Arabic) are reversed, as the reference ``CTCLabelConverter`` does.
"""

from __future__ import annotations

import torch

from cllstr.ops.ctc_loss import ctc_loss
from cllstr.text.ctc import EncodedTargets

__all__ = ["CTCLoss"]


class CTCLoss:
    """Mean CTC loss over ``(B, T, C)`` logits, accumulated in float32, counting infeasible samples.

    Runs :func:`cllstr.ops.ctc_loss` (the log-softmax fused in; the native kernel reads bfloat16 logits as they are).

    Attributes:
        infeasible: Infeasible samples seen since construction (or the last :meth:`reset`).
        seen: Samples seen.
    """

    def __init__(self, blank: int = 0, zero_infinity: bool = True) -> None:
        self.blank = blank
        self.zero_infinity = zero_infinity
        self.infeasible = 0
        self.seen = 0

    def reset(self) -> None:
        """Zero the counters."""
        self.infeasible = 0
        self.seen = 0

    def __call__(self, logits: torch.Tensor, enc: EncodedTargets) -> torch.Tensor:
        """Loss of one batch.

        Args:
            logits: ``(B, T, C)`` unnormalised scores (any float dtype).
            enc: Targets from :func:`encode_targets`.

        Returns:
            Scalar loss: per-sample negative log-likelihood divided by target length, averaged over the batch
            (``torch.nn.CTCLoss(reduction="mean")``), infeasible samples contributing 0.
        """
        b, t, _ = logits.shape
        if enc.lengths.numel() != b:
            raise ValueError(f"CTC targets cover {enc.lengths.numel()} samples but logits have batch {b}")
        self.seen += b
        self.infeasible += sum(1 for f in enc.frames if f > t)
        dev = logits.device
        input_lengths = torch.full((b,), t, dtype=torch.long, device=dev)
        return ctc_loss(logits, enc.targets.to(dev), input_lengths, enc.lengths.to(dev), blank=self.blank,
                        reduction="mean", zero_infinity=self.zero_infinity)
