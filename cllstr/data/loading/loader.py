"""The one loader entry point: ``make_loader(spec, charset)`` picks the backend named by ``spec.loader``.

``auto`` is DALI when ``nvidia.dali`` imports, else torch. Both backends take the same
:class:`~cllstr.data.loading.spec.LoaderSpec` and yield :class:`~cllstr.data.loading.batch.Batch`; the DALI-only
fields (device, threads, record screening) mean nothing to the torch backend, which cannot shard by rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cllstr.data.loading.dali import DALI_MISSING, HAS_DALI, require_dali
from cllstr.data.loading.spec import LOADER_KINDS, LoaderSpec
from cllstr.text.charset import Charset

__all__ = ["LOADER_KINDS", "describe_loader", "make_loader", "resolve_loader_kind"]


def resolve_loader_kind(kind: str) -> str:
    """``"dali"`` or ``"torch"`` for ``kind``; ``"dali"`` without DALI installed is an ``ImportError``."""
    if kind not in LOADER_KINDS:
        raise ValueError(f"loader must be one of {LOADER_KINDS}, got {kind!r}")
    if kind == "auto":
        return "dali" if HAS_DALI else "torch"
    if kind == "dali" and not HAS_DALI:
        raise ImportError(f"--loader dali: {DALI_MISSING}")
    return kind


def _torch_backend() -> Callable[..., Any]:
    from cllstr.data.loading.torch_backend import build_torch_loader

    return build_torch_loader


def _dali_backend() -> Callable[..., Any]:
    require_dali()
    from cllstr.data.loading.dali.backend import build_dali_loader

    return build_dali_loader


BACKENDS: dict[str, Callable[[], Callable[..., Any]]] = {"torch": _torch_backend, "dali": _dali_backend}


def make_loader(spec: LoaderSpec, charset: Charset | None = None) -> Any:
    """The loader of ``spec`` on the backend ``spec.loader`` names.

    Args:
        spec: What to load and how.
        charset: Counts (and with ``spec.drop_unknown`` drops) out-of-charset characters; measures label lengths.

    Returns:
        A torch ``DataLoader`` or a :class:`~cllstr.data.loading.dali.pipeline.DaliLoader`; both iterate ``Batch``.

    Raises:
        ImportError: ``loader="dali"`` without DALI installed.
        ValueError: ``world_size > 1`` for the torch backend.
    """
    return BACKENDS[resolve_loader_kind(spec.loader)]()(spec, charset)


def describe_loader(loader: Any) -> str:
    """What actually loads the batches: ``"torch (2 workers)"``, ``"DALI CPU"`` or ``"DALI GPU (mixed decode)"``."""
    device = getattr(loader, "device", None)
    if hasattr(loader, "plan") and device is not None:  # a DaliLoader
        return "DALI GPU (mixed decode)" if device == "gpu" else "DALI CPU"
    workers = getattr(loader, "num_workers", 0)
    return f"torch ({workers} worker{'s' if workers != 1 else ''})" if workers else "torch (in-process)"
