"""Recognition metrics: word accuracy, 1-NED (ICDAR 2019 / CLL-STR ``test.py``), CER; case-(in)sensitive, NFC.

1-NED follows the reference exactly: per sample ``1 - ED(pred, gt) / max(len(pred), len(gt))`` (Levenshtein
distance on code points, as ``nltk.edit_distance``), contributing 0 when the ground truth or the prediction is
empty, averaged over samples. CER is the total edit distance over the total number of ground-truth code points.
Both strings are NFC-normalised first; the case-insensitive variants also case-fold them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from rapidfuzz.distance import Levenshtein

__all__ = ["edit_distance", "one_minus_ned", "Scores", "MetricAccumulator", "score"]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit insert/delete/substitute costs) between code-point strings."""
    return Levenshtein.distance(a, b)


def one_minus_ned(pred: str, gt: str) -> float:
    """The reference per-sample 1-NED: 0 if either string is empty, else ``1 - ED / max(len)``."""
    if not gt or not pred:
        return 0.0
    return 1.0 - edit_distance(pred, gt) / max(len(gt), len(pred))


def _prep(s: str, case_sensitive: bool) -> str:
    s = unicodedata.normalize("NFC", s)
    return s if case_sensitive else s.casefold()


@dataclass
class Scores:
    """Aggregated metrics of a set of samples (fractions in [0, 1]; CER may exceed 1)."""

    samples: int
    accuracy: float
    one_minus_ned: float
    cer: float
    accuracy_ci: float
    one_minus_ned_ci: float
    cer_ci: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain mapping for JSON."""
        return asdict(self)


class MetricAccumulator:
    """Running sums for :class:`Scores`; feed it with :meth:`update`, read it with :meth:`compute`."""

    def __init__(self) -> None:
        self.n = 0
        self._correct = [0, 0]
        self._ned = [0.0, 0.0]
        self._edits = [0, 0]
        self._chars = [0, 0]

    def update(self, preds: Iterable[str], gts: Iterable[str]) -> None:
        """Add predictions and ground truths (same order, same length)."""
        preds, gts = list(preds), list(gts)
        if len(preds) != len(gts):
            raise ValueError(f"{len(preds)} predictions for {len(gts)} ground truths")
        for pred, gt in zip(preds, gts, strict=False):
            self.n += 1
            for k, cs in enumerate((True, False)):
                p, g = _prep(pred, cs), _prep(gt, cs)
                self._correct[k] += p == g
                self._ned[k] += one_minus_ned(p, g)
                self._edits[k] += edit_distance(p, g)
                self._chars[k] += len(g)

    def state(self) -> list[float]:
        """The running sums as one flat list (for a sum over distributed ranks)."""
        return [float(self.n), *map(float, self._correct), *self._ned, *map(float, self._edits),
                *map(float, self._chars)]

    def load_state(self, values: list[float]) -> None:
        """Set the running sums from :meth:`state` (e.g. summed over ranks)."""
        if len(values) != 9:
            raise ValueError(f"a MetricAccumulator state has 9 values, got {len(values)}")
        self.n = round(values[0])
        self._correct = [round(v) for v in values[1:3]]
        self._ned = [float(v) for v in values[3:5]]
        self._edits = [round(v) for v in values[5:7]]
        self._chars = [round(v) for v in values[7:9]]

    def compute(self) -> Scores:
        """Scores of everything seen so far (zeros when nothing was seen)."""
        n = max(self.n, 1)
        cer = [e / c if c else float(e > 0) for e, c in zip(self._edits, self._chars, strict=False)]
        return Scores(self.n, self._correct[0] / n, self._ned[0] / n, cer[0],
                      self._correct[1] / n, self._ned[1] / n, cer[1])


def score(preds: Iterable[str], gts: Iterable[str]) -> Scores:
    """Scores of ``preds`` against ``gts`` in one call."""
    acc = MetricAccumulator()
    acc.update(preds, gts)
    return acc.compute()
