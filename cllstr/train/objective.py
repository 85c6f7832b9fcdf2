"""Training objectives by prediction head: how labels become targets, how the model is run on them, the loss.

The head is read from the model (:func:`cllstr.models.prediction_kind`): ``ctc`` models are run on the images alone
and trained with CTC (:mod:`cllstr.train.ctc`); ``attn`` models are run with teacher forcing and trained with
cross-entropy over the characters and an end token (:mod:`cllstr.train.attn`). Each objective counts the samples it
cannot learn from (``infeasible`` of ``seen``) and says why in ``infeasible_note``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from cllstr.models import prediction_kind
from cllstr.train.attn import AttnLoss, encode_attn_targets
from cllstr.train.ctc import CTCLoss, encode_targets

__all__ = ["Objective", "CTCObjective", "AttnObjective", "OBJECTIVES", "make_objective"]


class Objective:
    """Base: ``encode`` labels, ``run`` the model, compute the ``loss``; ``infeasible``/``seen`` counters."""

    infeasible_note = "cannot be learnt"

    def __init__(self, loss: CTCLoss | AttnLoss) -> None:
        self.criterion = loss

    @property
    def infeasible(self) -> int:
        return self.criterion.infeasible

    @infeasible.setter
    def infeasible(self, value: int) -> None:
        self.criterion.infeasible = int(value)

    @property
    def seen(self) -> int:
        return self.criterion.seen

    @seen.setter
    def seen(self, value: int) -> None:
        self.criterion.seen = int(value)

    def encode(self, charset: Any, labels: Sequence[str], scripts: Sequence[str] | None) -> Any:
        raise NotImplementedError

    def run(self, forward: Callable[..., torch.Tensor], images: torch.Tensor, enc: Any) -> torch.Tensor:
        """Logits ``(B, T, K)`` of ``forward`` (the model, maybe compiled) on ``images``."""
        return forward(images)

    def loss(self, logits: torch.Tensor, enc: Any) -> torch.Tensor:
        return self.criterion(logits, enc)


class CTCObjective(Objective):
    """CTC over the image columns; labels needing more frames than T are infeasible (their loss is zeroed)."""

    infeasible_note = "CTC-infeasible (label + repeats longer than the model's T); their loss is zeroed"

    def __init__(self, model: nn.Module) -> None:
        super().__init__(CTCLoss())

    def encode(self, charset: Any, labels: Sequence[str], scripts: Sequence[str] | None) -> Any:
        return encode_targets(charset, labels, scripts)


class AttnObjective(Objective):
    """Teacher-forced cross-entropy; labels longer than the decoder's ``max_length`` are left out of the loss."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(AttnLoss())
        self.max_length = int(model.max_length)
        self.sos_id = int(model.decoder.sos_id)
        self.infeasible_note = (f"longer than the attention decoder's max_length {self.max_length}; "
                                "they are left out of the loss")

    def encode(self, charset: Any, labels: Sequence[str], scripts: Sequence[str] | None) -> Any:
        return encode_attn_targets(charset, labels, scripts, self.max_length, self.sos_id)

    def run(self, forward: Callable[..., torch.Tensor], images: torch.Tensor, enc: Any) -> torch.Tensor:
        return forward(images, enc.inputs.to(images.device, non_blocking=True))


#: Objective class by the model's ``prediction`` attribute.
OBJECTIVES: dict[str, type[Objective]] = {"ctc": CTCObjective, "attn": AttnObjective}


def make_objective(model: nn.Module) -> Objective:
    """The objective of ``model``'s prediction head."""
    kind = prediction_kind(model)
    if kind not in OBJECTIVES:
        raise ValueError(f"no training objective for prediction head {kind!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[kind](model)
