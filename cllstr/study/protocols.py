"""Training protocols of the study presets: which models, schedule and data scale a preset runs with.

* ``gpu`` (the default) is the paper's protocol: at ``--scale 1.0`` the CLL-STR ``train.py`` defaults (100K
  iterations of batch 128, validation every 2000, fine-tuning 10K) with SVTR-T; smaller scales shrink the schedule
  with :func:`cllstr.study.presets.schedule`. Run hashes of this protocol are those of the presets before protocols
  existed, so finished studies resume.
* ``cpu`` is the recipe chosen by measurement on a 2-core CPU (README "Studies on a CPU"): the half-width CRNN with
  BatchNorm after every convolution (VGG 32-64-128-256, BiLSTM 128; ``cllstr demo``'s model), 1500 iterations of
  batch 64, AdamW at a peak learning rate of 2e-3 with a 15% OneCycle warm-up, validation every 250 iterations on
  at most 300 samples per language, on ``mlt19-mini`` at scale 0.2 (LAT 5.6K training crops, the other languages
  380-800, SynthMLT pools 6.6K-42K). Its schedule does not change with ``--scale``; ``--scale`` changes only the
  data. Presets whose full grid would not fit one seed in an hour on 2 cores run a documented subset
  (:attr:`Protocol.synth_languages`, :attr:`Protocol.lowres_mono`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cllstr.study.spec import ModelEntry

__all__ = ["Protocol", "PROTOCOLS", "get_protocol", "list_protocols", "CPU_CRNN_KWARGS"]

#: The half-width BatchNorm CRNN of ``cllstr demo`` (``cli/demo.py`` DEMO_MODEL_KWARGS).
CPU_CRNN_KWARGS: dict[str, Any] = {"out_channels": 256, "hidden_size": 128, "batch_norm": True}


@dataclass(frozen=True)
class Protocol:
    """How the presets train on one class of machine.

    Attributes:
        name: ``gpu`` or ``cpu``.
        description: One line for ``cllstr study protocols``.
        default_scale: Data scale when ``--scale`` is not given.
        scales: Per-preset default data scale (overrides ``default_scale``).
        base: TrainConfig fields every run gets (nested mapping); None: the scale's
            :func:`~cllstr.study.presets.schedule`.
        finetune: Cascade fine-tuning ``(iterations, val_interval)``; None: the scale's schedule.
        preset_base: Per-preset TrainConfig fields merged over ``base``.
        models: Per model axis (``cll``: the cross-lingual presets, ``lowres``: CNN-only vs CRNN, ``four-stage``:
            TRBA vs CRNN vs SVTR-T) the grid models; absent: the preset's own (SVTR-T; CNN-CTC and CRNN; TRBA,
            CRNN and SVTR-T).
        synth_languages: Languages whose SynthMLT pool ``cll-synth-size`` adds (None: all seven).
        lowres_mono: Languages ``lowres-seqmodel`` trains monolingual baselines for (None: all seven; the
            multi-script rows always train on all seven).
        lowres_k: Samples per language of ``lowres-seqmodel``; None: ``(100, 500, 1000)`` times the scale.
    """

    name: str
    description: str
    default_scale: float
    scales: dict[str, float] = field(default_factory=dict)
    base: dict[str, Any] | None = None
    finetune: tuple[int, int] | None = None
    preset_base: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, tuple[ModelEntry, ...]] = field(default_factory=dict)
    synth_languages: tuple[str, ...] | None = None
    lowres_mono: tuple[str, ...] | None = None
    lowres_k: tuple[int, ...] | None = None

    def scale_for(self, preset: str, scale: float | None) -> float:
        """The data scale of ``preset``: ``scale`` when given, else the protocol's default for the preset."""
        if scale is not None:
            return scale
        return self.scales.get(preset, self.default_scale)

    def base_for(self, preset: str) -> dict[str, Any] | None:
        """TrainConfig fields of ``preset`` under this protocol (None: the scale's schedule)."""
        if self.base is None:
            return None
        from cllstr.study.spec import deep_merge

        return deep_merge(self.base, self.preset_base.get(preset, {}))

    def models_for(self, axis: str, default: list[ModelEntry]) -> list[ModelEntry]:
        """Grid models of a preset's model ``axis`` (``cll`` or ``lowres``)."""
        return [ModelEntry(m.name, dict(m.kwargs), m.label) for m in self.models.get(axis, tuple(default))]


def _cpu_base(iterations: int, batch: int, val: int) -> dict[str, Any]:
    return {"iterations": iterations, "batch_size": batch, "val_interval": val, "save_interval": val,
            "log_interval": 50, "optim": {"lr": 2e-3, "pct_start": 0.15}, "data": {"val_samples": 300}}


PROTOCOLS: dict[str, Protocol] = {
    "gpu": Protocol("gpu", "the paper's: 100K iterations x 128 at --scale 1.0, shrunk with the scale; SVTR-T",
                    default_scale=0.01),
    "cpu": Protocol(
        "cpu", "2 CPU cores, <= 1 h per seed: half-width BN CRNN, 1500 it x 64, lr 2e-3, mlt19-mini 0.2",
        default_scale=0.2,
        scales={"lowres-seqmodel": 0.6},  # K = 1000 needs >= 1000 crops of every language (CHI: 1900 x 0.6)
        base=_cpu_base(1500, 64, 250),
        finetune=(300, 100),
        preset_base={"lowres-seqmodel": _cpu_base(1000, 32, 250), "four-stage": _cpu_base(800, 64, 200)},
        models={
            "cll": (ModelEntry("crnn", dict(CPU_CRNN_KWARGS), "CRNN-h"),),
            # The controlled pair: the same half-width VGG (reference BatchNorm on conv 5-6 only: cnn_ctc takes no
            # batch_norm argument), with and without the BiLSTM.
            "lowres": (ModelEntry("cnn_ctc", {"out_channels": 256}, "CNN-CTC-h"),
                       ModelEntry("crnn", {"out_channels": 256, "hidden_size": 128}, "CRNN-h")),
            # TRBA and CRNN at the protocol's half width; 800 iterations (preset_base) keep 3 models x 2 seeds near
            # 1.5 h on 2 cores
            "four-stage": (ModelEntry("trba", {"out_channels": 256, "hidden_size": 128}, "TRBA-h"),
                           ModelEntry("crnn", dict(CPU_CRNN_KWARGS), "CRNN-h"),
                           ModelEntry("svtr_tiny", {}, "SVTR-T")),
        },
        synth_languages=("CHI", "HIN", "LAT"),  # the smallest, a middle and the largest SynthMLT pool
        lowres_mono=("ARA", "HIN", "KOR"),
        lowres_k=(100, 500, 1000),
    ),
}


def list_protocols() -> list[str]:
    """Protocol names."""
    return sorted(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """Look a protocol up, raising ``KeyError`` that lists the known ones."""
    if name not in PROTOCOLS:
        raise KeyError(f"unknown protocol {name!r}; known protocols: {', '.join(list_protocols())}")
    return PROTOCOLS[name]
