"""Typed study specs (YAML/TOML), their expansion into runs, and the config hash that identifies a run.

A study is a grid ``model x data mixture x init mode x seed`` over a shared base :class:`TrainConfig`:

.. code-block:: yaml

    name: my-study
    data: {profile: mlt19-mini, scale: 0.01}      # or {root: /data/MLT19, profile: null}
    base: {iterations: 200, batch_size: 32}        # TrainConfig fields, nested like a train config file
    models: [svtr_tiny, {name: crnn, kwargs: {hidden: 128}}]
    seeds: [21, 22, 23]
    mixtures:
      - {name: HIN, select_data: lang_H, row: Monolingual}
      - {name: All, select_data: lang_CBHJAKL}
      - {name: LAT->HIN, select_data: lang_H, init: LAT-mono}   # cascade: init from another mixture's run
    inits: [{name: init}, {name: freeze, freeze: true}]          # only applies to mixtures with ``init``
    eval: {split: evaluation, checkpoint: best}
    report: {metrics: [accuracy, one_minus_ned, cer], baseline: Monolingual}

Every run is identified by :func:`run_hash`: a SHA-256 of its full training config (minus where and how it is
placed: output folder, device, threads, logging), its evaluation settings, the identity of its data (profile, scale
and seed for synthetic data, the resolved path otherwise) and, for a cascade, the hash of the run it starts from.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cllstr.config_io import read_mapping
from cllstr.data.mixture.select_data import parse_select_data, validation_names
from cllstr.scripts import SCRIPTS
from cllstr.train.config import TrainConfig, config_from_dict, config_to_dict, hash_neutral_defaults

__all__ = [
    "StudyError", "DataSource", "ModelEntry", "Mixture", "InitMode", "EvalSpec", "ReportSpec", "StudySpec", "RunSpec",
    "PLACEMENT_KEYS", "METRICS", "LOWER_IS_BETTER", "study_from_dict", "load_study", "expand", "run_hash",
    "deep_merge", "default_seeds", "CHARSET_MODES",
]

#: TrainConfig keys that say where/how a run is placed, not what it computes; they are left out of the hash.
#: TrainConfig fields added after studies were first hashed (marked ``ADDED_LATER`` in their dataclass), left out of
#: the hash while at their default so that a finished run keeps its hash when the config grows a field.
HASH_NEUTRAL_DEFAULTS: dict[tuple[str | None, str], Any] = hash_neutral_defaults()
PLACEMENT_KEYS = ("out_dir", "device", "threads", "log_interval", "save_interval", "tensorboard", "max_minutes")
#: Metrics of ``cllstr.eval`` a study can report.
METRICS = ("accuracy", "one_minus_ned", "cer", "accuracy_ci", "one_minus_ned_ci", "cer_ci")
#: Metrics where lower is better (best marks and gains flip).
LOWER_IS_BETTER = frozenset({"cer", "cer_ci"})
SCRATCH = "scratch"
#: ``shared``: one charset over every training set of the study, as the reference's fixed MLT19 charset (so every
#: run deletes the same unknown ground-truth characters at evaluation); ``per-run``: each run's own training labels.
CHARSET_MODES = ("shared", "per-run")


class StudyError(ValueError):
    """A study file or spec is invalid; the message names the file and key."""


def default_seeds(n: int, first: int = 21) -> list[int]:
    """``n`` seeds starting at the reference's ``--manual_seed 21``."""
    if n < 1:
        raise StudyError(f"--seeds must be >= 1, got {n}")
    return [first + i for i in range(n)]


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``over`` wins); neither input is modified."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        both = isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
        out[k] = deep_merge(out[k], v) if both else copy.deepcopy(v)
    return out


@dataclass
class DataSource:
    """Where the study's data comes from.

    Attributes:
        root: Data root (``{training,validation,evaluation}/<NAME>``); None: ``<study dir>/data``.
        profile: Synthetic profile generating the root when it is missing (``mlt19-mini``); None: real data, the
            root must exist.
        scale: Profile size factor.
        seed: Profile seed.
    """

    root: str | None = None
    profile: str | None = "mlt19-mini"
    scale: float = 0.01
    seed: int = 0

    def identity(self) -> dict[str, Any]:
        """What the data is, for the run hash (not where it lies, for synthetic data)."""
        if self.profile:
            return {"profile": self.profile, "scale": self.scale, "seed": self.seed}
        return {"root": str(Path(self.root).resolve()) if self.root else None}


@dataclass
class ModelEntry:
    """A grid model: a registered name, constructor overrides and a label for tables."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass
class Mixture:
    """One training-data setting (a table row, or part of one).

    Attributes:
        name: Unique name (``HIN``, ``All``, ``LAT->HIN``).
        select_data: Reference select-data string (``lang_CBHJAKL-SynthMLT_K``) or list of folder names.
        caps: Per-source caps (``{LAT: 2000, SynthMLT: 2000}``).
        row: Table row label; several mixtures may share one (``Monolingual``) when their languages differ.
        init: Name of the mixture whose run (same model and seed) initialises this one (cascade learning).
        baseline: Row this row's gains are measured against (default: the study's ``report.baseline``).
        languages: Languages to evaluate (default: those of ``select_data``).
        report: Show the row in tables (False for pre-training-only stages).
        overrides: TrainConfig fields for this mixture (nested mapping, e.g. ``{iterations: 100}``).
    """

    name: str
    select_data: str | list[str]
    caps: dict[str, int] = field(default_factory=dict)
    row: str | None = None
    init: str | None = None
    baseline: str | None = None
    languages: list[str] | None = None
    report: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def row_label(self) -> str:
        return self.row or self.name

    def eval_languages(self) -> list[str]:
        """Languages this mixture's runs are evaluated on."""
        if self.languages:
            return list(self.languages)
        names = validation_names(parse_select_data(self.select_data))
        return [n for n in names if n in SCRIPTS]


@dataclass
class InitMode:
    """How a cascade run uses its initial checkpoint (the reference ``--FT init|freeze``)."""

    name: str = "init"
    freeze: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSpec:
    """Evaluation of every finished run: split, checkpoint (``best`` by validation 1-NED, or ``last``), cap.

    ``full_gt=False`` is the reference protocol (ground-truth characters outside the model's charset are deleted);
    on small synthetic data many evaluation labels then become empty and an empty prediction counts as correct, so
    the presets below scale 1 keep the full ground truth (``full_gt=True``).
    """

    split: str = "evaluation"
    checkpoint: str = "best"
    max_samples: int | None = None
    batch_size: int = 256
    full_gt: bool = False


@dataclass
class ReportSpec:
    """Report settings: metrics (first is primary), gain baseline row, languages called low-resource."""

    metrics: list[str] = field(default_factory=lambda: ["accuracy", "one_minus_ned", "cer"])
    baseline: str | None = None
    focus: list[str] = field(default_factory=list)
    focus_label: str = "focus"


@dataclass
class StudySpec:
    """A whole study; :func:`expand` turns it into runs."""

    name: str
    mixtures: list[Mixture]
    models: list[ModelEntry] = field(default_factory=lambda: [ModelEntry("svtr_tiny")])
    seeds: list[int] = field(default_factory=lambda: [21])
    inits: list[InitMode] = field(default_factory=lambda: [InitMode()])
    base: dict[str, Any] = field(default_factory=dict)
    data: DataSource = field(default_factory=DataSource)
    eval: EvalSpec = field(default_factory=EvalSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    description: str = ""
    charset: str = "shared"

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-able mapping that :func:`study_from_dict` reads back."""
        import dataclasses

        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass
class RunSpec:
    """One expanded run.

    Attributes:
        hash: :func:`run_hash` of the run (its folder name under ``<study>/runs``).
        model: Model label; mixture, init and seed: its grid coordinates.
        row: Table row label (init mode appended when the study has several).
        config: The run's TrainConfig (``out_dir``/``init_from`` filled in by the runner).
        depends_on: Hash of the run whose checkpoint initialises this one.
        languages: Evaluation languages.
        baseline: Row its gains are measured against.
        report: Whether the row appears in tables.
    """

    hash: str
    model: str
    mixture: str
    init: str
    seed: int
    row: str
    config: TrainConfig
    depends_on: str | None
    languages: list[str]
    baseline: str | None
    report: bool = True

    def record(self) -> dict[str, Any]:
        """The ``run.json`` content."""
        return {"hash": self.hash, "model": self.model, "mixture": self.mixture, "init": self.init, "seed": self.seed,
                "row": self.row, "depends_on": self.depends_on, "languages": self.languages,
                "baseline": self.baseline, "report": self.report, "config": config_to_dict(self.config)}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise StudyError(f"{where}: expected a mapping, got {data!r}")
    try:
        return config_from_dict(cls, dict(data))
    except (KeyError, TypeError, ValueError) as e:
        raise StudyError(f"{where}: {e.args[0] if e.args else e}") from None


def _model_entry(item: Any, where: str) -> ModelEntry:
    if isinstance(item, str):
        return ModelEntry(item)
    return _build(ModelEntry, item, where)


def study_from_dict(data: Mapping[str, Any], where: str = "study") -> StudySpec:
    """Build and validate a :class:`StudySpec`; every error names ``where`` and the offending key."""
    if not isinstance(data, Mapping):
        raise StudyError(f"{where}: top level must be a mapping")
    known = {"name", "description", "data", "base", "models", "seeds", "mixtures", "inits", "eval", "report",
             "charset"}
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    if "name" not in data or "mixtures" not in data:
        raise StudyError(f"{where}: 'name' and 'mixtures' are required")
    mixtures = data["mixtures"]
    if not isinstance(mixtures, list) or not mixtures:
        raise StudyError(f"{where}: 'mixtures' must be a non-empty list")
    models = data.get("models", ["svtr_tiny"])
    if isinstance(models, (str, Mapping)):
        models = [models]
    seeds = data.get("seeds", [21])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = default_seeds(seeds)
    inits = data.get("inits", [{}])
    for key, value in (("models", models), ("seeds", seeds), ("inits", inits)):
        if not isinstance(value, list):
            raise StudyError(f"{where}: '{key}' must be a list, got {value!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise StudyError(f"{where}: seeds must be integers (or a count), got {seeds!r}")
    base = data.get("base", {}) or {}
    if not isinstance(base, Mapping):
        raise StudyError(f"{where}: 'base' must be a mapping of TrainConfig fields, got {base!r}")
    spec = StudySpec(
        name=str(data["name"]),
        description=str(data.get("description", "")),
        data=_build(DataSource, data.get("data", {}), f"{where}: data"),
        base=dict(base),
        models=[_model_entry(m, f"{where}: models[{i}]") for i, m in enumerate(models)],
        seeds=list(seeds),
        mixtures=[_build(Mixture, m, f"{where}: mixtures[{i}]") for i, m in enumerate(mixtures)],
        inits=[_build(InitMode, m, f"{where}: inits[{i}]") for i, m in enumerate(inits)],
        eval=_build(EvalSpec, data.get("eval", {}), f"{where}: eval"),
        report=_build(ReportSpec, data.get("report", {}), f"{where}: report"),
        charset=str(data.get("charset", "shared")),
    )
    validate(spec, where)
    return spec


def _dupes(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({x for x in items if x in seen or seen.add(x)})


def validate(spec: StudySpec, where: str = "study") -> None:
    """Check names, references, metrics and select-data strings; raise :class:`StudyError` naming the key."""
    from cllstr.models import list_models

    for key, items in (("mixtures", [m.name for m in spec.mixtures]), ("inits", [i.name for i in spec.inits]),
                       ("models", [m.title for m in spec.models]), ("seeds", [str(s) for s in spec.seeds])):
        if not items:
            raise StudyError(f"{where}: '{key}' is empty")
        if _dupes(items):
            raise StudyError(f"{where}: {key} has duplicate names {_dupes(items)}")
    for i, m in enumerate(spec.models):
        if m.name not in list_models():
            raise StudyError(f"{where}: models[{i}]: unknown model {m.name!r}; known: {list_models()}")
    names = {m.name: m for m in spec.mixtures}
    for i, m in enumerate(spec.mixtures):
        try:
            langs = m.eval_languages()
        except ValueError as e:
            raise StudyError(f"{where}: mixtures[{i}] ({m.name}): {e}") from None
        bad = [lang for lang in langs if lang not in SCRIPTS]
        if bad or not langs:
            raise StudyError(f"{where}: mixtures[{i}] ({m.name}): evaluation languages {langs} (unknown: {bad})")
        if m.init is not None:
            if m.init not in names:
                raise StudyError(f"{where}: mixtures[{i}] ({m.name}): init {m.init!r} is not a mixture name")
            if names[m.init].init is not None:
                raise StudyError(f"{where}: mixtures[{i}] ({m.name}): init {m.init!r} is itself a cascade")
    rows: dict[str, list[str]] = {}
    for m in spec.mixtures:
        for lang in m.eval_languages():
            rows.setdefault(f"{m.row_label}|{lang}", []).append(m.name)
    for key, who in rows.items():
        if len(who) > 1:
            raise StudyError(f"{where}: mixtures {who} share row {key.split('|')[0]!r} and both evaluate "
                             f"{key.split('|')[1]}; give them different 'row' labels")
    for metric in spec.report.metrics:
        if metric not in METRICS:
            raise StudyError(f"{where}: report.metrics: unknown metric {metric!r}; known: {list(METRICS)}")
    labels = {m.row_label for m in spec.mixtures}
    for b in [spec.report.baseline] + [m.baseline for m in spec.mixtures]:
        if b is not None and b not in labels:
            raise StudyError(f"{where}: baseline row {b!r} is not a row label; rows: {sorted(labels)}")
    if spec.charset not in CHARSET_MODES:
        raise StudyError(f"{where}: charset must be one of {CHARSET_MODES}, got {spec.charset!r}")
    if spec.eval.checkpoint not in ("best", "last"):
        raise StudyError(f"{where}: eval.checkpoint must be 'best' or 'last', got {spec.eval.checkpoint!r}")
    try:
        config_from_dict(TrainConfig, spec.base)
    except (KeyError, TypeError, ValueError) as e:
        raise StudyError(f"{where}: base: {e.args[0] if e.args else e}") from None


def load_study(path: str | Path) -> StudySpec:
    """Read a study from ``.yaml``/``.yml``/``.toml``/``.json``."""
    try:
        data = read_mapping(path, "study file")
    except (FileNotFoundError, ValueError) as e:
        raise StudyError(str(e)) from None
    return study_from_dict(data, where=f"study file {path}")


def run_hash(config: TrainConfig, data_identity: Mapping[str, Any], eval_spec: EvalSpec, languages: Sequence[str],
             depends_on: str | None = None) -> str:
    """12 hex digits of SHA-256 over the canonical JSON of everything that determines a run's results."""
    cfg = config_to_dict(config)
    for key in PLACEMENT_KEYS:
        cfg.pop(key, None)
    cfg["data"].pop("root", None)
    cfg["data"].pop("workers", None)
    cfg["init_from"] = f"run:{depends_on}" if depends_on else None
    for (section, key), default in HASH_NEUTRAL_DEFAULTS.items():
        where = cfg[section] if section else cfg
        if key in where and where[key] == default:
            del where[key]
    payload = {"config": cfg, "data": dict(data_identity), "eval": config_to_dict(eval_spec),
               "languages": list(languages)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def _config(spec: StudySpec, model: ModelEntry, mix: Mixture, init: InitMode | None, seed: int) -> TrainConfig:
    layers = [spec.base, {"model": model.name, "model_kwargs": model.kwargs, "seed": seed,
                          "data": {"select_data": mix.select_data, "caps": mix.caps}}, mix.overrides]
    if init is not None:
        layers += [{"freeze": init.freeze}, init.overrides]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return config_from_dict(TrainConfig, merged)
    except (KeyError, TypeError, ValueError) as e:
        raise StudyError(f"study {spec.name}: run {model.title}/{mix.name}/seed {seed}: {e}") from None


def expand(spec: StudySpec) -> list[RunSpec]:
    """All runs of the grid, dependencies (pre-training stages) before the runs that start from them."""
    runs: list[RunSpec] = []
    by_key: dict[tuple[str, str, int], RunSpec] = {}
    ident = {**spec.data.identity(), "charset": spec.charset}
    multi_init = len(spec.inits) > 1
    scratch = [m for m in spec.mixtures if m.init is None]
    cascades = [m for m in spec.mixtures if m.init is not None]
    for model in spec.models:
        for seed in spec.seeds:
            for mix in scratch:
                cfg = _config(spec, model, mix, None, seed)
                langs = mix.eval_languages()
                h = run_hash(cfg, ident, spec.eval, langs)
                run = RunSpec(h, model.title, mix.name, SCRATCH, seed, mix.row_label, cfg, None, langs,
                              mix.baseline or spec.report.baseline, mix.report)
                runs.append(run)
                by_key[(model.title, mix.name, seed)] = run
            for mix in cascades:
                parent = by_key[(model.title, mix.init, seed)]
                for init in spec.inits:
                    cfg = _config(spec, model, mix, init, seed)
                    langs = mix.eval_languages()
                    h = run_hash(cfg, ident, spec.eval, langs, depends_on=parent.hash)
                    row = f"{mix.row_label} ({init.name})" if multi_init else mix.row_label
                    runs.append(RunSpec(h, model.title, mix.name, init.name, seed, row, cfg, parent.hash, langs,
                                        mix.baseline or spec.report.baseline, mix.report))
    dupes = _dupes([r.hash for r in runs])
    if dupes:
        raise StudyError(f"study {spec.name}: grid cells {dupes} have identical configs (duplicate runs)")
    return runs
