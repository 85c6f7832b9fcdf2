"""Per-language evaluation: run a model over one loader per language, score it, write JSON and Markdown.

Ground truths are the NFC labels. The reference evaluates "only the characters included in char_set" (unknown
characters become ``[UNK]`` and are deleted from the ground truth); that protocol is ``gt_in_charset=True``. It is
only meaningful with a charset covering the benchmark (the reference's full MLT19 table): with a charset built from a
small training set it empties ground truths, and an empty prediction would then count as correct. So it is off by
default.
Averages are reported both as the macro mean over languages (the paper's "Avg." column) and sample-weighted
(pooled over all samples; for CER, total edits over total characters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cllstr.atomic import atomic_write_json, atomic_write_text
from cllstr.decoding.ctc import DecoderConfig
from cllstr.decoding.heads import check_decoder, decode_head, forward_logits
from cllstr.models import prediction_kind
from cllstr.scoring.metrics import MetricAccumulator, Scores
from cllstr.scoring.reduce import Reducer, active
from cllstr.scripts import SCRIPT_ORDER
from cllstr.text.charset import normalize_label

__all__ = ["EvalReport", "ground_truth", "evaluate_loaders", "to_markdown", "write_report"]

#: ``(language, images (B, C, H, W), ground truths, predictions, confidences)`` for every evaluated batch.
BatchHook = Callable[[str, torch.Tensor, Sequence[str], Sequence[str], Sequence[float]], None]

_METRICS = ("accuracy", "one_minus_ned", "cer", "accuracy_ci", "one_minus_ned_ci", "cer_ci")


@dataclass
class EvalReport:
    """Scores per language plus macro and sample-weighted averages."""

    languages: dict[str, Scores]
    weighted: Scores
    macro: dict[str, float]
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able mapping."""
        return {
            "languages": {k: v.to_dict() for k, v in self.languages.items()},
            "macro": self.macro,
            "weighted": self.weighted.to_dict(),
            "examples": self.examples,
            "seconds": self.seconds,
        }


def ground_truth(label: str, charset: object | None) -> str:
    """The NFC label, keeping only characters the charset can encode when ``charset`` is given."""
    label = normalize_label(label)
    if charset is None:
        return label
    return "".join(tok for tok, cls in charset.split(label) if cls is not None)


def evaluate_loaders(model: nn.Module, charset: object, loaders: Mapping[str, Iterable[Any]],
                     device: torch.device | str = "cpu", amp_dtype: torch.dtype | None = None,
                     channels_last: bool = False, gt_in_charset: bool = False, max_samples: int | None = None,
                     num_examples: int = 5, on_batch: BatchHook | None = None,
                     decoder: DecoderConfig | None = None, reducer: Reducer | None = None) -> EvalReport:
    """Evaluate ``model`` on each language's batches.

    Args:
        model: Images ``(B, C, H, W)`` to logits ``(B, T, charset.num_classes)``; put in eval mode here and
            restored to its previous mode afterwards.
        charset: The model's charset.
        loaders: Language name to an iterable of batches with ``.images`` and ``.labels``.
        device: Where to run.
        amp_dtype: Autocast dtype (None: fp32).
        channels_last: Feed NHWC images.
        gt_in_charset: Drop ground-truth characters outside the charset (the reference protocol, see above).
        max_samples: Stop each language after this many samples.
        num_examples: Keep this many (gt, prediction, confidence) examples per language.
        on_batch: Called with ``(language, images, gts, preds, confidences)`` for every batch (e.g. a
            :class:`cllstr.eval.gallery.GalleryCollector`).
        decoder: How logits become text (default: greedy CTC).
        reducer: Distributed evaluation (:mod:`cllstr.scoring.reduce`): ``loaders`` hold this rank's strided share
            of every batch (``ShardedBatchSampler``; cap them with their ``max_samples`` and pass None here), and
            every rank gets the scores and examples of all the ranks' samples together: those of one process.

    Returns:
        An :class:`EvalReport`; languages appear in the paper's order (ARA BEN CHI HIN JPN KOR LAT) first.
    """
    if active(reducer) and max_samples is not None:
        raise ValueError("distributed evaluation caps the samples in the loaders (max_samples=None here)")
    device = torch.device(device)
    prediction = prediction_kind(model)
    check_decoder(prediction, decoder)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    total = MetricAccumulator()
    accs: dict[str, MetricAccumulator] = {}
    # (batch, position in this rank's share, rank, example): the order of the samples in one process's batches
    keyed: dict[str, list[tuple[int, int, int, dict[str, Any]]]] = {}
    rank = reducer.rank if active(reducer) else 0
    order = [n for n in SCRIPT_ORDER if n in loaders] + [n for n in loaders if n not in SCRIPT_ORDER]
    try:
        for name in order:
            acc = accs[name] = MetricAccumulator()
            keyed[name] = []
            for b, batch in enumerate(loaders[name]):
                labels = list(batch.labels)
                if max_samples is not None:
                    room = max_samples - acc.n
                    if room <= 0:
                        break
                    labels = labels[:room]
                if not labels:  # a rank's share of a last, short batch
                    continue
                logits = forward_logits(model, batch.images[: len(labels)], device, amp_dtype, channels_last)
                preds, confs = decode_head(logits, charset, decoder, prediction)
                gts = [ground_truth(lb, charset if gt_in_charset else None) for lb in labels]
                acc.update(preds, gts)
                total.update(preds, gts)
                if on_batch is not None:
                    on_batch(name, batch.images[: len(labels)], gts, preds, confs)
                for j, (gt, pred, conf) in enumerate(zip(gts, preds, confs, strict=False)):
                    if len(keyed[name]) < num_examples:
                        keyed[name].append((b, j, rank, {"gt": gt, "pred": pred, "confidence": round(conf, 4)}))
    finally:
        model.train(was_training)
    if active(reducer):
        parts = [accs[name] for name in order] + [total]
        sums = reducer.all_sum([v for a in parts for v in a.state()])
        for i, a in enumerate(parts):
            a.load_state(sums[9 * i:9 * i + 9])
        everyone = reducer.gather(keyed)
        keyed = {name: sorted((e for k in everyone for e in k[name]), key=lambda e: e[:3]) for name in order}
    per_lang = {name: accs[name].compute() for name in order}
    examples = {name: [e[3] for e in keyed[name][:num_examples]] for name in order}
    macro = {m: (sum(getattr(s, m) for s in per_lang.values()) / len(per_lang) if per_lang else 0.0)
             for m in _METRICS}
    return EvalReport(per_lang, total.compute(), macro, examples, time.perf_counter() - start)


def to_markdown(report: EvalReport, title: str | None = None) -> str:
    """The per-language table (percentages): word accuracy, 1-NED, CER, their case-insensitive variants."""
    head = "| Language | Samples | Acc | 1-NED | CER | Acc (ci) | 1-NED (ci) | CER (ci) |"
    lines = ([f"### {title}", ""] if title else []) + [head, "|" + "---|" * 8]

    def row(name: str, n: int | str, vals: Mapping[str, float]) -> str:
        return f"| {name} | {n} | " + " | ".join(f"{100 * vals[m]:.2f}" for m in _METRICS) + " |"

    for name, s in report.languages.items():
        lines.append(row(name, s.samples, s.to_dict()))
    lines.append(row("**Macro avg**", len(report.languages), report.macro))
    lines.append(row("**Weighted**", report.weighted.samples, report.weighted.to_dict()))
    return "\n".join(lines) + "\n"


def write_report(report: EvalReport, json_path: str | Path | None = None, md_path: str | Path | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
    """Write the report as JSON (with ``extra`` metadata merged in) and/or as a Markdown table."""
    if json_path is not None:
        atomic_write_json(json_path, {**(dict(extra) if extra else {}), **report.to_dict()})
    if md_path is not None:
        atomic_write_text(md_path, to_markdown(report))
