"""``build_dali_loader``: the DALI counterpart of :func:`cllstr.data.loader.build_dataloader`, same arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from cllstr.data.dali.ops import AugmentConfig, check_interpolation
from cllstr.data.dali.pipeline import DaliLoader, resolve_augment, resolve_device
from cllstr.data.dali.source import VALIDATION_MODES, EpochPlan
from cllstr.data.loader import build_dataset
from cllstr.data.mixing import MixSpec
from cllstr.data.transforms import Augment
from cllstr.text.charset import Charset

__all__ = ["build_dali_loader"]


def _start_method() -> str:
    # Forking after CUDA is initialised breaks the children; spawn then (the source pickles cleanly).
    return "spawn" if torch.cuda.is_available() and torch.cuda.is_initialized() else "fork"


def build_dali_loader(
    root_or_paths: str | Path | Sequence[str | Path] | MixSpec,
    select_data: str | Sequence[str] | None = None,
    *,
    batch_size: int,
    img_h: int = 32,
    img_w: int = 100,
    keep_ratio: bool = False,
    rgb: bool = False,
    augment: bool | AugmentConfig | Augment | Mapping[str, Any] = False,
    charset: Charset | None = None,
    workers: int = 0,
    shuffle: bool = True,
    seed: int = 0,
    caps: Mapping[str, Any] | Sequence[str] | str | None = None,
    cap_mode: str = "first",
    split: str = "training",
    batch_ratio: str | Sequence[float] | None = None,
    max_len: int | None = None,
    drop_unknown: bool = False,
    labels: str = "join",
    drop_last: bool = False,
    num_batches: int | None = None,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    interpolation: str = "bicubic",
    device: str = "auto",
    device_id: int | None = None,
    num_threads: int = 2,
    rank: int = 0,
    world_size: int = 1,
    validation: str = "header",
) -> DaliLoader:
    """A DALI loader yielding :class:`~cllstr.data.loader.Batch` objects, like ``build_dataloader``.

    The data arguments (``root_or_paths`` to ``interpolation``) mean what they mean for
    :func:`cllstr.data.loader.build_dataloader`; ``pin_memory`` is accepted and ignored (DALI manages its buffers).

    Args:
        augment: False, True (default :class:`AugmentConfig`), an :class:`AugmentConfig`, a mapping of its fields,
            or a torch-path :class:`~cllstr.data.transforms.Augment` (same op names and probability).
        workers: Python worker processes reading the LMDB (``external_source(parallel=True)``); 0 reads in the
            pipeline's own thread.
        prefetch_factor: Batches DALI prepares ahead (``prefetch_queue_depth``, default 2).
        device: ``"gpu"`` (decode with ``"mixed"``, images come out on the GPU), ``"cpu"`` (``device_id=None``),
            or ``"auto"`` (GPU when CUDA is available).
        device_id: CUDA device in ``"gpu"`` mode (default: torch's current device).
        num_threads: DALI CPU threads.
        rank: Distributed rank; each rank reads its own contiguous shard of every epoch's order.
        world_size: Number of distributed ranks.
        validation: ``"header"`` (cheap checks, Pillow only for unusual formats) or ``"full"`` (Pillow decodes all).

    Returns:
        A :class:`~cllstr.data.dali.pipeline.DaliLoader`; ``len()`` is batches per epoch for this rank,
        ``.num_corrupt`` the skipped images, ``.dataset`` the mixture.
    """
    check_interpolation(interpolation)
    if validation not in VALIDATION_MODES:
        raise ValueError(f"unknown validation mode {validation!r}; known: {', '.join(VALIDATION_MODES)}")
    if workers < 0 or num_threads < 1:
        raise ValueError(f"workers must be >= 0 and num_threads >= 1, got {workers} and {num_threads}")
    if img_h < 1 or img_w < 1:
        raise ValueError(f"image size must be positive, got {img_h}x{img_w}")
    device = resolve_device(device)
    aug = resolve_augment(augment)
    dataset, spec = build_dataset(
        root_or_paths,
        select_data,
        split=split,
        img_h=img_h,
        img_w=img_w,
        keep_ratio=keep_ratio,
        rgb=rgb,
        augment=False,
        charset=charset,
        max_len=max_len,
        drop_unknown=drop_unknown,
        labels=labels,
        caps=caps,
        cap_mode=cap_mode,
        batch_ratio=batch_ratio,
        seed=seed,
        interpolation=interpolation,
    )
    if len(dataset) == 0:
        raise ValueError(f"no samples to load from {root_or_paths!r} (select_data={select_data!r})")
    ratio = spec.mix == "ratio"
    plan = EpochPlan(
        dataset.source_ids,
        batch_size,
        shuffle=shuffle,
        seed=spec.seed if ratio else seed,
        drop_last=drop_last,
        rank=rank,
        world_size=world_size,
        ratios=spec.ratios() if ratio else None,
        num_batches=num_batches,
    )
    if len(plan) == 0:
        raise ValueError(f"rank {rank} of {world_size} gets no batch of {batch_size} from {len(dataset)} samples")
    if device == "gpu":
        device_id = torch.cuda.current_device() if device_id is None else device_id
    else:
        device_id = None
    pipeline_kwargs = dict(
        device=device,
        img_h=img_h,
        img_w=img_w,
        keep_ratio=keep_ratio,
        rgb=rgb,
        augment=aug,
        interpolation=interpolation,
        parallel=workers > 0,
    )
    pipe_kwargs: dict[str, Any] = dict(
        batch_size=batch_size,
        num_threads=num_threads,
        device_id=device_id,
        seed=(seed * 1_000_003 + rank) % (2**31 - 1),
        prefetch_queue_depth=prefetch_factor or 2,
    )
    if workers > 0:
        pipe_kwargs.update(py_num_workers=workers, py_start_method=_start_method())
    return DaliLoader(dataset, plan, pipeline_kwargs, pipe_kwargs, mode="RGB" if rgb else "L", validation=validation)
