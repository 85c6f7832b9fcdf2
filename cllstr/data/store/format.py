"""The published STR LMDB format: key names, the ``num-samples`` and ``meta`` values, and the :class:`Record` type.

Keys, all ASCII bytes: ``num-samples`` (decimal record count), ``image-%09d`` (the encoded image file, untouched),
``label-%09d`` (UTF-8 label), optional ``imagepath-%09d`` (UTF-8 source path), indices from 1. cllstr adds one
``meta`` key holding JSON (script, source, stats) that the other tools never read.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = [
    "DECODE_ERRORS",
    "NUM_SAMPLES_KEY",
    "META_KEY",
    "TEMP_SUFFIX",
    "LmdbFormatError",
    "Record",
    "image_key",
    "label_key",
    "imagepath_key",
    "temp_path",
    "is_lmdb_dir",
    "parse_num_samples",
    "parse_meta",
]

NUM_SAMPLES_KEY = b"num-samples"
META_KEY = b"meta"
TEMP_SUFFIX = ".lmdb.tmp"

#: Exceptions that mean "this record's encoded image is unreadable" (Pillow's, and ``struct.error`` of header
#: parsing): readers skip the record and count it; validation reports it.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError)


class LmdbFormatError(ValueError):
    """The LMDB does not follow the published format (missing or malformed ``num-samples`` or ``meta``)."""


def image_key(index: int) -> bytes:
    """Key of the 1-based record ``index``'s image."""
    return b"image-%09d" % index


def label_key(index: int) -> bytes:
    """Key of the 1-based record ``index``'s label."""
    return b"label-%09d" % index


def imagepath_key(index: int) -> bytes:
    """Key of the 1-based record ``index``'s optional source path."""
    return b"imagepath-%09d" % index


def temp_path(path: str | Path) -> Path:
    """The directory an :class:`LmdbWriter` builds ``path`` in before renaming it into place."""
    p = Path(path)
    return p.with_name(p.name + TEMP_SUFFIX)


def is_lmdb_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an LMDB (``data.mdb``)."""
    return (Path(path) / "data.mdb").is_file()


@dataclass(frozen=True)
class Record:
    """One sample of an LMDB store.

    Attributes:
        index: 1-based record index (the number in the keys).
        image: Encoded image bytes as stored.
        label: UTF-8-decoded label, as stored (no normalisation applied on read).
        image_path: The ``imagepath-`` value, or None when absent.
    """

    index: int
    image: bytes = field(repr=False)
    label: str
    image_path: str | None = None


def parse_num_samples(raw: bytes | None, where: str) -> int:
    """The record count stored under ``num-samples``; ``where`` names the store in errors."""
    if raw is None:
        raise LmdbFormatError(f"{where}: key 'num-samples' is missing (not an STR LMDB, or an unfinished write)")
    try:
        n = int(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise LmdbFormatError(f"{where}: key 'num-samples' is not an ASCII integer: {raw[:40]!r}") from None
    if n < 0:
        raise LmdbFormatError(f"{where}: key 'num-samples' is negative ({n})")
    return n


def parse_meta(raw: bytes | None, where: str) -> dict[str, Any]:
    """The JSON object stored under ``meta`` (``{}`` when absent); ``where`` names the store in errors."""
    if raw is None:
        return {}
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LmdbFormatError(f"{where}: key 'meta' is not UTF-8 JSON: {e}") from None
    if not isinstance(meta, dict):
        raise LmdbFormatError(f"{where}: key 'meta' must hold a JSON object, got {type(meta).__name__}")
    return meta
