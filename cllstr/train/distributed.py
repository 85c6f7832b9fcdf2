"""Distributed data-parallel training through ``torch.distributed`` (launched by ``torchrun``).

Semantics (what "the same run" means with N ranks):

- ``TrainConfig.batch_size`` is the **global** batch. Every rank builds the same global batch sequence (same seed,
  same sampler) and takes its strided share (``batch[rank::world_size]``), so the union over ranks of every step's
  batches is exactly the single-process batch, per-batch source ratios hold for the global batch, and DDP's gradient
  average equals the single-process gradient whenever the batch divides by ``world_size`` (a smaller last batch of an
  epoch that does not divide weighs its samples slightly unevenly).
- The data position in a checkpoint is the global one (epoch, batches drawn), so a run killed on any rank resumes
  from ``last.pt``, also with another ``world_size``: the global batches continue unchanged, only their split
  differs. RNG states are saved per rank and restored when the world size is the same (augmentation then continues
  exactly; with another world size every rank starts from rank 0's state).
- Rank 0 validates, logs and writes checkpoints (atomically); the other ranks skip validation and wait for it at the
  next step's gradient all-reduce. Validation metrics are therefore those of a single process on the same weights.
- BatchNorm normalises each rank's share of the batch unless ``sync_bn`` is on; then :class:`SyncBatchNorm`
  normalises over the global batch (on any device, gloo included; ``torch.nn.SyncBatchNorm`` needs a GPU) and the
  run computes what one process computes. Its state-dict keys are BatchNorm's, so checkpoints stay interchangeable.
- gloo on CPU, NCCL on GPUs (``LOCAL_RANK`` picks the device).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "SyncBatchNorm", "convert_sync_batchnorm", "init_distributed", "world_from_env"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        """More than one rank."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: validates, logs and writes checkpoints."""
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Sums over ranks of ``values`` (the values themselves when not distributed)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            dist.barrier()


def world_from_env() -> DistContext:
    """The ``torchrun`` environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError as e:
        raise ValueError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {e}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return DistContext(rank, world, local, local_world)


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group of a ``torchrun`` job (gloo on CPU, NCCL on CUDA); a no-op for one process.

    Args:
        device: The run's device setting: ``cuda``/``auto`` with CUDA available uses NCCL and ``cuda:LOCAL_RANK``.
    """
    ctx = world_from_env()
    if not ctx.enabled or dist.is_initialized():
        return ctx
    cuda = torch.cuda.is_available() and device in ("auto", "cuda") or str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return ctx


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: the gradient of every rank's copy is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of every rank (differentiable all-reduces of the statistics), on any device.

    Outside a distributed training step (eval mode, one process) it is plain BatchNorm. The variance is computed in
    two passes (mean first, then the mean squared deviation), as BatchNorm does, not as ``E[x^2] - E[x]^2``.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects (N, C, ...) input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(N, C, ...)``. Returns: the normalised tensor, same shape."""
        self._check_input_dim(x)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        local = torch.cat([xf.sum(dims), xf.new_tensor([xf.numel() / xf.shape[1]])])
        total = _AllReduceSum.apply(local)
        count = total[-1]
        mean = total[:-1] / count
        var = _AllReduceSum.apply(((xf - mean.view(shape)) ** 2).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(float(count) - 1, 1.0), alpha=m)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm of ``model`` in place by :class:`SyncBatchNorm` sharing its parameter and buffer
    tensors (so state-dict keys, values and optimizer references stay as they were)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNorm):
            sync = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                 child.track_running_stats)
            # the same Parameter and buffer objects: an optimizer built before the conversion still updates them
            for key, param in child.named_parameters(recurse=False):
                setattr(sync, key, param)
            for key, buf in child.named_buffers(recurse=False):
                setattr(sync, key, buf)
            sync.train(child.training)
            setattr(model, name, sync)
        else:
            convert_sync_batchnorm(child)
    return model
