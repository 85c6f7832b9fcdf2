"""Study presets: the reference studies as functions of ``scale`` and ``seeds``.

Scale ``1.0`` is the paper's setting (MLT19 + SynthMLT sizes, 100K iterations of batch 128, validation every 2000
iterations, fine-tuning for 10K iterations: CLL-STR ``train.py`` defaults and README). Smaller scales shrink the
synthetic ``mlt19-mini`` data by ``scale`` (so data-size caps shrink by ``scale`` too) and the training schedule
by ``scale**2`` (a 10x smaller data set is trained 100x fewer steps, with a batch ``sqrt(scale)`` as large), so
``--scale 0.01`` finishes in minutes on a CPU. :func:`schedule` gives the numbers. That is the ``gpu`` protocol
(the default); the ``cpu`` protocol (:mod:`cllstr.study.protocols`) replaces model, schedule and default data scale
by a recipe measured on 2 CPU cores.

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
from cllstr.study.protocols import Protocol, get_protocol
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

__all__ = ["Schedule", "schedule", "scaled_count", "register_preset", "get_preset", "list_presets", "PRESETS",
           "CASCADE_PAIRS", "LOWRES_K"]

PresetFn = Callable[[float, list[int], Protocol], StudySpec]
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


def get_preset(name: str, scale: float | None = None, seeds: int | list[int] = 1,
               protocol: str | Protocol = "gpu") -> StudySpec:
    """Build preset ``name`` at ``scale`` with ``seeds`` (a count from 21, or explicit seeds) under ``protocol``.

    Args:
        name: Preset name (:func:`list_presets`).
        scale: Data scale; None: the protocol's default for the preset (``gpu`` 0.01, ``cpu`` 0.2).
        seeds: Seed count (21, 22, ...) or explicit seeds.
        protocol: ``gpu`` (the paper's schedule, shrunk with the scale) or ``cpu``
            (:mod:`cllstr.study.protocols`).

    Raises:
        KeyError: Unknown preset or protocol.
    """
    if name not in PRESETS:
        raise KeyError(f"unknown study preset {name!r}; known presets: {', '.join(list_presets())}")
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    seed_list = default_seeds(seeds) if isinstance(seeds, int) else list(seeds)
    spec = PRESETS[name](proto.scale_for(name, scale), seed_list, proto)
    validate(spec, where=f"preset {name}")
    return spec


def _mono(lang: str, row: str = "Monolingual", **kw: object) -> Mixture:
    return Mixture(name=f"{lang} only", select_data=f"lang_{get_script(lang).letter}", row=row, **kw)


def _letters(langs: list[str]) -> str:
    return "".join(get_script(lang).letter for lang in langs)


def _eval(scale: float) -> EvalSpec:
    """Reference protocol at full scale; the full ground truth on the mini data (see :class:`EvalSpec`)."""
    return EvalSpec(full_gt=scale < 1.0)


def _base(scale: float, protocol: Protocol, preset: str) -> dict:
    """TrainConfig fields of every run: the protocol's, or the scale's :func:`schedule`."""
    return protocol.base_for(preset) or schedule(scale).base()


def _finetune(scale: float, protocol: Protocol) -> tuple[int, int]:
    """Cascade fine-tuning iterations and validation interval."""
    if protocol.finetune is not None:
        return protocol.finetune
    iters = schedule(scale).finetune_iterations
    return iters, max(1, iters // 2)


@register_preset
def cll_joint(scale: float, seeds: list[int], protocol: Protocol) -> StudySpec:
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
        models=protocol.models_for("cll", [ModelEntry("svtr_tiny", label="SVTR-T")]), seeds=seeds,
        base=_base(scale, protocol, "cll-joint"),
        data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(baseline="Monolingual", focus=LOW_RESOURCE, focus_label="low-resource"))


#: Cascade pairs (pre-train on X, fine-tune on Y). LAT→HIN is the README's example of Table 3; BEN→HIN and
#: CHI→JPN pair a target with the typologically/visually similar script of MLT19 (the paper's insight 2), LAT→JPN
#: the same target with the high-resource language.
CASCADE_PAIRS: tuple[tuple[str, str], ...] = (("BEN", "HIN"), ("LAT", "HIN"), ("CHI", "JPN"), ("LAT", "JPN"))


@register_preset
def cll_cascade(scale: float, seeds: list[int], protocol: Protocol) -> StudySpec:
    """Cascade learning X→Y: pre-train on X, fine-tune on Y (paper Table 3; README step 3).

    Pairs: :data:`CASCADE_PAIRS` (similar script vs LAT as the source). Rows: *Monolingual* (every language of the
    pairs trained alone; the sources double as the pre-training stages), *CL from similar script* and *CL from
    LAT*; fine-tuning runs 10% of the pre-training iterations (README: ``--num_iter 10000``) from the source's
    best checkpoint, the classifier remapped by token.
    """
    ft_iters, ft_val = _finetune(scale, protocol)
    langs = sorted({x for pair in CASCADE_PAIRS for x in pair}, key=SCRIPT_ORDER.index)
    mixtures = [_mono(lang) for lang in langs]
    for src, dst in CASCADE_PAIRS:
        row = "CL from LAT" if src == "LAT" else "CL from similar script"
        mixtures.append(Mixture(name=f"{src}→{dst}", select_data=f"lang_{get_script(dst).letter}", row=row,
                                init=f"{src} only", overrides={"iterations": ft_iters, "val_interval": ft_val}))
    return StudySpec(
        name="cll-cascade", description=cll_cascade.__doc__.splitlines()[0], mixtures=mixtures,
        models=protocol.models_for("cll", [ModelEntry("svtr_tiny", label="SVTR-T")]), seeds=seeds,
        base=_base(scale, protocol, "cll-cascade"),
        inits=[InitMode("init")], data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(baseline="Monolingual", focus=["HIN", "JPN"], focus_label="targets"))


@register_preset
def cll_synth_size(scale: float, seeds: list[int], protocol: Protocol) -> StudySpec:
    """Base + SynthMLT of one language (paper Table 4; README step 4).

    *Base*: all 7 languages jointly with LAT capped at 2K (``--data_usage_LAT 2000``); then for each language X,
    *+2K SynthMLT X* (``lang_CBHJAKL-SynthMLT_X``, ``--data_usage_SynthMLT 2000``) and *+all SynthMLT X*. Caps scale
    with the data (``2000 * scale``). It shows that the amount of data, not the kind of language, drives CLL.
    """
    lat_cap, synth_cap = scaled_count(2000, scale, 10), scaled_count(2000, scale, 10)
    allx = _letters(list(SCRIPT_ORDER))
    mixtures = [Mixture(name="Base", select_data=f"lang_{allx}", caps={"LAT": lat_cap})]
    for lang in protocol.synth_languages or SCRIPT_ORDER:
        sel = f"lang_{allx}-SynthMLT_{get_script(lang).letter}"
        mixtures.append(Mixture(name=f"Base + 2K SynthMLT {lang}", select_data=sel,
                                caps={"LAT": lat_cap, "SynthMLT": synth_cap}))
        mixtures.append(Mixture(name=f"Base + all SynthMLT {lang}", select_data=sel, caps={"LAT": lat_cap}))
    return StudySpec(
        name="cll-synth-size", description=cll_synth_size.__doc__.splitlines()[0], mixtures=mixtures,
        models=protocol.models_for("cll", [ModelEntry("svtr_tiny", label="SVTR-T")]), seeds=seeds,
        base=_base(scale, protocol, "cll-synth-size"),
        data=DataSource(scale=scale), eval=_eval(scale), report=ReportSpec(baseline="Base"))


LOWRES_K = (100, 500, 1000)


@register_preset
def lowres_seqmodel(scale: float, seeds: list[int], protocol: Protocol) -> StudySpec:
    """CNN-only CTC vs CRNN, monolingual vs multi-script, K samples per language (ΔCER of multi vs mono).

    K ∈ {100, 500, 1000} samples per language (``K * scale`` at smaller scales, as the data shrinks with it), the
    first K records of ``training/<LANG>``. Rows per K: *mono K* (each language alone) and *multi K* (the 7 languages
    jointly, each capped at K) whose gain over *mono K* is the ΔCER (negative: multi-script training helps).
    Design from the controlled Arabic-script HTR study of sequence modelling vs visual sharing (CNN-CTC vs CRNN,
    K in {100, 500, 1000}, ΔCER).
    """
    ks = sorted(set(protocol.lowres_k or {scaled_count(k, scale) for k in LOWRES_K}))
    mono = list(protocol.lowres_mono or SCRIPT_ORDER)
    mixtures = []
    for k in ks:
        mono_row = f"mono K={k}"
        for lang in mono:
            mixtures.append(Mixture(name=f"{lang} K={k}", select_data=f"lang_{get_script(lang).letter}", row=mono_row,
                                    caps={lang: k}))
        mixtures.append(Mixture(name=f"multi K={k}", select_data=f"lang_{_letters(list(SCRIPT_ORDER))}",
                                caps={lang: k for lang in SCRIPT_ORDER}, baseline=mono_row))
    return StudySpec(
        name="lowres-seqmodel", description=lowres_seqmodel.__doc__.splitlines()[0], mixtures=mixtures,
        models=protocol.models_for("lowres", [ModelEntry("cnn_ctc", label="CNN-CTC"),
                                              ModelEntry("crnn", label="CRNN")]),
        seeds=seeds, base=_base(scale, protocol, "lowres-seqmodel"), data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(metrics=["cer", "accuracy", "one_minus_ned"], focus=list(SCRIPT_ORDER),
                          focus_label="all languages"))


#: Heads of the task-grouping study (1: the plain single-head model) and the ε values of its ablation (at m = 3).
GROUPING_HEADS = (1, 2, 3, 4, 5, 6, 7)
GROUPING_EPSILONS = (0.0, 0.5)


@register_preset
def task_grouping(scale: float, seeds: list[int], protocol: Protocol) -> StudySpec:
    """Task grouping over m recognition heads, the 7 scripts jointly (Huang et al.; issue #17).

    Rows: *m=1* (one head, the plain joint model) and *m=2..7* heads whose task-to-head assignment is learned with
    Gumbel-Softmax (default ε = 0.2); the ε ablation *m=3, ε=0* (no shared integrated loss) and *m=3, ε=0.5*;
    *m=7 fixed* (one head per script, no learned grouping). Gains are over *m=1*; the report adds how often each
    final grouping was learned per row over the seeds (``grouping.jsonl``).
    """
    allx = f"lang_{_letters(list(SCRIPT_ORDER))}"
    mixtures = [Mixture(name="m=1", select_data=allx)]
    for m in GROUPING_HEADS[1:]:
        mixtures.append(Mixture(name=f"m={m}", select_data=allx, overrides={"grouping": {"heads": m}}))
    for eps in GROUPING_EPSILONS:
        mixtures.append(Mixture(name=f"m=3, ε={eps:g}", select_data=allx,
                                overrides={"grouping": {"heads": 3, "epsilon": eps}}))
    mixtures.append(Mixture(name="m=7 fixed", select_data=allx,
                            overrides={"grouping": {"heads": 7, "mode": "fixed:one-per-script"}}))
    return StudySpec(
        name="task-grouping", description=task_grouping.__doc__.splitlines()[0], mixtures=mixtures,
        models=protocol.models_for("cll", [ModelEntry("svtr_tiny", label="SVTR-T")]), seeds=seeds,
        base=_base(scale, protocol, "task-grouping"), data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(baseline="m=1", focus=LOW_RESOURCE, focus_label="low-resource"))


@register_preset
def four_stage(scale: float, seeds: list[int], protocol: Protocol) -> StudySpec:
    """TRBA vs CRNN vs SVTR-T at an equal training budget, LAT (issue #15; the four-stage framework's comparison).

    One row, *LAT only*, and the model axis: TPS-ResNet-BiLSTM-Attn (the framework's best), VGG-BiLSTM-CTC (CRNN) and
    SVTR-T with CTC, each trained with the same schedule, batch and data, so that accuracy per training sample and
    training throughput (the runs' img/s) compare side by side. Under ``--protocol cpu`` the two convolutional models
    are at half width (ResNet / VGG 256 channels, BiLSTM 128), as that protocol's CRNN-h.
    """
    models = protocol.models_for("four-stage", [ModelEntry("trba", label="TRBA"), ModelEntry("crnn", label="CRNN"),
                                                ModelEntry("svtr_tiny", label="SVTR-T")])
    return StudySpec(
        name="four-stage", description=four_stage.__doc__.splitlines()[0], mixtures=[_mono("LAT")], models=models,
        seeds=seeds, base=_base(scale, protocol, "four-stage"), data=DataSource(scale=scale), eval=_eval(scale),
        report=ReportSpec(metrics=["accuracy", "one_minus_ned", "cer"], focus=["LAT"], focus_label="LAT"))
