"""Batch sampler giving every batch fixed per-source shares (deep-text-recognition-benchmark's ``--batch_ratio``).

Each source is walked through its own reshuffled permutation, restarting when exhausted, so small sources are
repeated and large ones subsampled, deterministically for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["RatioBatchSampler", "ShardedBatchSampler", "split_batch"]


def split_batch(batch_size: int, ratios: Sequence[float]) -> list[int]:
    """Per-source sample counts of one batch: largest-remainder rounding of ``batch_size * ratio``.

    Every source with a positive ratio gets at least one sample when the batch is large enough.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = float(sum(ratios))
    if total <= 0 or any(r < 0 for r in ratios):
        raise ValueError(f"ratios must be non-negative with a positive sum, got {list(ratios)}")
    exact = [batch_size * r / total for r in ratios]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: batch_size - sum(counts)]:
        counts[i] += 1
    positive = [i for i, r in enumerate(ratios) if r > 0]
    if len(positive) <= batch_size:
        for i in positive:
            if counts[i] == 0:
                donor = max(range(len(counts)), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


class RatioBatchSampler(Sampler[list[int]]):
    """Yield batches of dataset indices with a fixed number of samples from each source.

    Args:
        source_ids: Source id of every dataset index, ``(N,)``.
        ratios: Share of each source in a batch.
        batch_size: Samples per batch.
        num_batches: Batches per epoch; defaults to ``ceil(N / batch_size)``.
        seed: Seed; epoch ``e`` uses the stream ``(seed, e)``.
        shuffle: Shuffle within each source (otherwise walk it in order).
    """

    def __init__(
        self,
        source_ids: np.ndarray,
        ratios: Sequence[float],
        batch_size: int,
        num_batches: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        source_ids = np.asarray(source_ids, dtype=np.int64)
        self.counts = split_batch(batch_size, ratios)
        self.positions = [np.flatnonzero(source_ids == s) for s in range(len(ratios))]
        empty = [s for s, c in enumerate(self.counts) if c > 0 and len(self.positions[s]) == 0]
        if empty:
            raise ValueError(f"source(s) {empty} have a positive batch share but no samples")
        self.batch_size = batch_size
        self.num_batches = num_batches if num_batches is not None else max(1, math.ceil(len(source_ids) / batch_size))
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (iteration also advances it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def _stream(self, s: int, rng: np.random.Generator) -> Iterator[int]:
        pos = self.positions[s]
        while True:
            yield from (rng.permutation(pos) if self.shuffle else pos).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        streams = [self._stream(s, rng) if c > 0 else None for s, c in enumerate(self.counts)]
        for _ in range(self.num_batches):
            batch: list[int] = []
            for stream, c in zip(streams, self.counts, strict=True):
                batch.extend(next(stream) for _ in range(c))
            yield batch


class ShardedBatchSampler(Sampler[list[int]]):
    """One distributed rank's strided share (``batch[rank::world_size]``) of every batch of a global batch sampler.

    Every rank wraps the same global sampler (same seed), so the ranks' shares of a step are disjoint and together
    are exactly the global batch; per-batch source ratios therefore hold for the global batch.

    With ``even=True`` (training) a global batch whose size is not a multiple of ``world_size`` (the last, short batch
    of an epoch) is cut to the largest multiple (a batch of fewer than ``world_size`` samples is skipped by every
    rank), so that all shares of a step have the same size: every rank takes part in every step, and the mean of the
    ranks' mean losses that data-parallel training reduces is the mean over the global batch. At most
    ``world_size - 1`` samples per epoch are left out. ``even=False`` (evaluation, whose sums are reduced) keeps every
    sample; a rank's share of a short batch may then be empty.

    Args:
        batch_sampler: The global batch sampler (its ``sampler``, if any, stays reachable for RNG bookkeeping).
        rank: This rank.
        world_size: Number of ranks.
        even: Equal shares (see above).
    """

    def __init__(self, batch_sampler: Sampler[list[int]] | Iterable[list[int]], rank: int, world_size: int,
                 even: bool = False) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.batch_sampler = batch_sampler
        self.sampler = getattr(batch_sampler, "sampler", None)
        self.rank, self.world_size, self.even = rank, world_size, even

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the global sampler."""
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.batch_sampler)
        size, drop = getattr(self.batch_sampler, "batch_size", None), getattr(self.batch_sampler, "drop_last", True)
        short = len(self.sampler) % size if self.sampler is not None and size and not drop else 0
        if self.even and 0 < short < self.world_size:
            n -= 1  # the last, short batch is skipped
        return n

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batch_sampler:
            batch = list(batch)
            if self.even:
                batch = batch[:len(batch) - len(batch) % self.world_size]
                if not batch:
                    continue
            yield batch[self.rank::self.world_size]
