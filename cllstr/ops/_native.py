"""Quiet loading of the native library ``cllstr._C``.

A missing or broken build leaves :data:`HAS_NATIVE` False and the pure-PyTorch reference implementations run; asking
for the native path explicitly raises :class:`NativeUnavailableError` with the rebuild command.
"""

from __future__ import annotations

import torch

__all__ = ["HAS_NATIVE", "NATIVE_ERROR", "NativeUnavailableError", "frame_lengths", "has_kernel", "require_native"]

REBUILD_HINT = "rebuild it with `pip install --no-build-isolation -e .` (or `make build`) in the cllstr source tree"

try:
    from cllstr import _C  # noqa: F401  (importing registers torch.ops.cllstr.*)

    HAS_NATIVE = True
    NATIVE_ERROR: str | None = None
except (ImportError, OSError) as exc:  # not built, or built against another torch
    HAS_NATIVE = False
    NATIVE_ERROR = f"{type(exc).__name__}: {exc}"


class NativeUnavailableError(RuntimeError):
    """The native library (or a kernel for the requested device) is not available."""


def has_kernel(op: str, device_type: str) -> bool:
    """Whether ``torch.ops.cllstr.<op>`` has a native kernel for ``device_type`` (``"cpu"`` or ``"cuda"``)."""
    if not HAS_NATIVE:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    if key is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"cllstr::{op}", key)


def require_native(op: str, device_type: str) -> None:
    """Raise :class:`NativeUnavailableError` unless ``op`` has a native kernel for ``device_type``."""
    if not HAS_NATIVE:
        raise NativeUnavailableError(f"cllstr native library is not loaded ({NATIVE_ERROR}); {REBUILD_HINT}")
    if not has_kernel(op, device_type):
        raise NativeUnavailableError(
            f"cllstr::{op} has no {device_type} kernel in this build (CUDA kernels are compiled only when torch is a "
            f"CUDA build and CUDA_HOME is set, or FORCE_CUDA=1); {REBUILD_HINT}"
        )


def frame_lengths(op: str, name: str, scores: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Check that ``scores`` is ``(B, T, C)`` and return the valid frames per row on its device (all T when None).

    Raises:
        ValueError: ``scores`` is not 3-D; the message names ``op`` and the argument ``name``.
    """
    if scores.dim() != 3:
        raise ValueError(f"{op}: {name} must be 3-D (B, T, C), got {scores.dim()}-D with shape {tuple(scores.shape)}")
    if lengths is None:
        return torch.full((scores.shape[0],), scores.shape[1], dtype=torch.long, device=scores.device)
    return lengths.to(scores.device) if lengths.device != scores.device else lengths
