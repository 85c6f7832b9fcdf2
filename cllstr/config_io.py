"""The one reader of configuration files (YAML, TOML, JSON) and the one parser of dotted ``key=value`` overrides.

Training configs, study files and mixture files all go through :func:`read_mapping`; ``--set`` options of
``cllstr train`` and ``cllstr study run`` through :func:`parse_overrides`. Errors are ``ValueError`` with one line
naming the file or the override.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["CONFIG_SUFFIXES", "parse_overrides", "read_mapping"]

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def read_mapping(path: str | Path, what: str = "config file", suffixes: Sequence[str] = CONFIG_SUFFIXES) -> dict:
    """The top-level mapping of a YAML/TOML/JSON file (an empty file is ``{}``).

    Args:
        path: The file.
        what: What the file is, for messages (``"study file"``, ``"mixture file"``).
        suffixes: Accepted extensions.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unsupported extension, text that is not UTF-8 or does not parse, or a top level that is not a
            mapping; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ValueError(f"{what} {path}: unsupported extension {suffix!r} (use {', '.join(suffixes)})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {path}: not UTF-8 text: {e}") from None
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {path}: cannot parse: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path}: expected a mapping at top level, got {type(data).__name__}")
    return data


def parse_overrides(items: Iterable[str]) -> list[tuple[list[str], Any]]:
    """Dotted overrides → ``(key path, value)`` pairs, values parsed as YAML (``optim.lr=5e-4`` →
    ``(["optim", "lr"], 0.0005)``; an empty value is None).

    Raises:
        ValueError: an item without ``=``, an empty key part, or a value that is not YAML; the message names the item.
    """
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ValueError(f"override {item!r} must look like key.sub=value (e.g. model=crnn, optim.lr=5e-4)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: the value is not a YAML scalar, list or mapping: {e}") from None
        out.append(([p.strip() for p in parts], value))
    return out
