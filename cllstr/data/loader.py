"""The torch loader path: mixture spec → datasets → ``DataLoader`` yielding :class:`Batch`.

``build_dataloader(root, "lang_CBHJAKL", batch_size=128)`` reproduces the reference training loader (32x100 fixed
bicubic resize, ``[-1, 1]`` normalisation) with caps that are checked rather than silently ignored; a mixture file
or a :class:`~cllstr.data.mixing.MixSpec` adds random caps and per-batch source ratios. A batch is fetched with one
``__getitems__`` call that decodes its images with Pillow on ``decode_threads`` threads into one ``uint8`` array; the
float batch is built from it once, in :class:`Collate` (in shared memory when a worker builds it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from cllstr.data.batch_decode import SampleBatch, auto_decode_threads
from cllstr.data.dataset import LmdbDataset, MixtureDataset, Sample
from cllstr.data.mixing import (
    MixSpec,
    SourceSpec,
    load_mix_spec,
    mix_from_select_data,
    parse_batch_ratio,
    script_of_name,
)
from cllstr.data.sampler import RatioBatchSampler
from cllstr.data.transforms import Augment, ImageTransform, normalize_images
from cllstr.text.charset import Charset

__all__ = ["Batch", "Collate", "build_dataset", "build_dataloader"]


@dataclass
class Batch:
    """One training batch.

    Attributes:
        images: ``(B, C, H, W)`` float32 in ``[-1, 1]``.
        labels: ``B`` NFC labels.
        scripts: ``B`` script names (``""`` when unknown).
        num_skipped: Corrupt records dropped from this batch.
    """

    images: torch.Tensor
    labels: list[str]
    scripts: list[str] = field(default_factory=list)
    num_skipped: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def pin_memory(self) -> Batch:
        """Pinned copy of the images (used by ``DataLoader(pin_memory=True)``)."""
        return Batch(self.images.pin_memory(), self.labels, self.scripts, self.num_skipped)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with images on ``device``."""
        return Batch(self.images.to(device, non_blocking=non_blocking), self.labels, self.scripts, self.num_skipped)


def _batch_tensor(shape: tuple[int, int, int, int]) -> torch.Tensor:
    """An empty float32 tensor; in a loader worker it is allocated in shared memory, as ``default_collate`` does, so
    sending it to the main process needs no copy."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * 4)
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, shape)


class Collate:
    """Drop corrupt samples (None) and stack the rest into a :class:`Batch`.

    A :class:`~cllstr.data.batch_decode.SampleBatch` (what the datasets' ``__getitems__`` return) is converted from
    its batch array directly; any other list of samples is stacked first. Both give the same batch.

    Args:
        channels: Image channels (for the shape of an all-corrupt, empty batch).
        img_h: Image height.
        img_w: Image width.
    """

    def __init__(self, channels: int, img_h: int, img_w: int) -> None:
        self.shape = (channels, img_h, img_w)

    def __call__(self, samples: Sequence[Sample | None]) -> Batch:
        good = [s for s in samples if s is not None]
        skipped = len(samples) - len(good)
        if not good:
            return Batch(torch.empty((0, *self.shape)), [], [], skipped)
        arrays, labels, scripts = zip(*good, strict=True)
        if isinstance(samples, SampleBatch) and len(samples.images) == len(samples):
            images = samples.images[[s is not None for s in samples]] if skipped else samples.images
        else:
            images = np.stack(arrays)
        b, h, w, c = images.shape
        return Batch(normalize_images(images, _batch_tensor((b, c, h, w))), list(labels), list(scripts), skipped)


def _as_spec(
    root_or_paths: str | Path | Sequence[str | Path] | MixSpec,
    select_data: str | Sequence[str] | None,
    split: str,
    caps: Mapping[str, Any] | Sequence[str] | str | None,
    cap_mode: str,
    batch_ratio: str | Sequence[float] | None,
    seed: int,
) -> MixSpec:
    if isinstance(root_or_paths, MixSpec):
        return root_or_paths
    if isinstance(root_or_paths, (str, Path)) and Path(root_or_paths).suffix in (".yaml", ".yml", ".toml"):
        return load_mix_spec(root_or_paths)
    if select_data is not None:
        if not isinstance(root_or_paths, (str, Path)):
            raise ValueError("select_data needs a single data root, got a list of paths")
        return mix_from_select_data(
            root_or_paths, select_data, split=split, caps=caps, cap_mode=cap_mode, batch_ratio=batch_ratio, seed=seed
        )
    paths = [root_or_paths] if isinstance(root_or_paths, (str, Path)) else list(root_or_paths)
    sources = [SourceSpec(name=Path(p).name, path=str(Path(p).resolve())) for p in paths]
    ratios = parse_batch_ratio(batch_ratio, len(sources))
    if ratios is not None:
        for s, r in zip(sources, ratios, strict=True):
            s.ratio = r
    return MixSpec(sources=sources, mix="concat" if ratios is None else "ratio", seed=seed)


def build_dataset(
    root_or_paths: str | Path | Sequence[str | Path] | MixSpec,
    select_data: str | Sequence[str] | None = None,
    *,
    split: str = "training",
    img_h: int = 32,
    img_w: int = 100,
    keep_ratio: bool = False,
    rgb: bool = False,
    augment: bool | Augment = False,
    charset: Charset | None = None,
    max_len: int | None = None,
    drop_unknown: bool = False,
    labels: str = "join",
    caps: Mapping[str, Any] | Sequence[str] | str | None = None,
    cap_mode: str = "first",
    batch_ratio: str | Sequence[float] | None = None,
    seed: int = 0,
    interpolation: str = "bicubic",
    decode_threads: int = 1,
    jpeg_draft: bool = False,
) -> tuple[MixtureDataset, MixSpec]:
    """Build the :class:`MixtureDataset` of a data root + select-data string, a list of LMDBs, or a mixture.

    Args:
        root_or_paths: Data root (with ``select_data``), one or more LMDB paths/folders, a ``.yaml``/``.toml``
            mixture file, or a :class:`MixSpec`.
        select_data: Reference select-data string (``"lang_CBHJAKL-SynthMLT_K"``).
        split: Split folder the names resolve in.
        img_h: Image height.
        img_w: Image width.
        keep_ratio: Keep-ratio resize + pad instead of the fixed resize.
        rgb: Three channels, else one.
        augment: True for the default :class:`Augment`, or an instance.
        charset: Count (and with ``drop_unknown`` drop) out-of-charset characters; also measures ``max_len``.
        max_len: Drop labels longer than this many tokens.
        drop_unknown: Drop records with out-of-charset characters.
        labels: Label reader (see :data:`cllstr.data.dataset.LABEL_READERS`).
        caps: Usage caps (``{"LAT": 2000}``, ``"SynthMLT=2000"``).
        cap_mode: ``"first"`` (reference) or ``"random"``.
        batch_ratio: Per-source batch shares.
        seed: Seed of random caps and ratio sampling.
        interpolation: Resize filter.
        decode_threads: Threads decoding each batch (the batches do not depend on it).
        jpeg_draft: Decode JPEGs at a reduced DCT scale (Pillow draft mode): a speed option that changes pixels;
            off (full-scale decode, the reference's) by default.

    Returns:
        The dataset and the resolved mixture spec.
    """
    spec = _as_spec(root_or_paths, select_data, split, caps, cap_mode, batch_ratio, seed)
    aug = Augment() if augment is True else (augment or None)
    transform = ImageTransform(img_h, img_w, keep_ratio=keep_ratio, rgb=rgb, augment=aug, interpolation=interpolation,
                               jpeg_draft=jpeg_draft)
    resolved = spec.resolve()
    sources = []
    for src, paths in resolved:
        dsets = [
            LmdbDataset(
                p,
                transform,
                name=src.name if len(paths) == 1 else f"{src.name}/{p.name}",
                script=src.script or script_of_name(src.name),
                labels=labels,
                max_len=max_len,
                charset=charset,
                drop_unknown=drop_unknown,
            )
            for p in paths
        ]
        sources.append((src.name, dsets))
    dataset = MixtureDataset(
        sources,
        caps=[s.cap for s, _ in resolved],
        cap_modes=[s.cap_mode for s, _ in resolved],
        total_cap=spec.total_cap,
        total_cap_mode=spec.total_cap_mode,
        seed=spec.seed,
        decode_threads=decode_threads,
    )
    if spec.mix == "ratio":
        spec.sources = [s for s, _ in resolved]
    return dataset, spec


def build_dataloader(
    root_or_paths: str | Path | Sequence[str | Path] | MixSpec,
    select_data: str | Sequence[str] | None = None,
    *,
    batch_size: int,
    img_h: int = 32,
    img_w: int = 100,
    keep_ratio: bool = False,
    rgb: bool = False,
    augment: bool | Augment = False,
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
    decode_threads: int | None = None,
    jpeg_draft: bool = False,
) -> DataLoader:
    """A ``DataLoader`` yielding :class:`Batch` objects (see :func:`build_dataset` for the data arguments).

    Args:
        batch_size: Samples per batch (corrupt records make a batch smaller, never fill it with dummies).
        workers: Worker processes (persistent when > 0).
        shuffle: Shuffle (concat mode) or shuffle within sources (ratio mode).
        seed: Seeds the shuffling generator, random caps and augmentation; same seed, same batches.
        drop_last: Drop a last incomplete batch (concat mode).
        num_batches: Batches per epoch in ratio mode.
        pin_memory: Pin batches (only useful with a GPU).
        prefetch_factor: Batches prefetched per worker.
        decode_threads: Threads decoding each batch in each loading process; None: the cores divided among the
            workers (2 threads with 0 workers on 2 cores, 1 per worker with 2 workers). Batches do not depend on it.
        jpeg_draft: Decode JPEGs at a reduced DCT scale (see :func:`build_dataset`); off by default.

    Returns:
        The loader; ``loader.dataset`` is the :class:`MixtureDataset` (``.num_corrupt``, ``.source_sizes()``).
    """
    dataset, spec = build_dataset(
        root_or_paths, select_data, split=split, img_h=img_h, img_w=img_w, keep_ratio=keep_ratio, rgb=rgb,
        augment=augment, charset=charset, max_len=max_len, drop_unknown=drop_unknown, labels=labels, caps=caps,
        cap_mode=cap_mode, batch_ratio=batch_ratio, seed=seed, interpolation=interpolation,
        decode_threads=auto_decode_threads(workers) if decode_threads is None else decode_threads,
        jpeg_draft=jpeg_draft,
    )
    collate = Collate(3 if rgb else 1, img_h, img_w)
    generator = torch.Generator().manual_seed(seed)
    extra: dict[str, Any] = {}
    if workers > 0:
        extra.update(persistent_workers=True, prefetch_factor=prefetch_factor or 2)
    if spec.mix == "ratio":
        sampler = RatioBatchSampler(
            dataset.source_ids, spec.ratios(), batch_size, num_batches=num_batches, seed=spec.seed, shuffle=shuffle
        )
        return DataLoader(
            dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate, pin_memory=pin_memory,
            generator=generator, **extra,
        )
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, collate_fn=collate,
        pin_memory=pin_memory, drop_last=drop_last, generator=generator, **extra,
    )
