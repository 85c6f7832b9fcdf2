"""Device and mixed-precision selection shared by training, evaluation and prediction.

``auto`` precision means bfloat16 autocast on CPU (oneDNN's AVX512-BF16/AMX kernels) and on GPUs that support it,
float16 with a gradient scaler on older GPUs. Softmax/CTC are always computed in float32 by the loss.
"""

from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["resolve_device", "cpu_has_native_bf16", "resolve_amp_dtype", "autocast", "configure_threads"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available else CPU; otherwise ``torch.device(name)`` (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), so that bf16 autocast is faster than fp32.

    Without it oneDNN emulates bf16 and autocast is many times slower (a CRNN training step 15x slower than fp32 on
    an AVX2-only AMD EPYC), so ``precision="auto"`` means fp32 there.
    """
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: trust only an explicit request for bf16
        return False


def resolve_amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``precision`` (``auto``/``bf16``/``fp16``/``fp32``) on ``device``; None means fp32.

    ``auto`` is bf16 on a GPU that supports it (else fp16) and on a CPU with native bf16 (:func:`cpu_has_native_bf16`),
    fp32 on other CPUs.
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of auto, bf16, fp16, fp32; got {precision!r}")
    dtype = _DTYPES[precision]
    if dtype is torch.float16 and device.type == "cpu":
        raise ValueError("precision fp16 is not supported on CPU; use bf16 or fp32")
    return dtype


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_threads(threads: int | None) -> int:
    """Set the intra-op thread count (None: one per available core); returns the count in use."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
