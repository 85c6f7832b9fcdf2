"""CTC loss fused with the softmax: ``torch.ops.cllstr.ctc_loss`` (+ backward) and its pure-PyTorch reference.

A recogniser's head emits batch-first raw scores ``(B, T, C)``, often in bfloat16 under autocast. The usual loss
(``F.log_softmax(logits.float()).transpose(0, 1)`` then ``F.ctc_loss``, as CLL-STR, deep-text-recognition-benchmark
and PaddleOCR compute it) copies the scores to float32, writes the log-probabilities, and runs three C-wide passes
backwards (CTC, log-softmax, the cast). The native kernel reads the scores as they are, keeps only the softmax
normaliser of each frame, and writes the gradient ``softmax - occupancy`` once, in the scores' dtype.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from cllstr.ops._native import HAS_NATIVE, has_kernel, require_native

__all__ = ["ctc_loss", "reference_ctc_loss", "use_native"]

Backend = Literal["auto", "native", "reference"]
Reduction = Literal["mean", "sum", "none"]
OP = "ctc_loss"
_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_INTS = (torch.int64, torch.int32)
#: The loaded library has this op (False for a build older than the op: the reference runs).
_HAS_OP = HAS_NATIVE and hasattr(torch.ops.cllstr, OP)
_KERNELS = {dt: _HAS_OP and has_kernel(OP, dt) for dt in ("cpu", "cuda")}


def _check(logits: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int,
           reduction: str) -> None:
    """The shape/dtype/device checks of the native op, for every path (same messages); values are checked by the
    kernel (native) or by ``F.ctc_loss`` (reference)."""
    if logits.dim() != 3:
        raise ValueError(f"{OP}: logits must be 3-D (B, T, C), got {logits.dim()}-D with shape {tuple(logits.shape)}")
    if logits.dtype not in _DTYPES:
        raise TypeError(f"{OP}: logits must be float32, float16, bfloat16 or float64, got {logits.dtype}")
    b, _, c = logits.shape
    if c == 0:
        raise ValueError(f"{OP}: logits has no classes (C == 0)")
    if not 0 <= blank < c:
        raise ValueError(f"{OP}: blank={blank} is out of range for C={c} classes (expected 0 <= blank < C)")
    if not (targets.dim() == 1 or (targets.dim() == 2 and targets.shape[0] == b)):
        raise ValueError(f"{OP}: targets must be 1-D (concatenated) or 2-D (B={b}, S), got shape "
                         f"{tuple(targets.shape)}")
    for name, t in (("targets", targets), ("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if t.dtype not in _INTS:
            raise TypeError(f"{OP}: {name} must be int64 or int32, got {t.dtype}")
        if t.device != logits.device:
            raise ValueError(f"{OP}: {name} is on {t.device} but logits is on {logits.device}")
    for name, t in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if t.dim() != 1 or t.shape[0] != b:
            raise ValueError(f"{OP}: {name} must be 1-D with B={b} entries, got shape {tuple(t.shape)}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{OP}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(nll: Tensor, target_lengths: Tensor, reduction: str, zero_infinity: bool) -> Tensor:
    if zero_infinity:
        nll = torch.where(torch.isinf(nll), torch.zeros((), dtype=nll.dtype, device=nll.device), nll)
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return (nll / target_lengths.to(nll.dtype).clamp(min=1)).mean()


def reference_ctc_loss(logits: Tensor, targets: Tensor, input_lengths: Tensor | None, target_lengths: Tensor,
                       blank: int = 0, reduction: Reduction = "mean", zero_infinity: bool = True) -> Tensor:
    """``F.log_softmax`` in float32 (float64 for float64 scores) then ``F.ctc_loss``: the oracle of the native kernel.

    Same arguments and result as :func:`ctc_loss`.
    """
    if input_lengths is None:
        input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
    _check(logits, targets, input_lengths, target_lengths, blank, reduction)
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32
    if logits.numel() == 0:  # F.ctc_loss refuses empty input: an empty target has probability 1 in no frames
        nll = torch.where(target_lengths > 0, torch.inf, 0.0).to(acc)
        if zero_infinity:
            nll = torch.where(torch.isinf(nll), 0.0, nll).to(acc)
        return _reduce(nll + 0 * logits.sum(), target_lengths, reduction, False)
    log_probs = F.log_softmax(logits.to(acc), dim=-1).transpose(0, 1)
    nll = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=blank, reduction="none",
                     zero_infinity=zero_infinity)
    return _reduce(nll, target_lengths, reduction, False)


def _use_reference() -> bool:
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def use_native(x: Tensor) -> bool:
    """Whether ``backend="auto"`` takes the native kernel for scores like ``x`` (built for its device, not tracing)."""
    return _KERNELS.get(x.device.type, False) and not _use_reference()


def ctc_loss(logits: Tensor, targets: Tensor, input_lengths: Tensor | None, target_lengths: Tensor, blank: int = 0,
             reduction: Reduction = "mean", zero_infinity: bool = True, backend: Backend = "auto") -> Tensor:
    """CTC loss of batch-first raw scores, the log-softmax included: ``F.ctc_loss(F.log_softmax(logits).transpose(0,
    1), ...)`` without the float32 copy and the log-probabilities. Differentiable with respect to ``logits``.

    Args:
        logits: ``(B, T, C)`` raw scores, float32/float16/bfloat16/float64 (low precision is read as is and
            accumulates in float32; the gradient comes back in this dtype).
        targets: int64/int32, 1-D (all samples' targets concatenated) or 2-D ``(B, S)`` padded.
        input_lengths: ``(B,)`` valid frames per sample (``<= T``); ``None`` means all ``T``.
        target_lengths: ``(B,)`` target length per sample.
        blank: Index of the blank class.
        reduction: ``"mean"`` (each sample's loss divided by its target length, then the batch mean, as
            ``torch.nn.CTCLoss``), ``"sum"`` or ``"none"`` (``(B,)``).
        zero_infinity: Infeasible samples (no alignment fits in their frames) contribute 0 instead of ``inf``. Their
            gradient is zero either way.
        backend: ``"auto"`` (native kernel when built for the device and not tracing for ONNX/TorchScript, else the
            reference), ``"native"`` (raise :class:`~cllstr.ops.NativeUnavailableError` when missing) or
            ``"reference"``.

    Returns:
        The loss in float32 (float64 for float64 scores): a scalar, or ``(B,)`` for ``reduction="none"``.

    Raises:
        ValueError: bad ranks or shapes, blank out of range, lengths out of range, targets holding the blank or a
            class ``>= C``, tensors on different devices; the message names the argument. TypeError: wrong dtypes.
    """
    if input_lengths is None:
        input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
    _check(logits, targets, input_lengths, target_lengths, blank, reduction)
    if backend == "reference":
        return reference_ctc_loss(logits, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    if backend == "native":
        if not _KERNELS.get(logits.device.type, False):  # a dict read: torch.compile traces it
            require_native(OP, logits.device.type)
    elif backend != "auto":
        raise ValueError(f"{OP}: backend must be 'auto', 'native' or 'reference', got {backend!r}")
    elif not use_native(logits):
        return reference_ctc_loss(logits, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    nll, _ = torch.ops.cllstr.ctc_loss(logits, targets, input_lengths, target_lengths, int(blank))
    return _reduce(nll, target_lengths, reduction, zero_infinity)


if _HAS_OP:

    def _acc(logits: Tensor) -> torch.dtype:
        return torch.float64 if logits.dtype == torch.float64 else torch.float32

    @torch.library.register_fake("cllstr::ctc_loss")
    def _(logits: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor,
          blank: int = 0) -> tuple[Tensor, Tensor]:
        torch._check(logits.dim() == 3, lambda: f"{OP}: logits must be 3-D (B, T, C)")
        b, t, _ = logits.shape
        return logits.new_empty((b,), dtype=_acc(logits)), logits.new_empty((b, t), dtype=_acc(logits))

    @torch.library.register_fake("cllstr::ctc_loss_backward")
    def _(grad_nll: Tensor, logits: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor,
          nll: Tensor, lse: Tensor, blank: int = 0) -> Tensor:
        torch._check(logits.dim() == 3, lambda: f"{OP}_backward: logits must be 3-D (B, T, C)")
        return torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)

    def _setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        logits, targets, input_lengths, target_lengths, blank = inputs
        nll, lse = output
        ctx.save_for_backward(logits, targets, input_lengths, target_lengths, nll, lse)
        ctx.blank = blank
        ctx.mark_non_differentiable(lse)

    def _backward(ctx: Any, grad_nll: Tensor, _grad_lse: Tensor | None) -> tuple:
        logits, targets, input_lengths, target_lengths, nll, lse = ctx.saved_tensors
        grad = torch.ops.cllstr.ctc_loss_backward(grad_nll, logits, targets, input_lengths, target_lengths, nll, lse,
                                                  ctx.blank)
        return grad, None, None, None, None

    torch.library.register_autograd("cllstr::ctc_loss", _backward, setup_context=_setup_context)
