"""Metrics: word accuracy, reference 1-NED (ICDAR19 / CLL-STR test.py), CER, case folding, NFC, report writers."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cllstr.scoring.evaluate import EvalReport, ground_truth, to_markdown, write_report
from cllstr.scoring.metrics import MetricAccumulator, edit_distance, one_minus_ned, score
from cllstr.text.charset import Charset


def _ref_ned(pred: str, gt: str) -> float:
    """The reference loop of CLL-STR ``validation()`` transcribed, with a plain DP edit distance."""
    def ed(a: str, b: str) -> int:
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]
    if len(gt) == 0 or len(pred) == 0:
        return 0.0
    if len(gt) > len(pred):
        return 1 - ed(pred, gt) / len(gt)
    return 1 - ed(pred, gt) / len(pred)


@given(st.text(max_size=12), st.text(max_size=12))
def test_one_minus_ned_matches_reference(pred: str, gt: str) -> None:
    assert one_minus_ned(pred, gt) == pytest.approx(_ref_ned(pred, gt))


def test_known_values() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert one_minus_ned("hel", "hello") == pytest.approx(1 - 2 / 5)
    assert one_minus_ned("", "") == 0.0  # the reference's quirk: empty strings score 0
    s = score(["Hello", "wrld", ""], ["hello", "world", "abc"])
    assert s.samples == 3
    assert s.accuracy == 0 and s.accuracy_ci == pytest.approx(1 / 3)
    assert s.one_minus_ned == pytest.approx(((1 - 1 / 5) + (1 - 1 / 5) + 0) / 3)
    assert s.cer == pytest.approx((1 + 1 + 3) / 13) and s.cer_ci == pytest.approx(4 / 13)


def test_nfc_normalisation() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    assert score([decomposed], ["café"]).accuracy == 1.0


def test_accumulator_matches_one_shot_and_checks_lengths() -> None:
    acc = MetricAccumulator()
    acc.update(["a", "b"], ["a", "c"])
    acc.update(["dd"], ["d"])
    assert acc.compute() == score(["a", "b", "dd"], ["a", "c", "d"])
    with pytest.raises(ValueError, match="2 predictions for 1"):
        acc.update(["a", "b"], ["a"])


def test_ground_truth_restricted_to_charset() -> None:
    cs = Charset(list("abc"))
    assert ground_truth("a?bc", cs) == "abc"
    assert ground_truth("a?bc", None) == "a?bc"


def test_report_writers(tmp_path: Path) -> None:
    lat, kor = score(["ab"], ["ab"]), score(["x", "y", "z"], ["x", "q", "q"])
    total = score(["ab", "x", "y", "z"], ["ab", "x", "q", "q"])
    macro = {k: (getattr(lat, k) + getattr(kor, k)) / 2 for k in
             ("accuracy", "one_minus_ned", "cer", "accuracy_ci", "one_minus_ned_ci", "cer_ci")}
    report = EvalReport({"KOR": kor, "LAT": lat}, total, macro)
    write_report(report, tmp_path / "r.json", tmp_path / "r.md", extra={"checkpoint": "x.pt"})
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["checkpoint"] == "x.pt" and data["languages"]["LAT"]["accuracy"] == 1.0
    assert data["macro"]["accuracy"] == pytest.approx((1 + 1 / 3) / 2)
    assert data["weighted"]["accuracy"] == pytest.approx(2 / 4)
    md = (tmp_path / "r.md").read_text()
    assert "| LAT | 1 | 100.00" in md and "Macro avg" in md
    assert md == to_markdown(report)
