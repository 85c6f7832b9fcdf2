"""Script identification per word: accuracy and the 7x7 confusion matrix of a model's script head.

Models with a ``script_head`` (:class:`cllstr.models.grouped.GroupedRecognizer`) give script logits from
``model(images, return_all=True).script_logits``; the true script of a word is its loader's language when that is one
of ``SCRIPT_ORDER`` (``LAT``, ``SynthMLT_LAT``), else the batch's per-word script name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cllstr.device import autocast
from cllstr.scoring.reduce import Reducer, active
from cllstr.scripts import SCRIPT_ORDER

__all__ = ["ScriptIdReport", "has_script_head", "evaluate_script_id"]


@dataclass
class ScriptIdReport:
    """Script-identification results.

    Attributes:
        confusion: ``(t, t)`` counts, rows the true script, columns the predicted one (``SCRIPT_ORDER``).
    """

    confusion: list[list[int]]

    @property
    def total(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float:
        """Fraction of words whose script was identified (0 without words)."""
        n = self.total
        return sum(self.confusion[i][i] for i in range(len(self.confusion))) / n if n else 0.0

    def per_script(self) -> dict[str, float]:
        """Accuracy per true script that has words."""
        return {SCRIPT_ORDER[i]: row[i] / sum(row) for i, row in enumerate(self.confusion) if sum(row)}

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "per_script": self.per_script(), "confusion": self.confusion,
                "scripts": list(SCRIPT_ORDER)}

    def to_markdown(self) -> str:
        """The accuracy line and the confusion matrix (rows: true script) of the scripts that occur."""
        used = [i for i in range(len(SCRIPT_ORDER)) if sum(self.confusion[i]) or sum(r[i] for r in self.confusion)]
        names = [SCRIPT_ORDER[i] for i in used]
        per = " ".join(f"{k} {100 * v:.1f}" for k, v in self.per_script().items())
        lines = [f"script identification: {100 * self.accuracy:.2f}% of {self.total} words ({per})", "",
                 "| true \\ predicted | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
        lines += [f"| {SCRIPT_ORDER[i]} | " + " | ".join(str(self.confusion[i][j]) for j in used) + " |"
                  for i in used]
        return "\n".join(lines) + "\n"


def has_script_head(model: nn.Module) -> bool:
    """Whether ``model`` identifies scripts."""
    return isinstance(getattr(model, "script_head", None), nn.Module)


def _true_script(language: str, script: str | None) -> int:
    for name in (language, script or ""):
        name = name.removeprefix("SynthMLT_")
        if name in SCRIPT_ORDER:
            return SCRIPT_ORDER.index(name)
    return -1


def evaluate_script_id(model: nn.Module, loaders: Mapping[str, Iterable[Any]], device: torch.device | str = "cpu",
                       amp_dtype: torch.dtype | None = None, channels_last: bool = False,
                       max_samples: int | None = None, reducer: Reducer | None = None) -> ScriptIdReport:
    """Confusion matrix of ``model``'s script head over each language's batches (words of unknown script skipped).

    Args:
        model: A model with a script head (:func:`has_script_head`); put in eval mode and restored afterwards.
        loaders: Language name to an iterable of batches with ``.images`` (and ``.scripts``).
        max_samples: Stop each language after this many samples.
        reducer: Distributed evaluation: ``loaders`` hold this rank's share (capped in the loaders); every rank gets
            the confusion matrix of all the ranks' samples (:func:`cllstr.scoring.evaluate.evaluate_loaders`).
    """
    if active(reducer) and max_samples is not None:
        raise ValueError("distributed evaluation caps the samples in the loaders (max_samples=None here)")
    device = torch.device(device)
    t = len(SCRIPT_ORDER)
    confusion = [[0] * t for _ in range(t)]
    was_training = model.training
    model.eval()
    try:
        for language, loader in loaders.items():
            seen = 0
            for batch in loader:
                n = len(batch.labels) if max_samples is None else min(len(batch.labels), max_samples - seen)
                if n <= 0:
                    if max_samples is not None:
                        break
                    continue  # a rank's empty share of a last, short batch
                images = batch.images[:n].to(device)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode(), autocast(device, amp_dtype):
                    pred = model(images, return_all=True).script_logits.float().argmax(dim=-1).tolist()
                scripts = list(getattr(batch, "scripts", None) or [None] * n)
                for i, p in enumerate(pred):
                    true = _true_script(language, scripts[i] if i < len(scripts) else None)
                    if true >= 0:
                        confusion[true][int(p)] += 1
                seen += n
    finally:
        model.train(was_training)
    if active(reducer):
        flat = reducer.all_sum([float(v) for row in confusion for v in row])
        confusion = [[round(v) for v in flat[i * t:(i + 1) * t]] for i in range(t)]
    return ScriptIdReport(confusion)
