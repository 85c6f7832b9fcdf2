"""The torch backend: a :class:`~cllstr.data.loading.spec.LoaderSpec` → datasets → ``DataLoader`` of ``Batch``.

``build_dataloader(root, "lang_CBHJAKL", batch_size=128)`` reproduces the reference training loader (32x100 fixed
bicubic resize, ``[-1, 1]`` normalisation) with caps that are checked rather than silently ignored; a mixture file
or a :class:`~cllstr.data.mixture.spec.MixSpec` adds random caps and per-batch source ratios. A batch is fetched with
one ``__getitems__`` call that decodes its images with Pillow on ``decode_threads`` threads into one ``uint8`` array and
makes the float :class:`~cllstr.data.loading.batch.Batch` from it once (in shared memory when a worker makes it).
:func:`build_dataset` is shared with the DALI backend, so both read the same records with the same filters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from cllstr.data.loading.batch import Collate
from cllstr.data.loading.dataset import LmdbDataset, MixtureDataset
from cllstr.data.loading.decode import ImageTransform, auto_decode_threads
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.mixture.sampler import RatioBatchSampler, ShardedBatchSampler
from cllstr.data.mixture.select_data import parse_batch_ratio, script_of_name
from cllstr.data.mixture.spec import MixSpec, SourceSpec, load_mix_spec, mix_from_select_data
from cllstr.text.charset import Charset

__all__ = ["build_dataset", "build_dataloader", "build_torch_loader", "mix_spec_of"]


def mix_spec_of(spec: LoaderSpec) -> MixSpec:
    """The mixture a spec names: its ``root`` as a :class:`MixSpec`, mixture file, data root + ``select_data``, or
    list of LMDB paths/folders (with ``batch_ratio``, one share per path)."""
    root, select_data = spec.root, spec.select_data
    if root is None:
        raise ValueError("the loader spec names no data (root is None)")
    if isinstance(root, MixSpec):
        return root
    if isinstance(root, (str, Path)) and Path(root).suffix in (".yaml", ".yml", ".toml"):
        return load_mix_spec(root)
    if select_data is not None:
        if not isinstance(root, (str, Path)):
            raise ValueError("select_data needs a single data root, got a list of paths")
        return mix_from_select_data(root, select_data, split=spec.split, caps=spec.caps, cap_mode=spec.cap_mode,
                                    batch_ratio=spec.batch_ratio, seed=spec.seed)
    paths = [root] if isinstance(root, (str, Path)) else list(root)
    sources = [SourceSpec(name=Path(p).name, path=str(Path(p).resolve())) for p in paths]
    ratios = parse_batch_ratio(spec.batch_ratio, len(sources))
    if ratios is not None:
        for s, r in zip(sources, ratios, strict=True):
            s.ratio = r
    return MixSpec(sources=sources, mix="concat" if ratios is None else "ratio", seed=spec.seed)


def build_dataset(spec: LoaderSpec, charset: Charset | None = None,
                  decode_threads: int = 1) -> tuple[MixtureDataset, MixSpec]:
    """The :class:`MixtureDataset` of ``spec`` (its mixture, label filters and image transform).

    Args:
        spec: What to load.
        charset: Count (and with ``spec.drop_unknown`` drop) out-of-charset characters; also measures label lengths.
        decode_threads: Threads decoding each batch (the batches do not depend on it).

    Returns:
        The dataset and the resolved mixture spec.
    """
    mix = mix_spec_of(spec)
    transform = ImageTransform.from_spec(spec)
    resolved = mix.resolve()
    sources = []
    for src, paths in resolved:
        dsets = [
            LmdbDataset(p, transform, name=src.name if len(paths) == 1 else f"{src.name}/{p.name}",
                        script=src.script or script_of_name(src.name), spec=spec, charset=charset)
            for p in paths
        ]
        sources.append((src.name, dsets))
    dataset = MixtureDataset(
        sources, caps=[s.cap for s, _ in resolved], cap_modes=[s.cap_mode for s, _ in resolved],
        total_cap=mix.total_cap, total_cap_mode=mix.total_cap_mode, seed=mix.seed, decode_threads=decode_threads,
    )
    if mix.mix == "ratio":
        mix.sources = [s for s, _ in resolved]
    return dataset, mix


def build_torch_loader(spec: LoaderSpec, charset: Charset | None = None) -> DataLoader:
    """A ``DataLoader`` yielding :class:`~cllstr.data.loading.batch.Batch` objects.

    Args:
        spec: What to load and how (``batch_size``, ``shuffle``, ``workers``, ``decode_threads`` ...).
        charset: As for :func:`build_dataset`.

    Returns:
        The loader; ``loader.dataset`` is the :class:`MixtureDataset` (``.num_corrupt``, ``.source_sizes()``).

    With ``spec.world_size > 1`` the loader yields this rank's strided share of each global batch of
    ``spec.batch_size`` (:class:`~cllstr.data.mixture.sampler.ShardedBatchSampler`); every rank draws the same global
    batches, so the ranks together see exactly what one process with the same spec sees.
    """
    threads = auto_decode_threads(spec.workers) if spec.decode_threads is None else spec.decode_threads
    dataset, mix = build_dataset(spec, charset, decode_threads=threads)
    collate = Collate(spec.channels, spec.img_h, spec.img_w)
    generator = torch.Generator().manual_seed(spec.seed)
    extra: dict[str, Any] = {}
    if spec.workers > 0:
        extra.update(persistent_workers=True, prefetch_factor=spec.prefetch_factor or 2)
    common = dict(num_workers=spec.workers, collate_fn=collate, pin_memory=spec.pin_memory, generator=generator)
    if mix.mix == "ratio":
        batches: Any = RatioBatchSampler(dataset.source_ids, mix.ratios(), spec.batch_size,
                                         num_batches=spec.num_batches, seed=mix.seed, shuffle=spec.shuffle)
    elif spec.world_size > 1:  # the global batches a single process would draw (same sampler, same generator)
        order = RandomSampler(dataset, generator=generator) if spec.shuffle else SequentialSampler(dataset)
        batches = BatchSampler(order, spec.batch_size, spec.drop_last)
    else:
        return DataLoader(dataset, batch_size=spec.batch_size, shuffle=spec.shuffle, drop_last=spec.drop_last,
                          **common, **extra)
    if spec.world_size > 1:
        batches = ShardedBatchSampler(batches, spec.rank, spec.world_size, even=spec.even_shares)
    return DataLoader(dataset, batch_sampler=batches, **common, **extra)


def build_dataloader(root: Any, select_data: Any = None, *, charset: Charset | None = None,
                     **fields: Any) -> DataLoader:
    """``build_torch_loader(LoaderSpec(root=root, select_data=select_data, **fields), charset)``: the keyword form.

    ``fields`` are :class:`LoaderSpec` fields (``batch_size=``, ``img_h=``, ``caps=``, ``max_label_length=`` ...);
    an unknown one is a ``TypeError`` naming it.
    """
    return build_torch_loader(LoaderSpec(root=root, select_data=select_data, **fields), charset)
