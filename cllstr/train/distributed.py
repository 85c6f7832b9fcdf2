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


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(x)
    return x


class SyncBatchNormFunction(torch.autograd.Function):
    """Batch normalisation over the global batch with one all-reduce in the forward pass and one in the backward
    pass, on fused native kernels, as torch's CUDA SyncBatchNorm does.

    Forward: each rank's per-channel ``var_mean`` (two-pass, fused) gives ``n * mean`` and ``n * (var + mean^2)``;
    their sums over ranks give the global mean and variance (float64, so that ``E[x^2] - E[x]^2`` across ranks does
    not cancel: each rank's own variance is exact). Backward: the native BatchNorm backward gives this rank's
    ``sum(dy)`` and ``sum(dy * x_hat)`` (the bias and weight gradients); their global sums give the input gradient
    ``w * invstd * (dy - sum(dy) / N - x_hat * sum(dy * x_hat) / N)``, evaluated as ``A * dy + B * x + C`` per
    channel. The weight and bias gradients returned are this rank's own (data parallelism averages them like every
    other parameter's).

    ``forward(x, weight, bias, eps, reduce)``: ``x`` ``(N, C, ...)``; ``reduce`` sums a float64 tensor over the ranks
    in place (the identity in one process, for tests). Returns ``(y, mean, var, count)``: the biased global variance
    and the global sample count per channel; only ``y`` is differentiable.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float,
                reduce: Any) -> tuple[torch.Tensor, ...]:
        dims = [0, *range(2, x.dim())]
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32  # bf16/fp16 inputs: float32
        xf = x.to(compute)
        var_l, mean_l = torch.var_mean(xf, dims, correction=0)
        n = float(xf.numel() // max(xf.shape[1], 1))
        mean_l, var_l = mean_l.double(), var_l.double()
        stats = reduce(torch.cat([n * mean_l, n * (var_l + mean_l.square()), mean_l.new_tensor([n])]))
        c, count = xf.shape[1], stats[-1]
        mean64 = stats[:c] / count
        var = (stats[c:2 * c] / count - mean64.square()).clamp_min(0.0).to(compute)
        mean = mean64.to(compute)
        invstd = torch.rsqrt(var + eps)
        y = torch.nn.functional.batch_norm(xf, mean, var, weight, bias, False, 0.0, eps)
        ctx.save_for_backward(xf, mean, invstd, weight)
        ctx.reduce, ctx.count, ctx.in_dtype = reduce, count, x.dtype
        count_out = count.to(compute).reshape(())
        ctx.mark_non_differentiable(mean, var, count_out)
        return y.to(x.dtype), mean, var, count_out

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor, *_: Any) -> tuple[Any, ...]:
        xf, mean, invstd, weight = ctx.saved_tensors
        shape = [1, -1] + [1] * (xf.dim() - 2)
        dyf = dy.to(xf.dtype)
        ones = torch.ones_like(mean)
        # this rank's sum(dy * x_hat) and sum(dy): the native backward's weight and bias gradients (no input grad)
        _, sum_dy_xhat, sum_dy = torch.ops.aten.native_batch_norm_backward(
            dyf, xf, ones, None, None, mean, invstd, True, 0.0, [False, True, True])
        c = xf.shape[1]
        total = ctx.reduce(torch.cat([sum_dy, sum_dy_xhat]).double())
        g1, g2 = (total[:c] / ctx.count).to(xf.dtype), (total[c:] / ctx.count).to(xf.dtype)
        a = invstd if weight is None else invstd * weight.to(xf.dtype)  # dx = a * dy + b * x + k
        b = -a * invstd * g2
        k = -a * g1 - b * mean
        dx = torch.addcmul(k.view(shape), xf, b.view(shape)).addcmul_(dyf, a.view(shape))
        dw = sum_dy_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        db = sum_dy.to(weight.dtype) if weight is not None and ctx.needs_input_grad[2] else None
        return dx.to(ctx.in_dtype), dw, db, None, None


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of every rank (:class:`SyncBatchNormFunction`: one all-reduce forward, one
    backward), on any device.

    Outside a distributed training step (eval mode, one process) it is plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects (N, C, ...) input, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(N, C, ...)``. Returns: the normalised tensor, same shape."""
        self._check_input_dim(x)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        return self.sync_forward(x, _all_reduce_sum)

    def sync_forward(self, x: torch.Tensor, reduce: Any) -> torch.Tensor:
        """The training forward pass with ``reduce`` as the sum over ranks (tests pass the identity)."""
        y, mean, var, count = SyncBatchNormFunction.apply(x, self.weight if self.affine else None,
                                                          self.bias if self.affine else None, self.eps, reduce)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * n / max(n - 1, 1.0), alpha=m)
        return y


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
