"""The LMDB side of the DALI loader: which records make each batch, and the encoded bytes DALI is fed.

:class:`RecordTable` flattens a :class:`~cllstr.data.loading.dataset.MixtureDataset` (caps, label filters and all) into
``(lmdb, record)`` pairs. :class:`EpochPlan` turns it into the batches of one epoch for one distributed rank: the same
shuffle as every other rank (seeded by ``(seed, epoch)``), then a contiguous shard per rank, so the shards of an epoch
cover each sample exactly once. :class:`LmdbBatchSource` is the stateless callable given to a parallel
``external_source``: DALI hands whole batches (``BatchInfo``) to its worker processes, each worker reads the records of
its batch and validates them with :func:`screen_image`.

DALI's decoder raises on undecodable data and a raising pipeline is dead, so nothing undecodable may reach it: a bad
record is replaced by :data:`PLACEHOLDER` and flagged ``valid=0``; the loader drops it from the batch and counts it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

from cllstr.data.loading.decode import decode_image
from cllstr.data.loading.spec import VALIDATION_MODES
from cllstr.data.mixture.sampler import RatioBatchSampler
from cllstr.data.store.format import DECODE_ERRORS
from cllstr.data.store.reader import LmdbReader

__all__ = [
    "PLACEHOLDER",
    "VALIDATION_MODES",
    "BatchInfoLike",
    "EpochPlan",
    "LmdbBatchSource",
    "RecordTable",
    "screen_image",
    "to_pnm",
]


_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_ALPHA_TYPES = (4, 6)  # grey+alpha, RGBA


def to_pnm(img: Image.Image) -> bytes:
    """Encode an ``L`` or ``RGB`` image as binary PGM/PPM (what DALI decodes with no work at all)."""
    magic = b"P5" if img.mode == "L" else b"P6"
    return b"%s\n%d %d\n255\n" % (magic, img.width, img.height) + img.tobytes()


#: A valid 8x8 white PGM fed in place of a corrupt record (flagged invalid and dropped by the loader).
PLACEHOLDER = np.frombuffer(to_pnm(Image.new("L", (8, 8), 255)), dtype=np.uint8)


def _jpeg_ok(buf: bytes) -> bool:
    # Entropy-coded data escapes 0xFF, so an EOI after the first scan header means the stream was not cut short.
    sos = buf.find(_JPEG_SOS)
    return sos > 0 and buf.rfind(_JPEG_EOI) > sos


def _png_state(buf: bytes) -> str:
    """``"ok"``, ``"alpha"`` (needs Pillow to composite on white like the torch path) or ``"bad"``."""
    if len(buf) < 45 or buf[12:16] != b"IHDR":
        return "bad"
    width, height = struct.unpack(">II", buf[16:24])
    if width == 0 or height == 0 or buf.rfind(b"IEND") < 33:
        return "bad"
    idat = buf.find(b"IDAT", 33)
    if idat < 0:
        return "bad"
    if buf[25] in _PNG_ALPHA_TYPES or buf.find(b"tRNS", 33, idat) >= 0:
        return "alpha"
    return "ok"


def screen_image(buf: bytes, mode: str = "L", validation: str = "header") -> bytes | None:
    """Make sure DALI can decode an encoded image, the way the torch loader would see it.

    JPEG and opaque PNG pass through after structural checks (a JPEG must end its scans with EOI, a PNG needs IHDR,
    IDAT and IEND); transparent PNGs and every other format are decoded by Pillow (composited on white, converted
    to ``mode``) and re-encoded as PNM. With ``validation="full"`` everything takes the Pillow path.

    Args:
        buf: Encoded image bytes from the LMDB.
        mode: ``"L"`` or ``"RGB"``, the torch loader's decode mode.
        validation: One of :data:`VALIDATION_MODES`.

    Returns:
        Bytes DALI can decode, or None for an image that neither Pillow nor the checks accept.
    """
    if validation == "header":
        if buf.startswith(_JPEG_SOI):
            return buf if _jpeg_ok(buf) else None
        if buf.startswith(_PNG_SIG):
            state = _png_state(buf)
            if state == "bad":
                return None
            if state == "ok":
                return buf
    elif validation != "full":
        raise ValueError(f"unknown validation mode {validation!r}; known: {', '.join(VALIDATION_MODES)}")
    try:
        return to_pnm(decode_image(buf, mode))
    except DECODE_ERRORS:
        return None


@dataclass
class RecordTable:
    """Sample ``i`` of a mixture → LMDB ``paths[lmdb[i]]``, 0-based record ``record[i]``, and source ``source[i]``.

    Attributes:
        paths: LMDB directories.
        lmdb: ``(N,)`` int32 index into ``paths``.
        record: ``(N,)`` int64 0-based record index in that LMDB.
        local: ``(N,)`` int64 index into the owning dataset (for its label reader).
        source: ``(N,)`` int64 source id (for ratio batches).
    """

    paths: list[str]
    lmdb: np.ndarray
    record: np.ndarray
    local: np.ndarray
    source: np.ndarray
    _readers: dict[int, LmdbReader] = field(default_factory=dict, repr=False)

    @classmethod
    def from_mixture(cls, mixture: Any) -> RecordTable:
        """Flatten a :class:`~cllstr.data.loading.dataset.MixtureDataset` (uses its per-sample dataset/local index
        arrays)."""
        ds_id = np.asarray(mixture._ds_id, dtype=np.int64)
        local = np.asarray(mixture._local, dtype=np.int64)
        record = np.empty(len(ds_id), dtype=np.int64)
        for d, dataset in enumerate(mixture.datasets):
            sel = ds_id == d
            record[sel] = np.asarray(dataset.indices, dtype=np.int64)[local[sel]]
        paths = [str(d.path) for d in mixture.datasets]
        return cls(paths, ds_id.astype(np.int32), record, local, np.asarray(mixture.source_ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.record)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_readers": {}}

    def image(self, i: int) -> bytes:
        """Encoded image bytes of sample ``i``."""
        j = int(self.lmdb[i])
        reader = self._readers.get(j)
        if reader is None:
            reader = self._readers[j] = LmdbReader(self.paths[j])
        return reader.image(int(self.record[i]))


@dataclass(frozen=True)
class EpochPlan:
    """The batches (sample indices) one rank reads in each epoch.

    Args:
        sources: ``(N,)`` source id of every sample.
        batch_size: Samples per batch.
        shuffle: Shuffle the order every epoch.
        seed: Seed; epoch ``e`` uses the stream ``(seed, e)`` on every rank.
        drop_last: Drop the rank's last incomplete batch (concat mode).
        rank: This process's distributed rank.
        world_size: Number of ranks; rank ``r`` reads the ``r``-th contiguous part of the epoch order.
        ratios: Per-source batch shares (ratio mode, as ``RatioBatchSampler``), or None for concatenation.
        num_batches: Batches per epoch over all ranks in ratio mode.
    """

    sources: np.ndarray
    batch_size: int
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = False
    rank: int = 0
    world_size: int = 1
    ratios: Sequence[float] | None = None
    num_batches: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={self.rank} world_size={self.world_size}")

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of ``epoch``, each a ``(b,)`` int64 array of sample indices."""
        if self.ratios is not None:
            sampler = RatioBatchSampler(
                self.sources, self.ratios, self.batch_size, self.num_batches, seed=self.seed, shuffle=self.shuffle
            )
            sampler.set_epoch(epoch)
            every = list(sampler)
            return [np.asarray(b, dtype=np.int64) for b in every[self.rank :: self.world_size]]
        n = len(self.sources)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        shard = np.array_split(order, self.world_size)[self.rank]
        count = len(shard) // self.batch_size if self.drop_last else math.ceil(len(shard) / self.batch_size)
        return [shard[k * self.batch_size : (k + 1) * self.batch_size] for k in range(count)]

    def __len__(self) -> int:
        return len(self.batches(0)) if self.ratios is not None else self._concat_len()

    def _concat_len(self) -> int:
        n = len(self.sources)
        size = n // self.world_size + (1 if self.rank < n % self.world_size else 0)
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)


class BatchInfoLike(Protocol):
    """What DALI passes a batch-mode source (``nvidia.dali.types.BatchInfo``)."""

    iteration: int
    epoch_idx: int


class LmdbBatchSource:
    """Stateless batch callback for ``fn.external_source(parallel=True, batch=True, batch_info=True)``.

    Returns, for the batch of ``(epoch, iteration)``: the encoded images (``uint8 (n_bytes,)`` each), the sample
    indices (``int64``) and the valid flags (``uint8``, 0 where :data:`PLACEHOLDER` replaced a corrupt image). Raises
    ``StopIteration`` past the last batch, which ends DALI's epoch; the next epoch starts on the following call.

    Args:
        table: Where each sample lives.
        plan: The batches of every epoch.
        mode: ``"L"`` or ``"RGB"`` (used when Pillow re-encodes an image).
        validation: One of :data:`VALIDATION_MODES`.
        known_bad: Samples already found corrupt (skipped without reading).
        epoch_offset: Added to DALI's epoch index (a rebuilt pipeline continues the numbering).
        skip_batches: Batches of the first epoch already delivered by an earlier pipeline.
    """

    def __init__(
        self,
        table: RecordTable,
        plan: EpochPlan,
        mode: str = "L",
        validation: str = "header",
        known_bad: frozenset[int] = frozenset(),
        epoch_offset: int = 0,
        skip_batches: int = 0,
    ) -> None:
        if validation not in VALIDATION_MODES:
            raise ValueError(f"unknown validation mode {validation!r}; known: {', '.join(VALIDATION_MODES)}")
        self.table = table
        self.plan = plan
        self.mode = mode
        self.validation = validation
        self.known_bad = known_bad
        self.epoch_offset = epoch_offset
        self.skip_batches = skip_batches
        self._cached: tuple[int, list[np.ndarray]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cached": None}

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of (absolute) ``epoch``, cached for the current epoch."""
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self.plan.batches(epoch))
        return self._cached[1]

    def _screened(self, i: int) -> bytes | None:
        """Sample ``i``'s image as DALI may decode it, or None when it is corrupt or its ``image-`` key is missing."""
        try:
            buf = self.table.image(i)
        except KeyError:
            return None
        return screen_image(buf, self.mode, self.validation)

    def __call__(self, info: BatchInfoLike) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        epoch = info.epoch_idx + self.epoch_offset
        step = info.iteration + (self.skip_batches if info.epoch_idx == 0 else 0)
        batches = self.epoch_batches(epoch)
        if step >= len(batches):
            raise StopIteration
        idx = batches[step]
        encoded: list[np.ndarray] = []
        valid = np.ones(len(idx), dtype=np.uint8)
        for k, i in enumerate(idx.tolist()):
            buf = None if i in self.known_bad else self._screened(i)
            if buf is None:
                valid[k] = 0
                encoded.append(PLACEHOLDER)
            else:
                encoded.append(np.frombuffer(buf, dtype=np.uint8))
        return encoded, idx.astype(np.int64), valid
