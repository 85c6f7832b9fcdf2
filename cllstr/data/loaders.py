"""Pick the training loader: ``make_loader("auto" | "dali" | "torch", root, select_data, **kwargs)``.

``auto`` is DALI when ``nvidia.dali`` imports, else the torch loader. Both take the arguments of
:func:`cllstr.data.loader.build_dataloader` and yield :class:`~cllstr.data.loader.Batch`; the DALI-only ones
(:data:`DALI_ONLY`) are dropped for the torch loader, except a real distributed split, which it cannot do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cllstr.data.dali import DALI_MISSING, HAS_DALI, require_dali
from cllstr.data.mixing import MixSpec

__all__ = ["DALI_ONLY", "LOADER_KINDS", "describe_loader", "make_loader", "resolve_loader_kind"]

log = logging.getLogger(__name__)

LOADER_KINDS = ("auto", "dali", "torch")
#: ``build_dali_loader`` arguments that ``build_dataloader`` does not have.
DALI_ONLY = frozenset({"device", "device_id", "num_threads", "rank", "world_size", "validation"})


def resolve_loader_kind(kind: str) -> str:
    """``"dali"`` or ``"torch"`` for ``kind``; ``"dali"`` without DALI installed is an ``ImportError``."""
    if kind not in LOADER_KINDS:
        raise ValueError(f"loader must be one of {LOADER_KINDS}, got {kind!r}")
    if kind == "auto":
        return "dali" if HAS_DALI else "torch"
    if kind == "dali" and not HAS_DALI:
        raise ImportError(f"--loader dali: {DALI_MISSING}")
    return kind


def _torch_builder() -> Callable[..., Any]:
    from cllstr.data.loader import build_dataloader

    return build_dataloader


def _dali_builder() -> Callable[..., Any]:
    require_dali()
    from cllstr.data.dali.loader import build_dali_loader

    return build_dali_loader


_BUILDERS: dict[str, Callable[[], Callable[..., Any]]] = {"torch": _torch_builder, "dali": _dali_builder}


def make_loader(
    kind: str,
    root_or_paths: str | Path | Sequence[str | Path] | MixSpec,
    select_data: str | Sequence[str] | None = None,
    **kwargs: Any,
) -> Any:
    """Build the training loader of ``kind``.

    Args:
        kind: ``"auto"`` (DALI when installed, else torch), ``"dali"`` or ``"torch"``.
        root_or_paths: As for :func:`cllstr.data.loader.build_dataloader`.
        select_data: As for :func:`cllstr.data.loader.build_dataloader`.
        **kwargs: Keyword arguments of ``build_dataloader`` (``batch_size`` is required), plus for DALI those of
            :func:`cllstr.data.dali.loader.build_dali_loader` (``device``, ``num_threads``, ``rank``, ...).

    Returns:
        A torch ``DataLoader`` or a :class:`~cllstr.data.dali.pipeline.DaliLoader`; both iterate ``Batch`` objects.

    Raises:
        ImportError: ``kind="dali"`` without DALI installed.
        ValueError: an unknown ``kind``, or ``world_size > 1`` for the torch loader.
    """
    resolved = resolve_loader_kind(kind)
    if resolved == "torch":
        dropped = sorted(DALI_ONLY & kwargs.keys())
        if kwargs.get("world_size", 1) > 1:
            raise ValueError("the torch loader does not shard by rank (world_size > 1); use --loader dali")
        if dropped:
            log.info("torch loader: ignoring DALI-only argument(s) %s", dropped)
        kwargs = {k: v for k, v in kwargs.items() if k not in DALI_ONLY}
    return _BUILDERS[resolved]()(root_or_paths, select_data, **kwargs)


def describe_loader(loader: Any) -> str:
    """What actually loads the batches: ``"torch (2 workers)"``, ``"DALI CPU"`` or ``"DALI GPU (mixed decode)"``."""
    device = getattr(loader, "device", None)
    if hasattr(loader, "plan") and device is not None:  # a DaliLoader
        return "DALI GPU (mixed decode)" if device == "gpu" else "DALI CPU"
    workers = getattr(loader, "num_workers", 0)
    return f"torch ({workers} worker{'s' if workers != 1 else ''})" if workers else "torch (in-process)"
