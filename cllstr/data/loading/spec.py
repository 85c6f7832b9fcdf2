""":class:`LoaderSpec`: everything a loader needs to know, in one frozen object that both backends read.

A spec is built once — from keyword arguments, or from a training config with :meth:`LoaderSpec.from_config`, which
copies every field whose name the config shares — and travels down unchanged: :func:`~cllstr.data.loading.loader.
make_loader` → the torch or DALI backend → :func:`~cllstr.data.loading.torch_backend.build_dataset` → each
:class:`~cllstr.data.loading.dataset.LmdbDataset` (label filters) and :class:`~cllstr.data.loading.decode.
ImageTransform` (image options). So an option that both backends honour is one field here, the code that uses it, and
(for training runs) the config field of the same name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LOADER_KINDS", "VALIDATION_MODES", "INTERPOLATIONS", "LoaderSpec"]

LOADER_KINDS = ("auto", "dali", "torch")
#: DALI's record screening: ``header``: cheap structural checks of JPEG/PNG in Python, other formats go through
#: Pillow; ``full``: every image is decoded by Pillow and handed to DALI as PNM (slow; used to finish an epoch after a
#: decoder error).
VALIDATION_MODES = ("header", "full")
#: Resize filters (Pillow's names; the DALI backend maps them to its own).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box")
CAP_MODES = ("first", "random")
DEVICES = ("auto", "gpu", "cpu")


@dataclass(frozen=True)
class LoaderSpec:
    """What to load and how; the fields mean the same for the torch and the DALI backend.

    Attributes:
        root: Data root (with ``select_data``), one or more LMDB paths/folders, a ``.yaml``/``.toml`` mixture file,
            or a :class:`~cllstr.data.mixture.spec.MixSpec`.
        select_data: Reference select-data string (``"lang_CBHJAKL-SynthMLT_K"``) or list.
        split: Split folder the names resolve in (``training``, ``validation``, ``evaluation``).
        caps: Usage caps (``{"LAT": 2000}``, ``"SynthMLT=2000"``).
        cap_mode: ``first`` (reference) or ``random``.
        batch_ratio: Per-source shares of every batch (``"0.5-0.5"``); None concatenates the sources.
        labels: Label reader (:data:`cllstr.data.loading.dataset.LABEL_READERS`).
        max_label_length: Drop labels longer than this many tokens (reference ``--batch_max_length``).
        min_label_length: Drop labels shorter than this many tokens (1: keep every non-empty label).
        drop_unknown: Drop records with characters outside the charset (else they are counted).
        img_h: Image height.
        img_w: Image width.
        keep_ratio: Keep-ratio resize + right padding (reference ``--PAD``) instead of the fixed resize.
        rgb: Three channels, else one.
        interpolation: Resize filter (:data:`INTERPOLATIONS`).
        augment: False, True (the default augmentation), an ``Augment`` (torch), an ``AugmentConfig`` or a mapping of
            its fields (DALI; a torch ``Augment`` is translated).
        jpeg_draft: Decode JPEGs at a reduced DCT scale (torch backend; a speed option that changes pixels).
        batch_size: Samples per batch (corrupt records make a batch smaller, never fill it with dummies); with
            ``world_size > 1`` the global batch, of which each rank loads its share.
        shuffle: Shuffle (concat mode) or shuffle within sources (ratio mode).
        seed: Seeds shuffling, random caps and augmentation; same seed, same batches.
        drop_last: Drop a last incomplete batch (concat mode).
        num_batches: Batches per epoch in ratio mode.
        loader: Backend: ``torch``, ``dali`` or ``auto`` (DALI when installed).
        workers: Loader worker processes (torch: DataLoader workers; DALI: parallel external-source workers).
        pin_memory: Pin batches (torch; only useful with a GPU).
        prefetch_factor: Batches prefetched (per worker for torch, DALI's queue depth).
        decode_threads: Threads decoding each batch per torch loading process; None: the cores shared among workers.
        device: DALI: ``gpu`` (``mixed`` decoding), ``cpu`` or ``auto``.
        device_id: DALI: CUDA device (default: torch's current one).
        num_threads: DALI CPU threads.
        validation: DALI record screening (:data:`VALIDATION_MODES`).
        rank: Distributed rank; each rank reads its own shard of every epoch's order.
        world_size: Number of distributed ranks.
        even_shares: With ``world_size > 1``, equal shares of every step (training: ``batch_size`` must then divide by
            ``world_size``, and the last, short batch of an epoch is cut to a multiple of it; see
            :class:`~cllstr.data.mixture.sampler.ShardedBatchSampler`); False keeps every sample (evaluation).
    """

    root: str | Path | Sequence[str | Path] | Any = None
    select_data: str | Sequence[str] | None = None
    split: str = "training"
    caps: Mapping[str, Any] | Sequence[str] | str | None = None
    cap_mode: str = "first"
    batch_ratio: str | Sequence[float] | None = None
    labels: str = "join"
    max_label_length: int | None = None
    min_label_length: int = 1
    drop_unknown: bool = False
    img_h: int = 32
    img_w: int = 100
    keep_ratio: bool = False
    rgb: bool = False
    interpolation: str = "bicubic"
    augment: Any = False
    jpeg_draft: bool = False
    batch_size: int = 128
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = False
    num_batches: int | None = None
    loader: str = "torch"
    workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int | None = None
    decode_threads: int | None = None
    device: str = "auto"
    device_id: int | None = None
    num_threads: int = 2
    validation: str = "header"
    rank: int = 0
    world_size: int = 1
    even_shares: bool = True

    def __post_init__(self) -> None:
        choices = {"loader": LOADER_KINDS, "validation": VALIDATION_MODES, "interpolation": INTERPOLATIONS,
                   "cap_mode": CAP_MODES, "device": DEVICES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        positive = {"img_h": self.img_h, "img_w": self.img_w, "batch_size": self.batch_size,
                    "num_threads": self.num_threads, "world_size": self.world_size}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.decode_threads is not None and self.decode_threads < 1:
            raise ValueError(f"decode_threads must be at least 1, got {self.decode_threads}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, world_size={self.world_size}), got {self.rank}")
        if self.world_size > 1 and self.even_shares and self.batch_size % self.world_size:
            raise ValueError(f"batch_size {self.batch_size} (the global batch) must divide by world_size "
                             f"{self.world_size}")
        if self.min_label_length < 1:
            raise ValueError(f"min_label_length must be at least 1, got {self.min_label_length}")
        if self.max_label_length is not None and self.max_label_length < self.min_label_length:
            raise ValueError(f"max_label_length ({self.max_label_length}) is below min_label_length "
                             f"({self.min_label_length})")

    def replace(self, **changes: Any) -> LoaderSpec:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> LoaderSpec:
        """The spec of a config dataclass (e.g. :class:`cllstr.train.config.DataConfig`): every field both share.

        Args:
            config: A dataclass instance; its fields named like spec fields are copied, the others ignored.
            **overrides: Spec fields to set on top (``batch_size=``, ``seed=``, ``split=`` ...).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name in names}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"LoaderSpec has no field(s) {', '.join(unknown)}")
        return cls(**{**values, **overrides})

    @property
    def channels(self) -> int:
        """Image channels: 3 for RGB, 1 for grey."""
        return 3 if self.rgb else 1
