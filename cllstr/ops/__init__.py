"""Native operators of cllstr with their pure-PyTorch references.

``HAS_NATIVE`` tells whether the compiled library ``cllstr._C`` loaded; without it every op runs its reference
implementation.
"""

from cllstr.ops._native import HAS_NATIVE, NATIVE_ERROR, NativeUnavailableError, has_kernel
from cllstr.ops.ctc_beam_search import ctc_beam_search, reference_ctc_beam_search
from cllstr.ops.ctc_greedy_decode import ctc_greedy_decode, reference_ctc_greedy_decode
from cllstr.ops.ctc_loss import ctc_loss, reference_ctc_loss
from cllstr.ops.svtr_local_attention import (
    local_window_mask,
    reference_svtr_local_attention,
    svtr_local_attention,
)

__all__ = [
    "HAS_NATIVE",
    "NATIVE_ERROR",
    "NativeUnavailableError",
    "ctc_beam_search",
    "ctc_greedy_decode",
    "ctc_loss",
    "has_kernel",
    "local_window_mask",
    "reference_ctc_beam_search",
    "reference_ctc_greedy_decode",
    "reference_ctc_loss",
    "reference_svtr_local_attention",
    "svtr_local_attention",
]
