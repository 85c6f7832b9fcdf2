"""Greedy (best-path) CTC decoding: ``torch.ops.cllstr.ctc_greedy_decode`` and its pure-PyTorch reference."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from cllstr.ops._native import HAS_NATIVE, frame_lengths, has_kernel, require_native

__all__ = ["ctc_greedy_decode", "reference_ctc_greedy_decode"]

Backend = Literal["auto", "native", "reference"]


def reference_ctc_greedy_decode(
    logits: Tensor, lengths: Tensor, blank: int = 0, log_probs: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """Pure-PyTorch greedy CTC decoding, the oracle of the native kernels (same arguments and outputs).

    Args:
        logits: ``(B, T, C)`` float32/float16/bfloat16 scores, or log-probabilities when ``log_probs``.
        lengths: ``(B,)`` int32/int64 valid time steps per sequence, ``0 <= lengths[b] <= T``.
        blank: Index of the CTC blank class.
        log_probs: ``logits`` already holds log-probabilities (no softmax is applied for the confidence).

    Returns:
        ``tokens (B, T)`` int64 decoded class ids padded with ``blank``, ``out_lengths (B,)`` int64 and
        ``confidence (B,)`` float32: the product over the valid steps of the per-step maximum probability.
    """
    _check(logits, lengths, blank)
    B, T, C = logits.shape
    lengths = lengths.to(device=logits.device, dtype=torch.long)
    x = logits.float()
    if T == 0 or B == 0:
        empty = torch.zeros(B, dtype=torch.long, device=x.device)
        return torch.full((B, T), blank, dtype=torch.long, device=x.device), empty, torch.ones(B, device=x.device)
    maxv, best = x.max(dim=-1)  # first index on ties, NaN wins: the semantics the kernels follow
    # log max-probability as -log(sum(exp(x - max))): maxv - logsumexp(x) cancels to 0 for scores of magnitude ~1e8+
    logp = maxv if log_probs else -torch.log(torch.exp(x - maxv[..., None]).sum(dim=-1))
    if not log_probs:
        logp = torch.where(torch.isinf(maxv), torch.full_like(logp, float("nan")), logp)
    valid = torch.arange(T, device=x.device)[None, :] < lengths[:, None]
    prev = torch.cat([torch.full((B, 1), -1, dtype=best.dtype, device=best.device), best[:, :-1]], dim=1)
    keep = valid & (best != blank) & (best != prev)
    out_lengths = keep.sum(dim=1)
    tokens = torch.full((B, T), blank, dtype=torch.long, device=x.device)
    rows = torch.arange(B, device=x.device)[:, None].expand(B, T)
    cols = keep.long().cumsum(dim=1) - 1
    tokens[rows[keep], cols[keep]] = best[keep]
    conf = torch.exp(torch.where(valid, logp, torch.zeros_like(logp)).double().sum(dim=1)).float()
    return tokens, out_lengths, conf


def _check(logits: Tensor, lengths: Tensor, blank: int) -> None:
    """The argument checks of the native op, for the reference path (same messages)."""
    if logits.dim() != 3:
        raise ValueError(f"ctc_greedy_decode: logits must be 3-D (B, T, C), got {logits.dim()}-D with shape "
                         f"{tuple(logits.shape)}")
    if logits.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"ctc_greedy_decode: logits must be float32, float16 or bfloat16, got {logits.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != logits.shape[0]:
        raise ValueError(f"ctc_greedy_decode: lengths must be 1-D (B,) with B={logits.shape[0]}, got shape "
                         f"{tuple(lengths.shape)}")
    if lengths.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"ctc_greedy_decode: lengths must be int64 or int32, got {lengths.dtype}")
    C = logits.shape[2]
    if C == 0:
        raise ValueError("ctc_greedy_decode: logits has no classes (C == 0)")
    if not 0 <= blank < C:
        raise ValueError(
            f"ctc_greedy_decode: blank={blank} is out of range for C={C} classes (expected 0 <= blank < C)"
        )
    if lengths.numel():
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0:
            raise ValueError(f"ctc_greedy_decode: lengths must be >= 0, got a length of {lo}")
        if hi > logits.shape[1]:
            raise ValueError(f"ctc_greedy_decode: lengths must be <= T={logits.shape[1]}, got a length of {hi}")


def ctc_greedy_decode(
    logits: Tensor,
    lengths: Tensor | None = None,
    blank: int = 0,
    log_probs: bool = False,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Greedy CTC decoding of a batch: arg-max per step, merge repeats, drop blanks.

    Args:
        logits: ``(B, T, C)`` float32/float16/bfloat16 scores (softmax applied internally for the confidence) or
            log-probabilities when ``log_probs``. Any strides.
        lengths: ``(B,)`` int32/int64 valid time steps per sequence; ``None`` means all ``T`` steps.
        blank: Index of the CTC blank class (``0`` in cllstr's charsets).
        log_probs: ``logits`` holds log-probabilities.
        backend: ``"auto"`` (native kernel when built for the device, else the reference), ``"native"`` (raise
            :class:`~cllstr.ops.NativeUnavailableError` when missing) or ``"reference"``.

    Returns:
        ``tokens (B, T)`` int64 padded with ``blank``, ``out_lengths (B,)`` int64, ``confidence (B,)`` float32.

    Raises:
        ValueError: bad rank or shape, ``blank`` out of range, lengths outside ``[0, T]``; the message names the
            argument. TypeError: a wrong dtype.
    """
    lengths = frame_lengths("ctc_greedy_decode", "logits", logits, lengths)
    if backend == "reference":
        return reference_ctc_greedy_decode(logits, lengths, blank, log_probs)
    if backend == "native":
        require_native("ctc_greedy_decode", logits.device.type)
    elif backend != "auto":
        raise ValueError(f"ctc_greedy_decode: backend must be 'auto', 'native' or 'reference', got {backend!r}")
    if HAS_NATIVE and has_kernel("ctc_greedy_decode", logits.device.type):
        return torch.ops.cllstr.ctc_greedy_decode(logits, lengths, blank, log_probs)
    return reference_ctc_greedy_decode(logits, lengths, blank, log_probs)


if HAS_NATIVE:

    @torch.library.register_fake("cllstr::ctc_greedy_decode")
    def _(logits: Tensor, lengths: Tensor, blank: int = 0, log_probs: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        torch._check(logits.dim() == 3, lambda: "ctc_greedy_decode: logits must be 3-D (B, T, C)")
        B, T = logits.shape[0], logits.shape[1]
        return (
            logits.new_empty((B, T), dtype=torch.long),
            logits.new_empty((B,), dtype=torch.long),
            logits.new_empty((B,), dtype=torch.float32),
        )
