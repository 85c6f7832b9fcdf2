"""LMDB store in the published STR format (CRNN / deep-text-recognition-benchmark / CLL-STR / parseq / mmocr).

Keys, all ASCII bytes: ``num-samples`` (decimal record count), ``image-%09d`` (the encoded image file, untouched),
``label-%09d`` (UTF-8 label), optional ``imagepath-%09d`` (UTF-8 source path), indices from 1. cllstr adds one
``meta`` key holding JSON (script, source, stats) that the other tools never read.

:class:`LmdbWriter` batches records into transactions, grows the map when it is full, builds the store in a temp dir
beside the target (``<path>.lmdb.tmp``) and renames it into place on :meth:`LmdbWriter.close`; with ``resume=True`` it
continues an interrupted write from the last commit. :class:`LmdbReader` opens its environment lazily, once per
process (``readonly=True, lock=False, readahead=False``), so it is safe to hand to DataLoader workers.

The format lives in :mod:`cllstr.data.lmdb_format`, the writer in :mod:`cllstr.data.lmdb_writer` and the reader in
:mod:`cllstr.data.lmdb_reader`; this module gathers their public names.
"""

from __future__ import annotations

from cllstr.data.lmdb_format import (
    META_KEY,
    NUM_SAMPLES_KEY,
    LmdbFormatError,
    Record,
    image_key,
    imagepath_key,
    is_lmdb_dir,
    label_key,
    temp_path,
)
from cllstr.data.lmdb_reader import LmdbReader, release_env
from cllstr.data.lmdb_writer import LmdbWriter

__all__ = [
    "NUM_SAMPLES_KEY",
    "META_KEY",
    "LmdbFormatError",
    "Record",
    "LmdbWriter",
    "LmdbReader",
    "image_key",
    "label_key",
    "imagepath_key",
    "temp_path",
    "is_lmdb_dir",
    "release_env",
]
