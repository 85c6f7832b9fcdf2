"""Training objectives by prediction head: how labels become targets, how the model is run on them, the loss.

The head is read from the model (its ``objective`` attribute, else :func:`cllstr.models.prediction_kind`): ``ctc``
models are run on the images alone and trained with CTC (:mod:`cllstr.train.ctc`); ``attn`` models are run with
teacher forcing and trained with cross-entropy over the characters and an end token (:mod:`cllstr.train.attn`);
``grouped`` models (:mod:`cllstr.models.grouped`) are trained with the task-grouping losses of
:mod:`cllstr.train.grouping` and a script-identification cross-entropy. Each objective counts the samples it
cannot learn from (``infeasible`` of ``seen``) and says why in ``infeasible_note``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cllstr.models import prediction_kind
from cllstr.ops.ctc_loss import ctc_loss
from cllstr.text.ctc import EncodedTargets, encode_targets
from cllstr.train import grouping as G
from cllstr.train.attn import AttnLoss, encode_attn_targets
from cllstr.train.config import GroupingConfig
from cllstr.train.ctc import CTCLoss

__all__ = ["Objective", "CTCObjective", "AttnObjective", "GroupedObjective", "OBJECTIVES", "make_objective"]


class Objective:
    """Base: ``encode`` labels, ``run`` the model, compute the ``loss``; ``infeasible``/``seen`` counters."""

    infeasible_note = "cannot be learnt"

    def __init__(self, loss: CTCLoss | AttnLoss) -> None:
        self.criterion = loss

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs besides the model and optimiser (none for the plain objectives)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def on_validation(self, iteration: int) -> dict[str, Any] | None:
        """A row to log at each validation (``OUT/grouping.jsonl`` for the grouped objective), or None."""
        return None

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

    def __init__(self, model: nn.Module, grouping: GroupingConfig | None = None) -> None:
        super().__init__(CTCLoss())

    def encode(self, charset: Any, labels: Sequence[str], scripts: Sequence[str] | None) -> Any:
        return encode_targets(charset, labels, scripts)


class AttnObjective(Objective):
    """Teacher-forced cross-entropy; labels longer than the decoder's ``max_length`` are left out of the loss."""

    def __init__(self, model: nn.Module, grouping: GroupingConfig | None = None) -> None:
        super().__init__(AttnLoss())
        self.max_length = int(model.max_length)
        self.sos_id = int(model.decoder.sos_id)
        self.infeasible_note = (f"longer than the attention decoder's max_length {self.max_length}; "
                                "they are left out of the loss")

    def encode(self, charset: Any, labels: Sequence[str], scripts: Sequence[str] | None) -> Any:
        return encode_attn_targets(charset, labels, scripts, self.max_length, self.sos_id)

    def run(self, forward: Callable[..., torch.Tensor], images: torch.Tensor, enc: Any) -> torch.Tensor:
        return forward(images, enc.inputs.to(images.device, non_blocking=True))


@dataclass
class GroupedTargets:
    """CTC targets of a batch and the script of each word (index into ``SCRIPT_ORDER``, -1 unknown)."""

    ctc: EncodedTargets
    scripts: torch.Tensor

    @property
    def unknown(self) -> int:
        return self.ctc.unknown


class GroupedObjective(Objective):
    """Task grouping: the integrated loss over every head (eq. 8, averaged over the batch), the grouping loss on the
    Gumbel-Softmax ``P_TM`` (eq. 9) and the script-identification cross-entropy.

    The Gumbel noise comes from the objective's own generator (seeded from the run seed), saved by
    :meth:`state_dict` so that a resume draws the same noise; ``W`` lives in the model.
    """

    infeasible_note = CTCObjective.infeasible_note

    def __init__(self, model: nn.Module, grouping: GroupingConfig | None = None) -> None:
        super().__init__(CTCLoss())
        self.model = model
        self.options = grouping or GroupingConfig()
        self.generator = torch.Generator().manual_seed(torch.initial_seed() + 17)
        self.last_assignment: list[int] | None = None
        self.changes = 0

    def encode(self, charset: Any, labels: Sequence[str], scripts: Sequence[str] | None) -> GroupedTargets:
        ids = [G.script_index(label, scripts[i] if scripts else None) for i, label in enumerate(labels)]
        return GroupedTargets(encode_targets(charset, labels, scripts), torch.tensor(ids, dtype=torch.long))

    def run(self, forward: Callable[..., Any], images: torch.Tensor, enc: Any) -> Any:
        return forward(images, return_all=True)

    def per_word_ctc(self, head_logits: torch.Tensor, enc: EncodedTargets) -> torch.Tensor:
        """``(B, m)`` CTC loss of each word under each head, divided by its target length (as the mean CTC is)."""
        m, b, t, k = head_logits.shape
        if enc.lengths.numel() != b:
            raise ValueError(f"CTC targets cover {enc.lengths.numel()} samples but logits have batch {b}")
        self.criterion.seen += b
        self.criterion.infeasible += sum(1 for f in enc.frames if f > t)
        dev = head_logits.device
        lengths = enc.lengths.to(dev).repeat(m)
        nll = ctc_loss(head_logits.reshape(m * b, t, k), enc.targets.to(dev).repeat(m), torch.full(
            (m * b,), t, dtype=torch.long, device=dev), lengths, blank=self.criterion.blank, reduction="none")
        return (nll / lengths.clamp(min=1)).view(m, b).transpose(0, 1)

    def task_head_probs(self) -> torch.Tensor:
        """``P_TM`` for a training step: the fixed one-hot, or a Gumbel-Softmax sample of ``W``."""
        if self.model.fixed:
            return self.model.assignment
        return G.task_head_probs(self.model.task_logits, self.options.tau, True, self.generator)

    def loss(self, output: Any, enc: GroupedTargets) -> torch.Tensor:
        head_logits, script_logits = output
        o = self.options
        ctc = self.per_word_ctc(head_logits, enc.ctc)
        p_tm = self.task_head_probs()
        p_wm = G.word_head_probs(G.word_task_probs(enc.scripts, p_tm.shape[0]).to(p_tm.device), p_tm)
        total = G.integrated_loss(ctc, p_wm, o.epsilon) / max(ctc.shape[0], 1)
        if not self.model.fixed and o.weight:
            total = total + o.weight * G.grouping_loss(p_tm, o.mu)
        known = enc.scripts >= 0
        if o.script_weight and bool(known.any()):
            targets = enc.scripts.to(script_logits.device)
            total = total + o.script_weight * F.cross_entropy(script_logits.float(), targets, ignore_index=-1)
        return total

    def state_dict(self) -> dict[str, Any]:
        return {"gumbel_rng": self.generator.get_state(), "last_assignment": self.last_assignment,
                "changes": self.changes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "gumbel_rng" in state:
            self.generator.set_state(state["gumbel_rng"])
        self.last_assignment = state.get("last_assignment")
        self.changes = int(state.get("changes", 0))

    def on_validation(self, iteration: int) -> dict[str, Any]:
        """``P_TM = softmax(W)`` now, the grouping it gives and the assignment changes since the last validation."""
        with torch.no_grad():
            p_tm = self.model.head_probs().detach().float().cpu()
        now = G.assignment(p_tm)
        changes = 0 if self.last_assignment is None else G.assignment_changes(self.last_assignment, now)
        self.changes += changes
        self.last_assignment = now
        return {"iteration": iteration, "p_tm": [[round(v, 6) for v in row] for row in p_tm.tolist()],
                "assignment": now, "grouping": G.grouping_string(p_tm), "changes": changes,
                "total_changes": self.changes}


#: Objective class by the model's ``objective`` (else ``prediction``) attribute.
OBJECTIVES: dict[str, type[Objective]] = {"ctc": CTCObjective, "attn": AttnObjective, "grouped": GroupedObjective}


def make_objective(model: nn.Module, grouping: GroupingConfig | None = None) -> Objective:
    """The objective of ``model``'s prediction head (``grouping``: the task-grouping options, for grouped models)."""
    kind = str(getattr(model, "objective", prediction_kind(model)))
    if kind not in OBJECTIVES:
        raise ValueError(f"no training objective for prediction head {kind!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[kind](model, grouping)
