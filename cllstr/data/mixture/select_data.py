"""The reference command-line vocabulary: select-data strings, usage caps, batch ratios and the data-root layout.

Reference strings (CLL-STR ``train.py``) are ``-``-joined groups: ``lang_<letters>`` expands each one-letter script
code (``lang_CBHJAKL``), ``SynthMLT_<letters>`` expands to ``SynthMLT_<NAME>`` folders, anything else is a literal
folder name; the folders live in ``<root>/{training,validation,evaluation}/<NAME>``. Unlike the reference, an unknown
letter, an unknown folder, a duplicate or a cap that matches no source is an error. Caps (``LAT=2000``,
``SynthMLT=2000``, ``total=...``) keep the first N records as the reference does, or N random ones for a seed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cllstr.data.store.format import is_lmdb_dir
from cllstr.scripts import SCRIPTS, script_by_letter

__all__ = [
    "required_folders",
    "SPLITS",
    "SYNTH_PREFIX",
    "TOTAL_CAP_KEY",
    "ALL_SOURCES",
    "CAP_MODES",
    "MixSpecError",
    "parse_select_data",
    "parse_cap_value",
    "parse_caps",
    "check_cap_keys",
    "parse_batch_ratio",
    "cap_for",
    "validation_names",
    "script_of_name",
    "find_lmdbs",
    "split_root",
    "select_indices",
]

SPLITS = ("training", "validation", "evaluation")
SYNTH_PREFIX = "SynthMLT"
TOTAL_CAP_KEY = "total"
#: The reference default ``select_data='/'``: every folder under the split root.
ALL_SOURCES = "/"
CAP_MODES = ("first", "random")


class MixSpecError(ValueError):
    """A select-data string, cap or mixture file is invalid; the message names the offending part."""


def _expand_letters(letters: str, group: str, prefix: str) -> list[str]:
    if not letters:
        raise MixSpecError(f"select-data group {group!r} has no script letters")
    out = []
    for ch in letters:
        if not ch.isupper():
            raise MixSpecError(f"select-data group {group!r}: script letters are upper case, got {ch!r}")
        try:
            out.append(prefix + script_by_letter(ch).name)
        except KeyError as e:
            raise MixSpecError(f"select-data group {group!r}: {e.args[0]}") from None
    return out


def parse_select_data(select: str | Sequence[str]) -> list[str]:
    """Expand a reference select-data string into folder names.

    Args:
        select: ``"lang_CBHJAKL-SynthMLT_K"``, ``"/"`` (all folders), or a list of groups.

    Returns:
        Folder names in order, e.g. ``["CHI", "BEN", ..., "LAT", "SynthMLT_KOR"]``.

    Raises:
        MixSpecError: empty groups, unknown or lower-case letters, duplicate names, path-like names.
    """
    if isinstance(select, str):
        if select.strip() == ALL_SOURCES:
            return [ALL_SOURCES]
        groups = select.split("-")
    elif isinstance(select, (list, tuple)):
        groups = list(select)
    else:
        raise MixSpecError(f"select-data must be a string or a list of groups, got {select!r}")
    if not groups:
        raise MixSpecError("select-data is empty")
    names: list[str] = []
    for group in groups:
        if not isinstance(group, str):
            raise MixSpecError(f"select-data group must be a string, got {group!r}")
        group = group.strip()
        if not group:
            raise MixSpecError(f"select-data {select!r} has an empty group")
        if group.startswith("lang_"):
            names += _expand_letters(group[len("lang_") :], group, "")
        elif group.startswith(SYNTH_PREFIX + "_"):
            rest = group[len(SYNTH_PREFIX) + 1 :]
            names += [group] if rest in SCRIPTS else _expand_letters(rest, group, SYNTH_PREFIX + "_")
        else:
            if group in (".", "..") or "\\" in group or group.startswith("/") or ".." in group.split("/"):
                raise MixSpecError(f"select-data group {group!r} is not a folder name under the split root")
            names.append(group)
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise MixSpecError(f"select-data {select!r} names {n!r} twice (use ratios to weight a source)")
        seen.add(n)
    return names


def validation_names(names: Sequence[str]) -> list[str]:
    """Validation folders for training names, as the reference does: ``SynthMLT_KOR`` → ``KOR``, de-duplicated."""
    out: list[str] = []
    for n in names:
        v = n[len(SYNTH_PREFIX) + 1 :] if n.startswith(SYNTH_PREFIX + "_") else n
        if v not in out:
            out.append(v)
    return out


def required_folders(select_data: str | Sequence[str], eval_languages: Sequence[str] | None = None,
                     eval_split: str = "evaluation", val_select: Sequence[str] | None = None,
                     validation: bool = True) -> list[str]:
    """Relative LMDB folders a run of ``select_data`` reads: its training sources, its validation languages
    (``val_select``, else those of the sources; with ``validation``) and ``<eval_split>/<lang>`` for
    ``eval_languages`` (default: the validation languages), in that order, without repeats."""
    names = parse_select_data(select_data)
    val = list(val_select or validation_names(names))
    rels = [f"training/{n}" for n in names] + [f"{eval_split}/{lang}" for lang in (eval_languages or val)]
    if validation:
        rels += [f"validation/{n}" for n in val]
    return list(dict.fromkeys(rels))


def script_of_name(name: str) -> str | None:
    """Script of a folder name (``KOR``, ``SynthMLT_KOR``, ``MLT19/KOR`` → ``KOR``), or None."""
    for part in reversed(name.replace("\\", "/").split("/")):
        for token in reversed(part.split("_")):
            if token.upper() in SCRIPTS:
                return token.upper()
    return None


def parse_cap_value(key: str, value: Any) -> int | None:
    """One cap: a non-negative integer, or None for ``all``/None; ``key`` names it in errors."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        n = int(value)
    except (TypeError, ValueError):
        raise MixSpecError(f"cap {key!r}: expected a non-negative integer or 'all', got {value!r}") from None
    if n < 0:
        raise MixSpecError(f"cap {key!r}: expected a non-negative integer, got {n}")
    return n


def parse_caps(caps: Mapping[str, Any] | Sequence[str] | str | None) -> dict[str, int]:
    """Parse usage caps: ``"LAT=2000,SynthMLT=2000"``, ``["LAT=2000"]`` or ``{"LAT": 2000}``; ``all`` means none.

    Keys are source names, a prefix group (``SynthMLT`` caps every ``SynthMLT_*`` source separately) or ``total``
    (caps the concatenation, the reference ``--data_usage``).
    """
    if caps is None:
        return {}
    items: list[tuple[str, Any]]
    if isinstance(caps, Mapping):
        items = list(caps.items())
    elif isinstance(caps, (str, list, tuple)):
        parts = caps.split(",") if isinstance(caps, str) else list(caps)
        items = []
        for part in parts:
            if not isinstance(part, str):
                raise MixSpecError(f"cap {part!r} must be a string like NAME=COUNT")
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise MixSpecError(f"cap {part!r} must look like NAME=COUNT")
            items.append((key.strip(), value.strip()))
    else:
        raise MixSpecError(f"caps must be a mapping, a list or a string like NAME=COUNT,..., got {caps!r}")
    out: dict[str, int] = {}
    for key, value in items:
        if not isinstance(key, str) or not key:
            raise MixSpecError(f"cap key must be a non-empty string, got {key!r}")
        if key in out:
            raise MixSpecError(f"cap {key!r} given twice")
        n = parse_cap_value(key, value)
        if n is not None:
            out[key] = n
    return out


def cap_for(name: str, caps: Mapping[str, int]) -> int | None:
    """The cap for source ``name``: an exact key wins over a prefix group (``SynthMLT`` for ``SynthMLT_KOR``)."""
    if name in caps:
        return caps[name]
    for key, value in caps.items():
        if key != TOTAL_CAP_KEY and name.startswith(key + "_"):
            return value
    return None


def check_cap_keys(names: Sequence[str], caps: Mapping[str, int]) -> None:
    """Raise :class:`MixSpecError` for a cap that matches none of ``names`` (a typo would otherwise be ignored)."""
    for key in caps:
        if key == TOTAL_CAP_KEY:
            continue
        if not any(n == key or n.startswith(key + "_") for n in names):
            raise MixSpecError(f"cap {key!r} matches no selected source; sources: {', '.join(names)}")


def parse_batch_ratio(ratio: str | Sequence[float] | None, n: int) -> list[float] | None:
    """Parse ``"0.5-0.5"`` / ``[1, 1]`` into ``n`` normalised shares; None stays None."""
    if ratio is None:
        return None
    if not isinstance(ratio, (str, list, tuple)):
        raise MixSpecError(f"batch ratio {ratio!r} must be numbers joined by '-' or a list of numbers")
    parts = ratio.split("-") if isinstance(ratio, str) else list(ratio)
    try:
        if any(isinstance(p, bool) for p in parts):
            raise TypeError
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise MixSpecError(f"batch ratio {ratio!r} must be numbers joined by '-'") from None
    if len(values) != n:
        raise MixSpecError(f"batch ratio {ratio!r} has {len(values)} values for {n} sources")
    total = sum(values)
    if any(not math.isfinite(v) or v < 0 for v in values) or not 0 < total < math.inf:
        raise MixSpecError(f"batch ratio {ratio!r} must be non-negative with a positive, finite sum")
    return [v / total for v in values]


def find_lmdbs(path: str | Path) -> list[Path]:
    """LMDB directories at or under ``path`` (sorted), as the reference's ``hierarchical_dataset`` walks them."""
    p = Path(path)
    if is_lmdb_dir(p):
        return [p]
    if not p.is_dir():
        raise MixSpecError(f"data source {p} does not exist")
    found = sorted(d.parent for d in p.rglob("data.mdb"))
    if not found:
        raise MixSpecError(f"no LMDB (data.mdb) under {p}")
    return found


def split_root(root: str | Path, split: str) -> Path:
    """``<root>/<split>`` when it exists; ``root`` itself when it already is a split folder (``data/training``)."""
    if split not in SPLITS:
        raise MixSpecError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    r = Path(root)
    if (r / split).is_dir():
        return r / split
    if r.is_dir():
        return r
    raise MixSpecError(f"data root {r} does not exist")


def select_indices(n: int, cap: int | None, mode: str = "first", seed: int = 0, key: str = "") -> np.ndarray:
    """Indices kept by a cap: the first ``cap`` (reference) or ``cap`` random ones in increasing order.

    Args:
        n: Records available.
        cap: Records to keep; None keeps all.
        mode: ``"first"`` or ``"random"``.
        seed: Seed of the random choice.
        key: Mixed into the seed so that sources draw independent subsets.

    Returns:
        ``int64`` array of kept indices.
    """
    if mode not in CAP_MODES:
        raise MixSpecError(f"cap_mode must be one of {CAP_MODES}, got {mode!r}")
    if cap is None or cap >= n:
        return np.arange(n, dtype=np.int64)
    if mode == "first":
        return np.arange(cap, dtype=np.int64)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return np.sort(rng.choice(n, size=cap, replace=False)).astype(np.int64)
