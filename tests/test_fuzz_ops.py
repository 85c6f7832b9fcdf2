"""Property-based fuzzing of ``ctc_greedy_decode``: random shapes, dtypes, strides, NaN/±inf and lengths in and out
of range. The native kernel must agree with the reference on every valid input and raise the reference's clear error
(same type, same message) on every invalid one: never crash, hang or return garbage."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cllstr.ops import ctc_greedy_decode, reference_ctc_greedy_decode
from tests.common import fuzz_settings, require_kernel

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SPECIALS = [float("nan"), float("inf"), float("-inf"), 0.0, 1e30, -1e30]
FUZZ = fuzz_settings(150)


@st.composite
def decode_inputs(draw) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    B = draw(st.integers(0, 6))
    T = draw(st.integers(0, 12))
    C = draw(st.integers(1, 150))
    dtype = draw(st.sampled_from(DTYPES))
    log_probs = draw(st.booleans())
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    logits = torch.randn(B, T, C, generator=gen) * draw(st.sampled_from([0.1, 1.0, 10.0, 1e4]))
    if draw(st.booleans()) and logits.numel():  # equal scores: ties everywhere
        logits = logits.round()
    for _ in range(draw(st.integers(0, 6)) if logits.numel() else 0):
        b, t, c = (draw(st.integers(0, n - 1)) for n in (B, T, C))
        if draw(st.booleans()):
            logits[b, t, :] = draw(st.sampled_from(SPECIALS))
        else:
            logits[b, t, c] = draw(st.sampled_from(SPECIALS))
    logits = logits.to(dtype)
    if draw(st.booleans()) and B > 1:  # non-contiguous: the same values through a transposed buffer
        logits = logits.transpose(0, 1).contiguous().transpose(0, 1)
    lengths = torch.tensor([draw(st.integers(-2, T + 2)) for _ in range(B)], dtype=torch.long)
    if draw(st.booleans()):
        lengths = lengths.int()
    blank = draw(st.integers(-1, C))
    return logits, lengths, blank, log_probs


def _outcome(fn):
    try:
        return fn(), None
    except (ValueError, TypeError) as e:
        return None, (type(e), str(e))


@FUZZ
@given(decode_inputs())
def test_native_agrees_with_reference_or_raises_the_same_error(inputs) -> None:
    require_kernel("ctc_greedy_decode", "cpu")
    logits, lengths, blank, log_probs = inputs
    ref, ref_err = _outcome(lambda: reference_ctc_greedy_decode(logits, lengths, blank, log_probs))
    nat, nat_err = _outcome(lambda: ctc_greedy_decode(logits, lengths, blank, log_probs, backend="native"))
    if ref_err is not None or nat_err is not None:
        assert ref_err is not None and nat_err is not None, f"reference: {ref_err}, native: {nat_err}"
        assert nat_err[0] is ref_err[0] and nat_err[1] == ref_err[1]
        return
    tokens, out_lengths, conf = nat
    assert torch.equal(tokens, ref[0]) and torch.equal(out_lengths, ref[1])
    torch.testing.assert_close(conf, ref[2], rtol=1e-3, atol=1e-6, equal_nan=True)
    assert (out_lengths >= 0).all() and (out_lengths <= lengths.long()).all()
    if not log_probs:  # a product of softmax maxima (log_probs=True takes any scores as given)
        valid = conf[~conf.isnan()]
        assert ((valid >= 0) & (valid <= 1 + 1e-5)).all()


@FUZZ
@given(st.lists(st.integers(0, 5), min_size=1, max_size=4), st.sampled_from([torch.float64, torch.int64, torch.bool]))
def test_any_rank_or_dtype_is_a_clear_error(shape, dtype) -> None:
    require_kernel("ctc_greedy_decode", "cpu")
    x = torch.zeros(shape, dtype=dtype)
    for backend in ("reference", "native"):
        with pytest.raises((ValueError, TypeError), match="ctc_greedy_decode"):
            ctc_greedy_decode(x, torch.zeros(shape[0], dtype=torch.long), backend=backend)
