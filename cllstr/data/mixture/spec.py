"""Data mixtures: :class:`MixSpec` / :class:`SourceSpec`, built from a reference command line or a YAML/TOML file.

A mixture file lists sources with ``path``, ``cap``, ``cap_mode`` and ``ratio`` and picks ``mix: concat``
(proportional concatenation) or ``mix: ratio`` (fixed per-source shares of every batch); it may also hold a
reference ``select_data`` string and ``caps``. The select-data and cap parsers live in
:mod:`cllstr.data.mixture.select_data` and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cllstr.config_io import read_mapping
from cllstr.data.mixture.select_data import (
    ALL_SOURCES,
    CAP_MODES,
    TOTAL_CAP_KEY,
    MixSpecError,
    cap_for,
    check_cap_keys,
    find_lmdbs,
    parse_batch_ratio,
    parse_cap_value,
    parse_caps,
    parse_select_data,
    script_of_name,
    split_root,
)
from cllstr.scripts import SCRIPTS

__all__ = ["MIX_MODES", "SourceSpec", "MixSpec", "mix_from_select_data", "load_mix_spec"]

MIX_MODES = ("concat", "ratio")


@dataclass
class SourceSpec:
    """One data source of a mixture.

    Attributes:
        name: Display name (and the folder name under the split root when ``path`` is None).
        path: LMDB directory, or a folder of LMDBs; relative paths are resolved against the spec's root.
        cap: Keep at most this many records (None: all).
        cap_mode: ``"first"`` (reference) or ``"random"``.
        ratio: Share of every batch in ``mix: ratio`` mode.
        script: Script name for per-script reporting; guessed from the name when None.
    """

    name: str
    path: str | None = None
    cap: int | None = None
    cap_mode: str = "first"
    ratio: float | None = None
    script: str | None = None


@dataclass
class MixSpec:
    """A data mixture.

    Attributes:
        sources: The sources, in order.
        mix: ``"concat"`` or ``"ratio"``.
        seed: Seed of random caps and of the ratio sampler.
        total_cap: Cap on the concatenation (reference ``--data_usage``), applied after the per-source caps.
        total_cap_mode: ``"first"`` or ``"random"``.
        root: Root of the ``{training,validation,evaluation}/<NAME>`` layout.
        split: Which split folder names resolve in.
    """

    sources: list[SourceSpec]
    mix: str = "concat"
    seed: int = 0
    total_cap: int | None = None
    total_cap_mode: str = "first"
    root: str | None = None
    split: str = "training"
    base_dir: Path = field(default_factory=Path, repr=False)

    def __post_init__(self) -> None:
        if self.mix not in MIX_MODES:
            raise MixSpecError(f"mix must be one of {MIX_MODES}, got {self.mix!r}")
        if not self.sources:
            raise MixSpecError("a mixture needs at least one source")
        for s in self.sources:
            if not isinstance(s.name, str) or not s.name:
                raise MixSpecError(f"source name must be a non-empty string, got {s.name!r}")
            for key in ("path", "script", "cap_mode"):
                if getattr(s, key) is not None and not isinstance(getattr(s, key), str):
                    raise MixSpecError(f"source {s.name!r}: {key} must be a string, got {getattr(s, key)!r}")
        for key in ("root", "split", "total_cap_mode"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise MixSpecError(f"{key} must be a string, got {getattr(self, key)!r}")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise MixSpecError(f"source name(s) {dupes} appear twice")
        for s in self.sources:
            if s.cap_mode not in CAP_MODES:
                raise MixSpecError(f"source {s.name!r}: cap_mode must be one of {CAP_MODES}, got {s.cap_mode!r}")
            s.cap = parse_cap_value(s.name, s.cap)
            if s.ratio is not None:
                try:
                    if isinstance(s.ratio, bool):
                        raise TypeError
                    s.ratio = float(s.ratio)
                except (TypeError, ValueError):
                    raise MixSpecError(f"source {s.name!r}: ratio must be a number, got {s.ratio!r}") from None
                if not math.isfinite(s.ratio) or s.ratio < 0:
                    raise MixSpecError(f"source {s.name!r}: ratio must be a non-negative number, got {s.ratio!r}")
            if s.script is not None and s.script.upper() not in SCRIPTS:
                raise MixSpecError(f"source {s.name!r}: unknown script {s.script!r}")
        if self.total_cap_mode not in CAP_MODES:
            raise MixSpecError(f"total_cap_mode must be one of {CAP_MODES}, got {self.total_cap_mode!r}")
        if self.mix == "ratio":
            given = [s.ratio for s in self.sources if s.ratio is not None]
            if given and len(given) != len(self.sources):
                missing = [s.name for s in self.sources if s.ratio is None]
                raise MixSpecError(f"mix 'ratio': sources {missing} have no ratio (give all or none)")
            if given and not 0 < sum(given) < math.inf:
                raise MixSpecError("mix 'ratio': ratios must have a positive, finite sum")

    def ratios(self) -> list[float]:
        """Normalised batch shares (equal when no ratio is given)."""
        raw = [s.ratio if s.ratio is not None else 1.0 for s in self.sources]
        return [r / sum(raw) for r in raw]

    def resolve(self) -> list[tuple[SourceSpec, list[Path]]]:
        """Each source with its LMDB directories; ``/`` expands to every folder under the split root."""
        base = Path(self.root) if self.root is not None else None
        if base is not None and not base.is_absolute():
            base = self.base_dir / base
        out: list[tuple[SourceSpec, list[Path]]] = []
        for s in self.sources:
            if s.path is None and base is None:
                raise MixSpecError(f"source {s.name!r} has no path and the mixture has no root")
            if s.name == ALL_SOURCES and s.path is None:
                root = split_root(base, self.split)
                for d in sorted(c for c in root.iterdir() if c.is_dir()):
                    out.append((replace(s, name=d.name, script=s.script or script_of_name(d.name)), find_lmdbs(d)))
                continue
            if s.path is not None:
                p = Path(s.path)
                if not p.is_absolute():
                    p = (base if base is not None else self.base_dir) / p
            else:
                p = split_root(base, self.split) / s.name
            if not p.exists():
                raise MixSpecError(f"source {s.name!r}: {p} does not exist")
            out.append((replace(s, script=s.script or script_of_name(s.name)), find_lmdbs(p)))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base_dir: str | Path = ".", where: str = "mixture") -> MixSpec:
        """Build from a parsed YAML/TOML mapping; unknown keys are errors naming ``where``."""
        if not isinstance(d, Mapping):
            raise MixSpecError(f"{where}: expected a mapping at top level, got {type(d).__name__}")
        allowed = {"sources", "mix", "seed", "total_cap", "total_cap_mode", "root", "split", "select_data", "caps"}
        unknown = sorted(set(d) - allowed, key=str)
        if unknown:
            raise MixSpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        src_keys = {f.name for f in fields(SourceSpec)}
        sources: list[SourceSpec] = []
        raw_sources = d.get("sources") or []
        if not isinstance(raw_sources, list):
            raise MixSpecError(f"{where}: sources must be a list of mappings, got {raw_sources!r}")
        for i, raw in enumerate(raw_sources):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
                raise MixSpecError(f"{where}: sources[{i}] must be a mapping with a 'name' (a non-empty string)")
            bad = sorted(set(raw) - src_keys, key=str)
            if bad:
                raise MixSpecError(f"{where}: sources[{i}] ({raw['name']!r}) unknown key(s) {bad}")
            sources.append(SourceSpec(**{k: raw[k] for k in raw}))
        caps = parse_caps(d.get("caps"))
        if "select_data" in d:
            names = parse_select_data(d["select_data"])
            sources += [SourceSpec(name=n) for n in names]
        check_cap_keys([s.name for s in sources], caps)
        sources = [replace(s, cap=s.cap if s.cap is not None else cap_for(s.name, caps)) for s in sources]
        total_cap = d.get("total_cap", caps.get(TOTAL_CAP_KEY))
        seed = d.get("seed", 0)
        try:
            if isinstance(seed, bool) or not isinstance(seed, (int, str)):
                raise TypeError
            seed = int(seed)
        except (TypeError, ValueError):
            raise MixSpecError(f"{where}: seed must be an integer, got {seed!r}") from None
        return cls(
            sources=sources,
            mix=d.get("mix", "concat"),
            seed=seed,
            total_cap=parse_cap_value("total_cap", total_cap),
            total_cap_mode=d.get("total_cap_mode", "first"),
            root=d.get("root"),
            split=d.get("split", "training"),
            base_dir=Path(base_dir),
        )


def mix_from_select_data(
    root: str | Path,
    select_data: str | Sequence[str],
    *,
    split: str = "training",
    caps: Mapping[str, Any] | Sequence[str] | str | None = None,
    cap_mode: str = "first",
    batch_ratio: str | Sequence[float] | None = None,
    seed: int = 0,
) -> MixSpec:
    """The mixture of a reference command line (``--select_data``, ``--data_usage_*``, ``--batch_ratio``).

    Args:
        root: Data root (holding ``training/`` etc.) or a split folder itself.
        select_data: Reference select-data string or list of groups.
        split: ``training``, ``validation`` or ``evaluation``.
        caps: Usage caps (see :func:`parse_caps`).
        cap_mode: ``"first"`` (reference) or ``"random"``.
        batch_ratio: Per-source batch shares (``"0.5-0.5"``); switches to ``mix: ratio``.
        seed: Seed for random caps and ratio sampling.
    """
    names = parse_select_data(select_data)
    parsed = parse_caps(caps)
    check_cap_keys(names, parsed)
    ratios = parse_batch_ratio(batch_ratio, len(names))
    sources = [
        SourceSpec(name=n, cap=cap_for(n, parsed), cap_mode=cap_mode, ratio=None if ratios is None else ratios[i])
        for i, n in enumerate(names)
    ]
    return MixSpec(
        sources=sources,
        mix="concat" if ratios is None else "ratio",
        seed=seed,
        total_cap=parsed.get(TOTAL_CAP_KEY),
        total_cap_mode=cap_mode,
        root=str(root),
        split=split,
    )


def load_mix_spec(path: str | Path) -> MixSpec:
    """Load a mixture file (``.yaml``/``.yml`` or ``.toml``); relative paths resolve against its folder."""
    p = Path(path)
    try:
        data = read_mapping(p, "mixture file", suffixes=(".yaml", ".yml", ".toml"))
    except (FileNotFoundError, ValueError) as e:
        raise MixSpecError(str(e)) from None
    try:
        return MixSpec.from_dict(data, base_dir=p.parent, where=str(p))
    except TypeError as e:
        raise MixSpecError(f"mixture file {p}: {e}") from None
