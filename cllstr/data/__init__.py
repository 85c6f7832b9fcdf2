"""Data layer in three layers, bottom to top (each name has one home; import it from there):

- :mod:`cllstr.data.store` — the LMDB format, reader and writer, and ``cllstr data create|validate|inspect|charset``
  (no torch);
- :mod:`cllstr.data.mixture` — select-data strings, caps, mixture specs and the ratio batch sampler;
- :mod:`cllstr.data.loading` — decoding, datasets and the one loader entry point
  :func:`~cllstr.data.loading.loader.make_loader` over the torch and DALI backends, configured by one
  :class:`~cllstr.data.loading.spec.LoaderSpec`.

The names below are the layer's public API, resolved lazily so that importing ``cllstr.data`` pulls in neither torch
nor DALI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LmdbWriter": "store.writer",
    "LmdbReader": "store.reader",
    "Record": "store.format",
    "LmdbFormatError": "store.format",
    "validate_lmdb": "store.validate",
    "ValidationReport": "store.validate",
    "inspect_lmdb": "store.inspection",
    "create_lmdb": "store.create",
    "charset_from_lmdbs": "store.charsets",
    "MixSpec": "mixture.spec",
    "SourceSpec": "mixture.spec",
    "load_mix_spec": "mixture.spec",
    "MixSpecError": "mixture.select_data",
    "parse_select_data": "mixture.select_data",
    "LoaderSpec": "loading.spec",
    "LmdbDataset": "loading.dataset",
    "MixtureDataset": "loading.dataset",
    "Batch": "loading.batch",
    "build_dataset": "loading.torch_backend",
    "build_dataloader": "loading.torch_backend",
    "make_loader": "loading.loader",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cllstr.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cllstr.data.{_EXPORTS[name]}"), name)
