"""Typed training configuration: dataclasses loadable from YAML/TOML and overridable with dotted ``key=value``.

Defaults follow the CLL-STR / deep-text-recognition-benchmark ``train.py``: batch 128, AdamW (lr 1e-3, weight
decay 0.01), OneCycle (div_factor 20, final_div_factor 1000, no momentum cycling), gradient clipping at 5, seed 21,
32x100 RGB inputs, labels of at most 25 characters, validation every 2000 iterations.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cllstr.config_io import parse_overrides, read_mapping

__all__ = [
    "ADDED_LATER", "hash_neutral_defaults", "DataConfig", "OptimConfig", "GroupingConfig", "TrainConfig",
    "load_config", "apply_overrides", "config_from_dict",
]


#: ``field(..., metadata=ADDED_LATER)`` marks a config field added after studies were first hashed: a study run's hash
#: leaves it out while it is at its default (:func:`hash_neutral_defaults`), so finished runs keep their hashes (and are
#: not trained again) when the config grows.
ADDED_LATER = {"hash_neutral": True}


@dataclass
class DataConfig:
    """Where the data lives and how images are prepared.

    Attributes:
        root: Data root with ``training/``, ``validation/`` and ``evaluation/`` LMDB folders (reference layout).
        select_data: Reference-style select-data spec (``lang_CBHJAKL``, ``SynthMLT_L-lang_L``...) or a list.
        caps: Per-dataset sample caps (``{"LAT": 1000}``), passed to the loader.
        batch_ratio: Per-source shares of every batch, one per source of ``select_data`` after expansion
            (reference ``--batch_ratio``, ``"0.5-0.5"``); None concatenates the sources proportionally.
        val_select: Languages to validate on; None derives them from ``select_data`` (``SynthMLT_X`` counts as X).
        val_samples: At most this many validation samples per language (None: all).
        charset: Charset file (one token per line); None builds it from the training labels.
        charset_mode: ``codepoint`` or ``grapheme`` tokens.
        charset_reference: ``charset`` is a CLL-STR / deep-text-recognition-benchmark table: the reference
            converter's specials (``[PAD]``, ``[UNK]``, space) come before its tokens, so ``MLT19_charset.txt`` gives
            the reference's 4,680 classes, and characters outside it train as ``[UNK]`` as in the reference (a
            charset without ``[UNK]`` drops them from the target instead).
        loader: Training loader: ``torch`` (PIL in DataLoader workers), ``dali`` (NVIDIA DALI, GPU "mixed" decoding
            when the run is on a GPU, else its CPU mode) or ``auto`` (DALI when installed).
        max_label_length: Labels longer than this (in tokens) are filtered by the loader (reference: 25).
        min_label_length: Labels shorter than this (in tokens) are filtered by the loader (1: none).
        jpeg_draft: Decode training JPEGs at a reduced DCT scale (torch loader; faster for large crops, but not the
            reference's full-scale pixels; evaluation always decodes at full scale).
    """

    root: str = "data"
    select_data: str | list[str] = "lang_CBHJAKL"
    caps: dict[str, int] = field(default_factory=dict)
    batch_ratio: str | None = field(default=None, metadata=ADDED_LATER)
    val_select: list[str] | None = None
    val_samples: int | None = None
    charset: str | None = None
    charset_mode: str = "codepoint"
    img_h: int = 32
    img_w: int = 100
    rgb: bool = True
    keep_ratio: bool = False
    augment: bool = False
    workers: int = 0
    loader: str = "torch"
    max_label_length: int = 25
    min_label_length: int = field(default=1, metadata=ADDED_LATER)
    jpeg_draft: bool = field(default=False, metadata=ADDED_LATER)
    charset_reference: bool = field(default=False, metadata=ADDED_LATER)


@dataclass
class OptimConfig:
    """AdamW + OneCycle schedule + gradient clipping (reference defaults)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    div_factor: float = 20.0
    final_div_factor: float = 1000.0
    pct_start: float = 0.3
    grad_clip: float = 5.0


@dataclass
class GroupingConfig:
    """Task grouping over several recognition heads (Huang et al.; :mod:`cllstr.train.grouping`).

    Attributes:
        heads: Recognition heads ``m``; 1 with ``mode="none"`` is the plain single-head model.
        mode: ``auto`` (``none`` for one head, ``gumbel`` for several), ``none``, ``gumbel`` (learn the task-to-head
            matrix ``W`` through Gumbel-Softmax), ``fixed:AK-BCHJL`` (one head per ``-``-separated group of script
            letters) or ``fixed:one-per-script``.
        tau: Gumbel-Softmax temperature.
        epsilon: Base coefficient of the integrated loss (eq. 8): every head also learns every word by this much.
        mu: Least total task probability each head should receive (eq. 9).
        weight: Weight of the grouping loss.
        script_weight: Weight of the script-identification cross-entropy.
        hidden_size: Width of each head's BiLSTM (0: a classifier on the shared features).
    """

    heads: int = 1
    mode: str = "auto"
    tau: float = 1.0
    epsilon: float = 0.2
    mu: float = 1.0
    weight: float = 1.0
    script_weight: float = 1.0
    hidden_size: int = 256


@dataclass
class TrainConfig:
    """One training run.

    Attributes:
        model: Registered model name (``cllstr.models.list_models()``).
        model_kwargs: Overrides passed to ``create_model``.
        iterations: Total optimiser steps (the OneCycle length).
        val_interval: Validate (and maybe save the best checkpoint) every this many iterations; 0 disables.
        save_interval: Write ``last.pt`` every this many iterations (and at the end).
        precision: ``auto`` (bf16 on a CPU with native bf16, else fp32; bf16/fp16 on GPU), ``bf16``, ``fp16`` or
            ``fp32``.
        channels_last: Use the NHWC memory format for images and conv weights.
        sync_bn: In a distributed run, BatchNorm statistics over the global batch (:mod:`cllstr.train.distributed`).
        compile: Wrap the model with ``torch.compile``.
        threads: Intra-op threads on CPU (None: all cores).
        init_from: Checkpoint to initialise from (cascade learning; charset remapped by token).
        freeze: With ``init_from``: freeze every loaded parameter except the classifier head.
        max_minutes: Stop (with a checkpoint) after this wall-clock budget.
        grouping: Several recognition heads and how scripts are grouped over them (:class:`GroupingConfig`).
    """

    model: str = "svtr_tiny"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    out_dir: str = "runs/exp"
    batch_size: int = 128
    iterations: int = 100_000
    val_interval: int = 2000
    save_interval: int = 1000
    log_interval: int = 50
    seed: int = 21
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    threads: int | None = None
    init_from: str | None = None
    freeze: bool = False
    max_minutes: float | None = None
    tensorboard: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    grouping: GroupingConfig = field(default_factory=GroupingConfig, metadata=ADDED_LATER)
    sync_bn: bool = field(default=False, metadata=ADDED_LATER)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Convert ``value`` to the annotated type ``tp`` (dataclasses, tuples, optionals), naming ``key`` on error."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"config key {key!r}: expected a table/mapping, got {type(value).__name__}")
        return config_from_dict(tp, value, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise TypeError(f"config key {key!r}: {value!r} matches none of {tp}: {'; '.join(errors)}")
    if tp is Any:
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise TypeError(f"config key {key!r}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, key) for a, v in zip(args, value, strict=False))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"config key {key!r}: expected a list, got {value!r}")
        (a,) = typing.get_args(tp)
        return [_coerce(a, v, key) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"config key {key!r}: expected true/false, got {value!r}")
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, str):
        try:
            return tp(value)  # YAML 1.1 reads "5e-4" as a string
        except ValueError:
            pass
    if tp in (int, str) and isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise TypeError(f"config key {key!r}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def config_from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (nested) mapping; unknown keys raise ``KeyError`` naming the key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise KeyError(f"unknown config key(s) {', '.join(prefix + str(u) for u in unknown)}; known: {sorted(names)}")
    return cls(**{k: _coerce(hints[k], v, prefix + k) for k, v in data.items()})


def load_config(path: str | Path) -> TrainConfig:
    """Read a :class:`TrainConfig` from a ``.yaml``/``.yml``/``.toml``/``.json`` file."""
    data = read_mapping(path, "config file")
    try:
        return config_from_dict(TrainConfig, data)
    except (KeyError, TypeError) as e:
        raise ValueError(f"config file {path}: {e}") from e


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Return a copy of ``cfg`` with dotted ``key=value`` overrides applied (values parsed as YAML scalars).

    Keys name dataclass fields; inside a mapping field (``model_kwargs``, ``data.caps``) any key may be set.
    Example: ``["optim.lr=5e-4", "data.caps={LAT: 1000}", "model_kwargs.drop_path_rate=0", "compile=true"]``.
    """
    data = dataclasses.asdict(cfg)
    for item, (parts, value) in zip(overrides, parse_overrides(overrides), strict=True):
        node, tp = data, TrainConfig  # tp: the dataclass ``node`` holds, None inside a free-form mapping
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            if tp is not None and p not in node:
                what = "key" if last else "section"
                raise KeyError(f"override {item!r}: unknown config {what} {'.'.join(parts[:i + 1])!r}")
            if last:
                break
            child_tp = typing.get_type_hints(tp)[p] if tp is not None else None
            if tp is not None and typing.get_origin(child_tp) is not dict and not dataclasses.is_dataclass(child_tp):
                raise KeyError(f"override {item!r}: {'.'.join(parts[:i + 1])!r} is a value, not a section")
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node, tp = node[p], (child_tp if dataclasses.is_dataclass(child_tp) else None)
        node[parts[-1]] = value
    return config_from_dict(TrainConfig, data)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain JSON-able mapping of ``cfg`` (stored in checkpoints and logs)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _default(f: dataclasses.Field) -> Any:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return json.loads(json.dumps(dataclasses.asdict(value))) if dataclasses.is_dataclass(value) else value


def hash_neutral_defaults(cls: type | None = None) -> dict[tuple[str | None, str], Any]:
    """``{(section or None, key): default}`` of the :data:`ADDED_LATER` fields of ``cls`` (default
    :class:`TrainConfig`) and of its dataclass sections, defaults as in :func:`config_to_dict`."""
    cls = cls or TrainConfig
    out: dict[tuple[str | None, str], Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("hash_neutral"):
            out[(None, f.name)] = _default(f)
        elif dataclasses.is_dataclass(hints[f.name]):
            out.update({(f.name, g.name): _default(g) for g in dataclasses.fields(hints[f.name])
                        if g.metadata.get("hash_neutral")})
    return out
