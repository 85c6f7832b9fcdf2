"""Study presets: the reference studies as functions of ``scale`` and ``seeds``.

Scale ``1.0`` is the paper's setting (MLT19 + SynthMLT sizes, 100K iterations of batch 128, validation every 2000
iterations, fine-tuning for 10K iterations: CLL-STR ``train.py`` defaults and README). Smaller scales shrink the
synthetic ``mlt19-mini`` data by ``scale`` (so data-size caps shrink by ``scale`` too) and the training schedule
by ``scale**2`` (a 10x smaller data set is trained 100x fewer steps, with a batch ``sqrt(scale)`` as large), so
``--scale 0.01`` finishes in minutes on a CPU. :func:`schedule` gives the numbers.

Sources: Baek, Matsui, Aizawa, "Cross-Lingual Learning in Multilingual Scene Text Recognition", ICASSP 2024
(arXiv:2312.10806) and its code ku21fan/CLL-STR (README "Training" steps 1-4); the low-resource sequence-model study
follows the controlled CNN-CTC vs CRNN comparison of line-level Arabic-script HTR with K in {100, 500, 1000} samples
per language and ΔCER of multi- vs single-script training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from cllstr.scripts import SCRIPT_ORDER, get_script
from cllstr.study.spec import (
    DataSource,
    EvalSpec,
    InitMode,
    Mixture,
    ModelEntry,
    ReportSpec,
    StudySpec,
    default_seeds,
    validate,
)

__all__ = ["Schedule", "schedule", "scaled_count", "register_preset", "get_preset", "list_presets", "PRESETS"]

PresetFn = Callable[[float, list[int]], StudySpec]
PRESETS: dict[str, PresetFn] = {}
FULL_ITERATIONS = 100_000
FULL_BATCH = 128
FULL_VAL_INTERVAL = 2000
FULL_FINETUNE = 10_000
LOW_RESOURCE = [s for s in SCRIPT_ORDER if s != "LAT"]  # MLT19: LAT has 28K crops, the others 1.9K-4K


@dataclass(frozen=True)
class Schedule:
    """Training schedule of a scale: iterations, batch, validation interval, fine-tuning iterations."""

    iterations: int
    batch_size: int
    val_interval: int
    finetune_iterations: int

    def base(self) -> dict:
        """TrainConfig fields of the schedule."""
        return {"iterations": self.iterations, "batch_size": self.batch_size, "val_interval": self.val_interval,
                "save_interval": self.val_interval, "log_interval": max(1, min(50, self.iterations // 10))}


def schedule(scale: float) -> Schedule:
    """The schedule at ``scale`` (1.0: the reference's 100K x 128, val every 2000, fine-tune 10K)."""
    if not scale > 0:
        raise ValueError(f"--scale must be > 0, got {scale}")
    iters = max(10, round(FULL_ITERATIONS * min(scale, 1.0) ** 2))
    batch = max(8, min(FULL_BATCH, round(FULL_BATCH * math.sqrt(scale))))
    val = min(FULL_VAL_INTERVAL, max(5, iters // 5))
    return Schedule(iters, batch, val, max(5, round(iters * FULL_FINETUNE / FULL_ITERATIONS)))


def scaled_count(n: int, scale: float, floor: int = 4) -> int:
    """A data-size cap of the paper (``n`` samples) at ``scale`` (at least ``floor``)."""
    return max(floor, round(n * scale))


def register_preset(fn: PresetFn) -> PresetFn:
    """Register ``fn`` under its name with ``_`` as ``-`` (``cll_joint`` → ``cll-joint``)."""
    PRESETS[fn.__name__.replace("_", "-")] = fn
    return fn


def list_presets() -> list[str]:
    """Preset names."""
    return sorted(PRESETS)


def get_preset(name: str, scale: float = 0.01, seeds: int | list[int] = 1) -> StudySpec:
    """Build preset ``name`` at ``scale`` with ``seeds`` (a count from 21, or explicit seeds)."""
    if name not in PRESETS:
        raise KeyError(f"unknown study preset {name!r}; known presets: {', '.join(list_presets())}")
    seed_list = default_seeds(seeds) if isinstance(seeds, int) else list(seeds)
    spec = PRESETS[name](scale, seed_list)
    validate(spec, where=f"preset {name}")
    return spec


def _mono(lang: str, row: str = "Monolingual", **kw: object) -> Mixture:
    return Mixture(name=f"{lang} only", select_data=f"lang_{get_script(lang).letter}", row=row, **kw)


def _letters(langs: list[str]) -> str:
    return "".join(get_script(lang).letter for lang in langs)


def _eval(scale: float) -> EvalSpec:
    """Reference protocol at full scale; the full ground truth on the mini data (see :class:`EvalSpec`)."""
    return EvalSpec(full_gt=scale < 1.0)


def _base(scale: float) -> dict:
    return schedule(scale).base()


@register_preset
def cll_joint(scale: float, seeds: list[int]) -> StudySpec:
    """Joint vs monolingual training (paper Table 2; README steps 1-2).

    Rows: *Monolingual* (each language trained alone, ``lang_X``), *All* (the 7 languages jointly,
    ``lang_CBHJAKL``) and *All but LAT* (``lang_CBHJAK``), SVTR-T, evaluated per language. It tests the paper's
    first insight: joint learning with a high-resource language does not hurt (it helps) the low-resource ones.
    """
    mixtures = [_mono(lang) for lang in SCRIPT_ORDER]
    mixtures.append(Mixture(name="All", select_data=f"lang_{_letters(list(SCRIPT_ORDER))}"))
    mixtures.append(Mixture(name="All but LAT", select_data=f"lang_{_letters(LOW_RESOURCE)}"))
    return StudySpec(
        name="cll-joint", description=cll_joint.__doc__.splitlines()[0], mixtures=mixtures,
        models=[ModelEntry("svtr_tiny", label="SVTR-T")], seeds=seeds, base=_base(scale),
        data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(baseline="Monolingual", focus=LOW_RESOURCE, focus_label="low-resource"))


#: Cascade pairs (pre-train on X, fine-tune on Y). LAT→HIN is the README's example of Table 3; BEN→HIN and
#: CHI→JPN pair a target with the typologically/visually similar script of MLT19 (the paper's insight 2), LAT→JPN
#: the same target with the high-resource language.
CASCADE_PAIRS: tuple[tuple[str, str], ...] = (("BEN", "HIN"), ("LAT", "HIN"), ("CHI", "JPN"), ("LAT", "JPN"))


@register_preset
def cll_cascade(scale: float, seeds: list[int]) -> StudySpec:
    """Cascade learning X→Y: pre-train on X, fine-tune on Y (paper Table 3; README step 3).

    Pairs: :data:`CASCADE_PAIRS` (similar script vs LAT as the source). Rows: *Monolingual* (every language of the
    pairs trained alone; the sources double as the pre-training stages), *CL from similar script* and *CL from
    LAT*; fine-tuning runs 10% of the pre-training iterations (README: ``--num_iter 10000``) from the source's
    best checkpoint, the classifier remapped by token.
    """
    sched = schedule(scale)
    langs = sorted({x for pair in CASCADE_PAIRS for x in pair}, key=SCRIPT_ORDER.index)
    mixtures = [_mono(lang) for lang in langs]
    for src, dst in CASCADE_PAIRS:
        row = "CL from LAT" if src == "LAT" else "CL from similar script"
        mixtures.append(Mixture(name=f"{src}→{dst}", select_data=f"lang_{get_script(dst).letter}", row=row,
                                init=f"{src} only", overrides={"iterations": sched.finetune_iterations,
                                                               "val_interval": max(1, sched.finetune_iterations // 2)}))
    return StudySpec(
        name="cll-cascade", description=cll_cascade.__doc__.splitlines()[0], mixtures=mixtures,
        models=[ModelEntry("svtr_tiny", label="SVTR-T")], seeds=seeds, base=_base(scale),
        inits=[InitMode("init")], data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(baseline="Monolingual", focus=["HIN", "JPN"], focus_label="targets"))


@register_preset
def cll_synth_size(scale: float, seeds: list[int]) -> StudySpec:
    """Base + SynthMLT of one language (paper Table 4; README step 4).

    *Base*: all 7 languages jointly with LAT capped at 2K (``--data_usage_LAT 2000``); then for each language X,
    *+2K SynthMLT X* (``lang_CBHJAKL-SynthMLT_X``, ``--data_usage_SynthMLT 2000``) and *+all SynthMLT X*. Caps scale
    with the data (``2000 * scale``). It shows that the amount of data, not the kind of language, drives CLL.
    """
    lat_cap, synth_cap = scaled_count(2000, scale, 10), scaled_count(2000, scale, 10)
    allx = _letters(list(SCRIPT_ORDER))
    mixtures = [Mixture(name="Base", select_data=f"lang_{allx}", caps={"LAT": lat_cap})]
    for lang in SCRIPT_ORDER:
        sel = f"lang_{allx}-SynthMLT_{get_script(lang).letter}"
        mixtures.append(Mixture(name=f"Base + 2K SynthMLT {lang}", select_data=sel,
                                caps={"LAT": lat_cap, "SynthMLT": synth_cap}))
        mixtures.append(Mixture(name=f"Base + all SynthMLT {lang}", select_data=sel, caps={"LAT": lat_cap}))
    return StudySpec(
        name="cll-synth-size", description=cll_synth_size.__doc__.splitlines()[0], mixtures=mixtures,
        models=[ModelEntry("svtr_tiny", label="SVTR-T")], seeds=seeds, base=_base(scale),
        data=DataSource(scale=scale), eval=_eval(scale), report=ReportSpec(baseline="Base"))


LOWRES_K = (100, 500, 1000)


@register_preset
def lowres_seqmodel(scale: float, seeds: list[int]) -> StudySpec:
    """CNN-only CTC vs CRNN, monolingual vs multi-script, K samples per language (ΔCER of multi vs mono).

    K ∈ {100, 500, 1000} samples per language (``K * scale`` at smaller scales, as the data shrinks with it), the
    first K records of ``training/<LANG>``. Rows per K: *mono K* (each language alone) and *multi K* (the 7 languages
    jointly, each capped at K) whose gain over *mono K* is the ΔCER (negative: multi-script training helps).
    Design from the controlled Arabic-script HTR study of sequence modelling vs visual sharing (CNN-CTC vs CRNN,
    K in {100, 500, 1000}, ΔCER).
    """
    ks = sorted({scaled_count(k, scale) for k in LOWRES_K})
    mixtures = []
    for k in ks:
        mono_row = f"mono K={k}"
        for lang in SCRIPT_ORDER:
            mixtures.append(Mixture(name=f"{lang} K={k}", select_data=f"lang_{get_script(lang).letter}", row=mono_row,
                                    caps={lang: k}))
        mixtures.append(Mixture(name=f"multi K={k}", select_data=f"lang_{_letters(list(SCRIPT_ORDER))}",
                                caps={lang: k for lang in SCRIPT_ORDER}, baseline=mono_row))
    return StudySpec(
        name="lowres-seqmodel", description=lowres_seqmodel.__doc__.splitlines()[0], mixtures=mixtures,
        models=[ModelEntry("cnn_ctc", label="CNN-CTC"), ModelEntry("crnn", label="CRNN")], seeds=seeds,
        base=_base(scale), data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(metrics=["cer", "accuracy", "one_minus_ned"], focus=list(SCRIPT_ORDER),
                          focus_label="all languages"))
