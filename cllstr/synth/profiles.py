"""Dataset profiles: which LMDBs to synthesise, with which style and how many samples.

``mlt19-mini`` mirrors the data tree of the CLL-STR reference (``{training,validation,evaluation}/<LANG>`` plus
``training/SynthMLT_<LANG>``) with per-language sizes proportional to the paper, times ``scale``.

Sources of the numbers (samples per language):

* MLT19 training and SynthMLT: the data statistics of Baek et al., "Cross-Lingual Learning in Multilingual Scene
  Text Recognition" (ICASSP 2024, arXiv:2312.10806), as rounded there (1.9K ... 28K, 33K ... 211K).
* MLT19 validation / evaluation: only the end points are taken from the paper (CHI, the smallest: 204 val / 248 eval;
  LAT, the largest: 3.4K val / 3.3K eval). The ku21fan/CLL-STR repository README does not list per-language numbers,
  so the other languages are *derived*: their val/train and eval/train ratios are interpolated linearly in
  log(train size) between the CHI and LAT ratios (see :func:`_derived_split`). They are marked ``derived`` in
  :data:`SIZE_SOURCES`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cllstr.scripts import SCRIPT_ORDER

__all__ = [
    "DatasetSpec",
    "MLT19_TRAIN",
    "MLT19_VAL",
    "MLT19_EVAL",
    "SYNTHMLT",
    "SIZE_SOURCES",
    "PROFILES",
    "get_profile",
    "mlt19_mini",
    "dataset_seed",
]

#: MLT19 training word crops per language (paper).
MLT19_TRAIN: dict[str, int] = {
    "CHI": 1900,
    "BEN": 2600,
    "HIN": 2700,
    "JPN": 3100,
    "ARA": 3500,
    "KOR": 4000,
    "LAT": 28000,
}
#: SynthMLT word crops per language (paper).
SYNTHMLT: dict[str, int] = {
    "CHI": 33000,
    "BEN": 165000,
    "HIN": 54000,
    "JPN": 37000,
    "ARA": 202000,
    "KOR": 147000,
    "LAT": 211000,
}
_VAL_ENDS = {"CHI": 204, "LAT": 3400}
_EVAL_ENDS = {"CHI": 248, "LAT": 3300}


def _derived_split(ends: dict[str, int]) -> dict[str, int]:
    """Per-language sizes whose ratio to MLT19 training is log-linearly interpolated between CHI and LAT."""
    lo, hi = MLT19_TRAIN["CHI"], MLT19_TRAIN["LAT"]
    r_lo, r_hi = ends["CHI"] / lo, ends["LAT"] / hi
    out = {}
    for lang, n in MLT19_TRAIN.items():
        if lang in ends:
            out[lang] = ends[lang]
            continue
        t = (math.log(n) - math.log(lo)) / (math.log(hi) - math.log(lo))
        out[lang] = int(round(n * (r_lo + t * (r_hi - r_lo))))
    return out


#: MLT19 validation word crops per language (CHI/LAT from the paper, others derived).
MLT19_VAL: dict[str, int] = _derived_split(_VAL_ENDS)
#: MLT19 evaluation word crops per language (CHI/LAT from the paper, others derived).
MLT19_EVAL: dict[str, int] = _derived_split(_EVAL_ENDS)

#: Where each number comes from: ``"paper"`` or ``"derived"``, keyed by ``(split, lang)``.
SIZE_SOURCES: dict[tuple[str, str], str] = {
    **{("training", k): "paper" for k in MLT19_TRAIN},
    **{("SynthMLT", k): "paper" for k in SYNTHMLT},
    **{("validation", k): "paper" if k in _VAL_ENDS else "derived" for k in MLT19_VAL},
    **{("evaluation", k): "paper" if k in _EVAL_ENDS else "derived" for k in MLT19_EVAL},
}


def dataset_seed(seed: int, relpath: str) -> int:
    """A stable per-dataset seed (CRC32 of ``"<seed>:<relpath>"``), independent of Python's hash randomisation."""
    return zlib.crc32(f"{seed}:{relpath}".encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class DatasetSpec:
    """One LMDB a profile asks for.

    Attributes:
        relpath: Path under the output root (``training/KOR``).
        scripts: Script names rendered into it.
        style: Style name (``real``/``synthmlt``).
        size: Number of samples.
        seed: Seed of this dataset's renderer.
        meta: Extra metadata stored in the LMDB ``meta`` key.
    """

    relpath: str
    scripts: tuple[str, ...]
    style: str
    size: int
    seed: int
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def mlt19_mini(scale: float = 0.1, seed: int = 0, min_size: int = 10, style: str | None = None) -> list[DatasetSpec]:
    """The ``mlt19-mini`` tree: MLT19-like splits in the ``real`` style and SynthMLT pools in the ``synthmlt`` style.

    Args:
        scale: Fraction of the paper's sizes (0.01 for CI, 0.1 default, 1.0 full).
        seed: Base seed; each dataset gets :func:`dataset_seed` of it.
        min_size: Floor per dataset so tiny scales still give usable val/eval sets.
        style: Style of the MLT19-like sets instead of ``real`` (e.g. ``realistic``); SynthMLT stays ``synthmlt``.

    Raises:
        ValueError: ``scale`` is not positive or ``min_size`` is negative.
    """
    if not scale > 0:
        raise ValueError(f"--scale must be > 0, got {scale}")
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size}")
    specs = []
    tables = (
        ("training", "{L}", MLT19_TRAIN, style or "real", "MLT19"),
        ("validation", "{L}", MLT19_VAL, style or "real", "MLT19"),
        ("evaluation", "{L}", MLT19_EVAL, style or "real", "MLT19"),
        ("training", "SynthMLT_{L}", SYNTHMLT, "synthmlt", "SynthMLT"),
    )
    for split, pattern, table, style, source in tables:
        for lang in SCRIPT_ORDER:
            rel = f"{split}/{pattern.format(L=lang)}"
            n = max(min_size, int(round(table[lang] * scale)))
            meta = {
                "profile": "mlt19-mini",
                "scale": scale,
                "imitates": source,
                "split": split,
                "paper_size": table[lang],
                "size_source": SIZE_SOURCES[(split if source == "MLT19" else source, lang)],
            }
            specs.append(DatasetSpec(rel, (lang,), style, n, dataset_seed(seed, rel), meta))
    return specs


#: Profiles by name: ``fn(scale=..., seed=...) -> list[DatasetSpec]``.
PROFILES: dict[str, Callable[..., list[DatasetSpec]]] = {"mlt19-mini": mlt19_mini}


def get_profile(name: str) -> Callable[..., list[DatasetSpec]]:
    """Look a profile up by name, raising ``KeyError`` that lists the known profiles."""
    if name not in PROFILES:
        raise KeyError(f"unknown synth profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
