"""Evaluation over distributed ranks: what a rank needs to sum its share of the results with the others'.

Every score cllstr reports is a ratio of sums over samples (correct words, 1-NED, edit distances, characters, script
confusion counts), so ranks that each evaluated a disjoint share of the samples give the single-process scores
exactly once their sums are added (integers exactly; the 1-NED sums up to float64 addition order).
:class:`cllstr.train.distributed.DistContext` is a :class:`Reducer`.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Reducer", "active"]


class Reducer(Protocol):
    """This rank's place in the job and the two collectives evaluation uses (every rank must call them)."""

    rank: int
    world_size: int

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over ranks."""

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order."""


def active(reducer: Reducer | None) -> bool:
    """Whether ``reducer`` spans more than one rank."""
    return reducer is not None and reducer.world_size > 1
