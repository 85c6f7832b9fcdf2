"""examples/results/trust-check/seeds.py: the per-seed tables it reads and its exact permutation test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("trust_seeds", ROOT / "examples/results/trust-check/seeds.py")
seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds)


def test_permutation_p_exact() -> None:
    # 6 splits of {1, 2, 3, 4} into two pairs; |difference of means| >= 2 only for {1, 2} | {3, 4} and its mirror
    assert seeds.permutation_p([1.0, 2.0], [3.0, 4.0]) == pytest.approx(2 / 6)
    assert seeds.permutation_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    # 3 vs 3 fully separated: 2 of the 20 splits are as extreme
    assert seeds.permutation_p([0.0, 0.1, 0.2], [5.0, 5.1, 5.2]) == pytest.approx(2 / 20)


def test_read_table_and_summary(tmp_path: Path) -> None:
    rows = ["Seed 1, header line", "", "| iteration | reference 1-NED | cllstr LAT 1-NED | acc | a | b |",
            "|---:|---:|---:|---:|---:|---:|", "| 1 | 0.05 | – | – | 8 | – |", "| 100 | 1.00 | 2.00 | 0.00 | 1 | 2 |",
            "| 200 | 10.00 | 9.00 | 0.10 | 3 | 4 |"]
    (tmp_path / "seed1-session9.md").write_text("\n".join(rows), encoding="utf-8")
    table = seeds.read_table(tmp_path / "seed1-session9.md")
    assert table == {100: (1.0, 2.0), 200: (10.0, 9.0)}  # the row with a dash is left out
    text = "\n".join(seeds.summarise({"a": table, "b": {100: (3.0, 3.0), 200: (20.0, 30.0)}}))
    assert "| 100 | 2.00 ± 1.41 | 2.50 ± 0.71 | +0.50 | 1 / 1 of 2 |" in text
    assert "| 200 | 15.00 ± 7.07 | 19.50 ± 14.85 | +4.50 | 1 / 0 of 2 |" in text
