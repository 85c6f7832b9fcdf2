"""``build_dali_loader(spec, charset)``: the DALI backend of :func:`~cllstr.data.loading.loader.make_loader`."""

from __future__ import annotations

from typing import Any

import torch

from cllstr.data.loading.dali.ops import check_interpolation
from cllstr.data.loading.dali.pipeline import DaliLoader, resolve_augment, resolve_device
from cllstr.data.loading.dali.source import EpochPlan
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.loading.torch_backend import build_dataset
from cllstr.text.charset import Charset

__all__ = ["build_dali_loader"]


def _start_method() -> str:
    # Forking after CUDA is initialised breaks the children; spawn then (the source pickles cleanly).
    return "spawn" if torch.cuda.is_available() and torch.cuda.is_initialized() else "fork"


def build_dali_loader(spec: LoaderSpec, charset: Charset | None = None) -> DaliLoader:
    """A DALI loader yielding :class:`~cllstr.data.loading.batch.Batch` objects, like the torch backend.

    The spec's data fields mean what they mean for the torch backend (the same records, filters and batches);
    ``pin_memory`` and ``decode_threads`` are ignored (DALI manages its buffers and threads). The DALI fields:
    ``augment`` (False, True, an ``AugmentConfig``, a mapping of its fields, or a torch ``Augment``: same op names
    and probability), ``workers`` (Python processes reading the LMDB, ``external_source(parallel=True)``),
    ``prefetch_factor`` (DALI's ``prefetch_queue_depth``, default 2), ``device`` (``gpu``: ``mixed`` decoding, images
    come out on the GPU; ``cpu``; ``auto``: GPU when CUDA is available), ``device_id``, ``num_threads``, ``rank`` /
    ``world_size`` (``batch_size`` is the global batch, as for the torch backend: each rank reads batches of
    ``batch_size / world_size`` from its own contiguous shard of every epoch's order) and ``validation``.

    Returns:
        A :class:`~cllstr.data.loading.dali.pipeline.DaliLoader`; ``len()`` is batches per epoch for this rank,
        ``.num_corrupt`` the skipped images, ``.dataset`` the mixture.
    """
    check_interpolation(spec.interpolation)
    if spec.batch_size % spec.world_size:
        raise ValueError(f"batch_size {spec.batch_size} (the global batch) must divide by world_size {spec.world_size}")
    per_rank = spec.batch_size // spec.world_size
    device = resolve_device(spec.device)
    aug = resolve_augment(spec.augment)
    dataset, mix = build_dataset(spec.replace(augment=False), charset)
    if len(dataset) == 0:
        raise ValueError(f"no samples to load from {spec.root!r} (select_data={spec.select_data!r})")
    ratio = mix.mix == "ratio"
    plan = EpochPlan(dataset.source_ids, per_rank, shuffle=spec.shuffle, seed=mix.seed if ratio else spec.seed,
                     drop_last=spec.drop_last, rank=spec.rank, world_size=spec.world_size,
                     ratios=mix.ratios() if ratio else None, num_batches=spec.num_batches)
    if len(plan) == 0:
        raise ValueError(f"rank {spec.rank} of {spec.world_size} gets no batch of {per_rank} from "
                         f"{len(dataset)} samples")
    device_id = (torch.cuda.current_device() if spec.device_id is None else spec.device_id) if device == "gpu" else None
    pipeline_kwargs = dict(device=device, img_h=spec.img_h, img_w=spec.img_w, keep_ratio=spec.keep_ratio, rgb=spec.rgb,
                           augment=aug, interpolation=spec.interpolation, parallel=spec.workers > 0)
    pipe_kwargs: dict[str, Any] = dict(batch_size=per_rank, num_threads=spec.num_threads, device_id=device_id,
                                       seed=(spec.seed * 1_000_003 + spec.rank) % (2**31 - 1),
                                       prefetch_queue_depth=spec.prefetch_factor or 2)
    if spec.workers > 0:
        pipe_kwargs.update(py_num_workers=spec.workers, py_start_method=_start_method())
    return DaliLoader(dataset, plan, pipeline_kwargs, pipe_kwargs, mode="RGB" if spec.rgb else "L",
                      validation=spec.validation)
