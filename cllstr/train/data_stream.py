"""An endless, resumable stream of batches over a ``DataLoader`` (the "data position" of a checkpoint).

At the start of every epoch the stream records the random state that decides the epoch's order (the global
python/numpy/torch generators and every ``torch.Generator`` attached to the loader or its samplers). Its state is
that record plus the epoch number and the number of batches already drawn. Resuming restores the record, starts
the epoch again and skips the drawn batches: with ``num_workers == 0`` by advancing the index sampler only (no
image is decoded; the caller then restores the current global RNG, which augmentation consumed), otherwise by
drawing and dropping the batches so that the worker processes' generators advance exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from cllstr.train.rng import capture_rng, restore_rng

__all__ = ["BatchStream"]

_GENERATOR_PATHS = ("generator", "sampler.generator", "batch_sampler.generator", "batch_sampler.sampler.generator")


def _attached_generators(loader: Any) -> dict[str, torch.Generator]:
    found: dict[str, torch.Generator] = {}
    for path in _GENERATOR_PATHS:
        obj = loader
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.Generator) and all(obj is not g for g in found.values()):
            found[path] = obj
    return found


class BatchStream:
    """Endless iterator over ``loader`` that can save and restore its position.

    Attributes:
        epoch: Number of completed passes over the loader.
        position: Batches drawn in the current epoch.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.epoch = 0
        self.position = 0
        self._it: Iterator | None = None
        self._epoch_state: dict[str, Any] | None = None

    def _set_epoch(self) -> None:
        for name in ("sampler", "batch_sampler"):  # a ratio sampler is the batch sampler
            sampler = getattr(self.loader, name, None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)

    def _start_epoch(self) -> None:
        self._set_epoch()
        self._epoch_state = {
            "rng": capture_rng(),
            "generators": {k: g.get_state() for k, g in _attached_generators(self.loader).items()},
        }
        self._it = iter(self.loader)
        self.position = 0

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._start_epoch()
        try:
            batch = next(self._it)
        except StopIteration:
            self.epoch += 1
            self._start_epoch()
            try:
                batch = next(self._it)
            except StopIteration:
                raise RuntimeError("the training data loader yields no batch (empty dataset?)") from None
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Epoch, position and the random state recorded at the start of the epoch."""
        return {"epoch": self.epoch, "position": self.position, "epoch_state": self._epoch_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at the saved position. The caller must restore the current global RNG afterwards."""
        self.epoch = int(state["epoch"])
        self._it = None
        epoch_state = state.get("epoch_state")
        if epoch_state is None:
            self.position = 0
            return
        restore_rng(epoch_state["rng"])
        gens = _attached_generators(self.loader)
        for key, gstate in epoch_state["generators"].items():
            if key in gens:
                gens[key].set_state(gstate)
        self._set_epoch()
        self._epoch_state = epoch_state
        self._it = iter(self.loader)
        skip = int(state["position"])
        sampler_iter = getattr(self._it, "_sampler_iter", None)
        fast = getattr(self.loader, "num_workers", 1) == 0 and sampler_iter is not None
        for _ in range(skip):
            if fast:
                next(sampler_iter)
                self._it._num_yielded += 1
            else:
                next(self._it)
        self.position = skip
