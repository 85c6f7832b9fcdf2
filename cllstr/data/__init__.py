"""Data layer: LMDB store, data-mixing specs, torch datasets and loader, validation and inspection.

Submodules are imported lazily so that ``cllstr.data.lmdb_store`` (used by the synthetic engine) does not pull in
torch: ``lmdb_store`` (gathering ``lmdb_format``, ``lmdb_reader``, ``lmdb_writer``), ``mixing`` (with the parsers
of ``select_data``), ``transforms``, ``batch_decode``, ``dataset``, ``sampler``, ``loader``, ``validate``,
``inspection``, ``create``, ``charsets``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LmdbWriter": "lmdb_store",
    "LmdbReader": "lmdb_store",
    "Record": "lmdb_store",
    "LmdbFormatError": "lmdb_store",
    "MixSpec": "mixing",
    "SourceSpec": "mixing",
    "MixSpecError": "mixing",
    "parse_select_data": "mixing",
    "load_mix_spec": "mixing",
    "LmdbDataset": "dataset",
    "MixtureDataset": "dataset",
    "Batch": "loader",
    "build_dataset": "loader",
    "build_dataloader": "loader",
    "validate_lmdb": "validate",
    "ValidationReport": "validate",
    "inspect_lmdb": "inspection",
    "create_lmdb": "create",
    "charset_from_lmdbs": "charsets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cllstr.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cllstr.data.{_EXPORTS[name]}"), name)
