"""SVTR windowed local attention: ``torch.ops.cllstr.svtr_local_attention`` (+ backward) and its pure-PyTorch reference.

Each query of an ``H x W`` token grid attends to the keys inside the ``kh x kw`` window centred on it, truncated at the
grid borders (not shifted), as SVTR's Local mixer does with a boolean mask over full attention (PaddleOCR
``rec_svtrnet.py``, CLL-STR ``modules/svtr.py``). The native kernels compute only the window: at most ``kh * kw``
keys per query instead of ``H * W``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from cllstr.ops._native import HAS_NATIVE, has_kernel, require_native

__all__ = ["local_window_mask", "reference_svtr_local_attention", "svtr_local_attention", "use_native"]

Backend = Literal["auto", "native", "reference"]
OP = "svtr_local_attention"
_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
#: The loaded library has this op (False for a build older than the op: the reference runs).
_HAS_OP = HAS_NATIVE and hasattr(torch.ops.cllstr, OP)
# Kernels register when the library loads: looked up once, a dict read that torch.compile traces.
_KERNELS = {dt: _HAS_OP and has_kernel(OP, dt) for dt in ("cpu", "cuda")}


@functools.lru_cache(maxsize=64)
def _cpu_mask(h: int, w: int, kh: int, kw: int) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = (ys[None, :] - ys[:, None]).abs()
    dx = (xs[None, :] - xs[:, None]).abs()
    return (dy <= kh // 2) & (dx <= kw // 2)


@functools.lru_cache(maxsize=64)
def _device_mask(h: int, w: int, kh: int, kw: int, device: torch.device) -> Tensor:
    return _cpu_mask(h, w, kh, kw).to(device)  # cached per device: no host-to-device copy per call (never modified)


def local_window_mask(h: int, w: int, kh: int, kw: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean ``(h*w, h*w)`` mask, True where the key token lies in the ``kh x kw`` window centred on the query.

    Args:
        h: Grid height. w: Grid width. kh: Window height (odd). kw: Window width (odd).
        device: Where the mask is put (CPU by default).

    Returns:
        ``(h*w, h*w)`` bool, row = query, column = key; a fresh tensor (safe to modify).
    """
    return _cpu_mask(int(h), int(w), int(kh), int(kw)).to(device=device, copy=True)


def _pair(name: str, value: Sequence[int]) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"{OP}: {name} must be a pair of ints, got {value!r}") from None
    return a, b


def _check(q: Tensor, k: Tensor, v: Tensor, grid: Sequence[int], window: Sequence[int]) -> tuple[tuple, tuple]:
    """The argument checks of the native op, for every path (same messages)."""
    if q.dim() != 4:
        raise ValueError(f"{OP}: q must be 4-D (B, heads, N, d), got {q.dim()}-D with shape {tuple(q.shape)}")
    if q.dtype not in _DTYPES:
        raise TypeError(f"{OP}: q must be float32, float16, bfloat16 or float64, got {q.dtype}")
    for name, t in (("k", k), ("v", v)):
        if t.shape != q.shape:
            raise ValueError(f"{OP}: {name} must have the shape of q {tuple(q.shape)}, got {tuple(t.shape)}")
        if t.dtype != q.dtype:
            raise TypeError(f"{OP}: {name} must have the dtype of q ({q.dtype}), got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{OP}: {name} is on {t.device} but q is on {q.device}")
    g, w = _pair("grid", grid), _pair("window", window)
    if g[0] <= 0 or g[1] <= 0:
        raise ValueError(f"{OP}: grid must be positive, got {g}")
    if g[0] * g[1] != q.shape[2]:
        raise ValueError(f"{OP}: grid {g} has {g[0] * g[1]} tokens but q has N={q.shape[2]}")
    if w[0] <= 0 or w[1] <= 0 or w[0] % 2 == 0 or w[1] % 2 == 0:
        raise ValueError(f"{OP}: window must be odd and positive (a centred window), got {w}")
    if q.shape[3] == 0:
        raise ValueError(f"{OP}: q has head dimension d == 0")
    return g, w


def reference_svtr_local_attention(q: Tensor, k: Tensor, v: Tensor, grid: Sequence[int], window: Sequence[int],
                                   scale: float | None = None) -> Tensor:
    """Masked full attention (today's SVTR Local mixing), the oracle of the native kernels; exports to ONNX.

    Args:
        q, k, v: ``(B, heads, N, d)`` float32/float16/bfloat16/float64 with ``N = H * W``.
        grid: ``(H, W)``, the token grid in row-major order.
        window: ``(kh, kw)``, odd window size.
        scale: Score scale; ``None`` means ``1 / sqrt(d)``.

    Returns:
        ``(B, heads, N, d)``: ``softmax(scale * q k^T + mask) v``, in q's dtype.
    """
    g, w = _check(q, k, v, grid, window)
    mask = _device_mask(g[0], g[1], w[0], w[1], q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def _use_reference() -> bool:
    """Tracing for TorchScript/ONNX: the op has no ONNX symbolic, so the masked-attention reference is exported."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def use_native(x: Tensor) -> bool:
    """Whether ``backend="auto"`` takes the native kernel for tensors like ``x``: it is built for ``x``'s device and
    no TorchScript/ONNX tracing is active (torch.export and torch.compile keep the op, through its fake kernel)."""
    return _KERNELS.get(x.device.type, False) and not _use_reference()


def svtr_local_attention(q: Tensor, k: Tensor, v: Tensor, grid: Sequence[int], window: Sequence[int],
                         scale: float | None = None, backend: Backend = "auto") -> Tensor:
    """Multi-head attention of each token of an ``H x W`` grid to the keys in the ``kh x kw`` window around it.

    Same result as :func:`reference_svtr_local_attention` (masked full attention); the native kernels visit only the
    window. Differentiable (the backward is its own native op).

    Args:
        q, k, v: ``(B, heads, N, d)`` float32/float16/bfloat16/float64 with ``N = H * W``, same dtype and device; any
            strides (a unit stride on ``d`` avoids a copy). float16/bfloat16 accumulate in float32. The CUDA kernel
            takes ``d <= 256``.
        grid: ``(H, W)``, the token grid in row-major order.
        window: ``(kh, kw)``, odd; truncated at the grid borders; larger than the grid is allowed.
        scale: Score scale; ``None`` means ``1 / sqrt(d)``.
        backend: ``"auto"`` (native kernel when built for the device and not tracing for ONNX/TorchScript, else the
            reference), ``"native"`` (raise :class:`~cllstr.ops.NativeUnavailableError` when missing) or
            ``"reference"``.

    Returns:
        ``(B, heads, N, d)`` in q's dtype. The native result is a view of a ``(B, N, heads, d)`` buffer, so that
        ``out.transpose(1, 2).reshape(B, N, heads * d)`` costs no copy.

    Raises:
        ValueError: bad rank or shapes, a grid that does not match ``N``, an even window, tensors on different
            devices; the message names the argument. TypeError: a wrong or mismatched dtype.
    """
    g, w = _check(q, k, v, grid, window)
    if backend == "reference":
        return reference_svtr_local_attention(q, k, v, g, w, scale)
    if backend == "native":
        if not _KERNELS.get(q.device.type, False):  # a dict read, traced by torch.compile (the dispatcher query is not)
            require_native(OP, q.device.type)
    elif backend != "auto":
        raise ValueError(f"{OP}: backend must be 'auto', 'native' or 'reference', got {backend!r}")
    elif not use_native(q):
        return reference_svtr_local_attention(q, k, v, g, w, scale)
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return torch.ops.cllstr.svtr_local_attention(q, k, v, list(g), list(w), s)[0]


if _HAS_OP:

    @torch.library.register_fake("cllstr::svtr_local_attention")
    def _(q: Tensor, k: Tensor, v: Tensor, grid: list[int], window: list[int], scale: float) -> tuple[Tensor, Tensor]:
        torch._check(q.dim() == 4, lambda: f"{OP}: q must be 4-D (B, heads, N, d)")
        torch._check(k.shape == q.shape and v.shape == q.shape, lambda: f"{OP}: k and v must have the shape of q")
        B, NH, N, d = q.shape
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        return q.new_empty((B, N, NH, d)).transpose(1, 2), q.new_empty((B, NH, N), dtype=acc)

    @torch.library.register_fake("cllstr::svtr_local_attention_backward")
    def _(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, grid: list[int],
          window: list[int], scale: float) -> tuple[Tensor, Tensor, Tensor]:
        torch._check(q.dim() == 4, lambda: f"{OP}_backward: q must be 4-D (B, heads, N, d)")
        shape = q.shape
        return q.new_empty(shape), q.new_empty(shape), q.new_empty(shape)

    def _setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        q, k, v, grid, window, scale = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.grid, ctx.window, ctx.scale = grid, window, scale
        ctx.mark_non_differentiable(lse)

    def _backward(ctx: Any, grad_out: Tensor, _grad_lse: Tensor | None) -> tuple:
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = torch.ops.cllstr.svtr_local_attention_backward(
            grad_out, q, k, v, out, lse, ctx.grid, ctx.window, ctx.scale
        )
        return dq, dk, dv, None, None, None

    torch.library.register_autograd("cllstr::svtr_local_attention", _backward, setup_context=_setup_context)
