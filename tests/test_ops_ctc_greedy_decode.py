"""Parity of the native ``cllstr::ctc_greedy_decode`` kernels with the pure-PyTorch reference."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from cllstr.ops import NativeUnavailableError, ctc_greedy_decode, has_kernel, reference_ctc_greedy_decode
from tests.common import OpLog, devices, require_kernel

NATIVE_OP = torch.ops.cllstr.ctc_greedy_decode.default if hasattr(torch.ops.cllstr, "ctc_greedy_decode") else None


@pytest.fixture
def native_cpu() -> None:
    """The test needs the native CPU kernel: skip without it, fail under ``--require-native``."""
    require_kernel("ctc_greedy_decode", "cpu")


def run_native(device: str, *args, **kwargs) -> tuple:
    """``ctc_greedy_decode(*args, backend="native")``, asserting the native ``device`` kernel is what ran: the kernel
    is registered for the device, the call dispatched ``cllstr::ctc_greedy_decode`` and no aten op of the reference."""
    require_kernel("ctc_greedy_decode", device)
    assert has_kernel("ctc_greedy_decode", device)
    with OpLog() as log:
        out = ctc_greedy_decode(*args, backend="native", **kwargs)
    assert log.ops == [NATIVE_OP], f"expected only the native op to run, got {log.ops}"
    return out


@dataclass
class Case:
    name: str
    logits: torch.Tensor
    lengths: torch.Tensor
    blank: int = 0
    log_probs: bool = False


def _peaked(B: int, T: int, C: int, gen: torch.Generator, blank_rate: float = 0.4) -> torch.Tensor:
    """Logits whose arg-max path has blanks and repeats, as a trained CTC model produces."""
    ids = torch.randint(0, C, (B, T), generator=gen)
    ids[torch.rand(B, T, generator=gen) < blank_rate] = 0
    rep = torch.rand(B, T, generator=gen) < 0.3
    ids[:, 1:] = torch.where(rep[:, 1:], ids[:, :-1], ids[:, 1:])
    x = torch.randn(B, T, C, generator=gen)
    x.scatter_(2, ids[..., None], 6.0)
    return x


def _ties() -> torch.Tensor:
    """Equal maxima: all-zero rows (blank wins), two equal non-blank maxima, a tie that straddles a 64-wide chunk."""
    x = torch.zeros(3, 4, 130)
    x[1, :, 3] = x[1, :, 5] = 1.0
    x[1, 2, 0] = 1.0
    x[2, :, 70] = x[2, :, 100] = 2.0
    x[2, 1, 63] = x[2, 1, 64] = 3.0
    return x


def _large_scores() -> torch.Tensor:
    """Two equal maxima of 1e30 (probability 0.5 each), and 1e8 against 1e8 - 8: ``max - logsumexp`` cancels to 0."""
    x = torch.zeros(3, 5, 6)
    x[0, :, 1] = x[0, :, 2] = 1e30
    x[1, :, 3] = 1e8
    x[1, :, 4] = 1e8 - 8
    x[2, :, 5] = -1e30
    return x


def _with_specials(x: torch.Tensor, value: float) -> torch.Tensor:
    """``value`` (NaN / +inf / -inf) in some entries: one whole row, a single entry per row, the blank, two in a
    row (first index must win) and past the valid length (must not count)."""
    x = x.clone()
    x[0, 2, :] = value
    x[1, :, 4] = value
    x[2, 1, 0] = value
    x[2, 3, 7] = x[2, 3, 9] = value
    x[3, 5, 1] = value
    x[5, 8, 2] = value
    return x


def sample_inputs(device: str) -> list[Case]:
    """Odd sizes, empty batch, T=1, all-blank, lengths < T, max length, non-contiguous, other blank, log-probs."""
    g = torch.Generator().manual_seed(0)
    cases = [
        Case("odd", _peaked(7, 13, 37, g), torch.randint(0, 14, (7,), generator=g)),
        Case("empty_batch", torch.randn(0, 5, 11), torch.zeros(0, dtype=torch.long)),
        Case("T1", _peaked(5, 1, 9, g), torch.ones(5, dtype=torch.long)),
        Case("T0", torch.randn(3, 0, 9), torch.zeros(3, dtype=torch.long)),
        Case("C1_all_blank", torch.randn(4, 6, 1), torch.full((4,), 6)),
        Case("max_length", _peaked(3, 26, 4680, g), torch.full((3,), 26)),
        Case("int32_lengths", _peaked(6, 9, 17, g), torch.tensor([9, 0, 1, 8, 9, 4], dtype=torch.int32)),
        Case("blank_last", _peaked(5, 11, 23, g), torch.full((5,), 11), blank=22),
        Case("log_probs", _peaked(5, 12, 31, g).log_softmax(-1), torch.tensor([12, 3, 0, 7, 12]), log_probs=True),
        Case("non_contiguous", _peaked(10, 8, 19, g).transpose(0, 1), torch.full((8,), 10)),
        Case("sliced", _peaked(4, 9, 40, g)[:, :, ::2], torch.full((4,), 9)),
        Case("ties", _ties(), torch.tensor([4, 2, 4])),
        Case("large_scores", _large_scores(), torch.tensor([5, 3, 0])),
        Case("nan", _with_specials(_peaked(6, 9, 13, g), float("nan")), torch.tensor([9, 9, 4, 0, 9, 7])),
        Case("pos_inf", _with_specials(_peaked(6, 9, 13, g), float("inf")), torch.tensor([9, 9, 4, 0, 9, 7])),
        Case("neg_inf", _with_specials(_peaked(6, 9, 13, g), float("-inf")), torch.tensor([9, 9, 4, 0, 9, 7])),
        Case("neg_inf_log_probs", _with_specials(_peaked(6, 9, 13, g).log_softmax(-1), float("-inf")),
             torch.tensor([9, 9, 4, 0, 9, 7]), log_probs=True),
        Case("nan_log_probs", _with_specials(_peaked(6, 9, 13, g).log_softmax(-1), float("nan")),
             torch.tensor([9, 9, 4, 0, 9, 7]), log_probs=True),
    ]
    all_blank = torch.full((3, 7, 12), -5.0)
    all_blank[..., 0] = 5.0
    cases.append(Case("all_blank", all_blank, torch.tensor([7, 3, 0])))
    # Wide rows (16-lane blocks and a tail of 11) with specials, and empty sequences between full ones: the kernel
    # reads the next row (of the next non-empty sequence) while it finishes the current one.
    for name, value in (("wide_nan", float("nan")), ("wide_pos_inf", float("inf")), ("wide_neg_inf", float("-inf"))):
        cases.append(Case(name, _with_specials(_peaked(6, 9, 523, g), value), torch.tensor([9, 9, 4, 0, 9, 7])))
    cases.append(Case("wide_zero_lengths", _peaked(7, 6, 523, g), torch.tensor([0, 5, 0, 0, 6, 1, 0])))
    cases.append(Case("wide_zero_lengths_log_probs", _peaked(7, 6, 523, g).log_softmax(-1),
                      torch.tensor([0, 5, 0, 0, 6, 1, 0]), log_probs=True))
    for c in cases:
        c.logits, c.lengths = c.logits.to(device), c.lengths.to(device)
    return cases


CASE_NAMES = [c.name for c in sample_inputs("cpu")]


def _check_against_reference(case: Case, out: tuple, dtype_tol: float = 1e-4) -> None:
    tokens, lengths, conf = out
    r_tokens, r_lengths, r_conf = reference_ctc_greedy_decode(case.logits, case.lengths, case.blank, case.log_probs)
    assert tokens.dtype == torch.long and lengths.dtype == torch.long and conf.dtype == torch.float32
    assert tokens.shape == case.logits.shape[:2] and lengths.shape == case.logits.shape[:1]
    torch.testing.assert_close(tokens.cpu(), r_tokens.cpu())
    torch.testing.assert_close(lengths.cpu(), r_lengths.cpu())
    torch.testing.assert_close(conf.cpu(), r_conf.cpu(), rtol=dtype_tol, atol=1e-6, equal_nan=True)


def _first_argmax(row: list[float]) -> int:
    """Arg-max in plain Python: the first NaN if any (as torch.max), else the first maximum."""
    nan = [i for i, v in enumerate(row) if math.isnan(v)]
    return nan[0] if nan else max(range(len(row)), key=row.__getitem__)


def _python_loop_decode(logits: torch.Tensor, lengths: torch.Tensor, blank: int) -> list[list[int]]:
    """Independent per-sample loop, as typical STR code decodes."""
    out = []
    for b in range(logits.shape[0]):
        ids = [_first_argmax(row) for row in logits[b, : int(lengths[b])].float().tolist()]
        seq, prev = [], None
        for k in ids:
            if k != blank and k != prev:
                seq.append(k)
            prev = k
        out.append(seq)
    return out


@pytest.mark.parametrize("name", CASE_NAMES)
def test_reference_matches_python_loop(name: str) -> None:
    case = next(c for c in sample_inputs("cpu") if c.name == name)
    tokens, lengths, conf = reference_ctc_greedy_decode(case.logits, case.lengths, case.blank, case.log_probs)
    expect = _python_loop_decode(case.logits, case.lengths, case.blank)
    assert [tokens[b, : int(lengths[b])].tolist() for b in range(len(expect))] == expect
    assert torch.all(tokens[torch.arange(tokens.shape[1])[None] >= lengths[:, None]] == case.blank)
    if case.logits.numel():
        probs = case.logits.float().exp() if case.log_probs else case.logits.float().softmax(-1)
        pmax = probs.max(-1).values
        mask = torch.arange(case.logits.shape[1])[None] < case.lengths[:, None]
        expected_conf = torch.where(mask, pmax, torch.ones_like(pmax)).prod(-1)
        torch.testing.assert_close(conf, expected_conf, rtol=1e-4, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", CASE_NAMES)
def test_native_matches_reference(device: str, name: str) -> None:
    case = next(c for c in sample_inputs(device) if c.name == name)
    out = run_native(device, case.logits, case.lengths, case.blank, case.log_probs)
    _check_against_reference(case, out)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(device: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    logits = _peaked(9, 17, 101, g).to(device=device, dtype=dtype)
    lengths = torch.randint(0, 18, (9,), generator=g).to(device)
    case = Case("lp", logits, lengths)
    out = run_native(device, logits, lengths)
    _check_against_reference(case, out, dtype_tol=1e-3)
    # Error against an fp32 reference at most 2x that of the same-precision PyTorch path (house style).
    fp32_conf = reference_ctc_greedy_decode(logits.float(), lengths)[2]
    ref_err = (reference_ctc_greedy_decode(logits, lengths)[2] - fp32_conf).abs().max()
    assert (out[2].cpu() - fp32_conf.cpu()).abs().max() <= 2 * ref_err.cpu() + 1e-6


def test_ties_pick_first_index() -> None:
    logits = torch.zeros(1, 3, 5)
    logits[0, :, 2] = 1.0
    logits[0, :, 4] = 1.0
    logits[0, 1, 0] = 2.0
    tokens, lengths, _ = ctc_greedy_decode(logits, backend="reference")
    assert tokens[0, : int(lengths[0])].tolist() == [2, 2]
    tokens, lengths, _ = run_native("cpu", logits, torch.tensor([3]))
    assert tokens[0, : int(lengths[0])].tolist() == [2, 2]


def test_lengths_default_to_T() -> None:
    x = _peaked(3, 5, 7, torch.Generator().manual_seed(3))
    a = ctc_greedy_decode(x)
    b = ctc_greedy_decode(x, torch.full((3,), 5))
    for u, v in zip(a, b, strict=False):
        torch.testing.assert_close(u, v)


@pytest.mark.parametrize("backend", ["reference", "native"])
@pytest.mark.parametrize(
    ("logits", "lengths", "blank", "exc", "match"),
    [
        (torch.randn(2, 3), torch.tensor([1, 1]), 0, ValueError, "logits must be 3-D"),
        (torch.randn(2, 3, 4, 1), torch.tensor([1, 1]), 0, ValueError, "logits must be 3-D"),
        (torch.randn(2, 3, 4).double(), torch.tensor([1, 1]), 0, TypeError, "logits must be float32"),
        (torch.randint(0, 3, (2, 3, 4)), torch.tensor([1, 1]), 0, TypeError, "logits must be float32"),
        (torch.randn(2, 3, 4), torch.tensor([1.0, 1.0]), 0, TypeError, "lengths must be int64"),
        (torch.randn(2, 3, 4), torch.tensor([1, 1, 1]), 0, ValueError, "lengths"),
        (torch.randn(2, 3, 4), torch.tensor([[1, 1]]), 0, ValueError, "lengths"),
        (torch.randn(2, 3, 4), torch.tensor([4, 1]), 0, ValueError, "lengths must be <= T=3"),
        (torch.randn(2, 3, 4), torch.tensor([-1, 1]), 0, ValueError, "lengths must be >= 0"),
        (torch.randn(2, 3, 4), torch.tensor([1, 1]), 4, ValueError, "blank=4 is out of range"),
        (torch.randn(2, 3, 4), torch.tensor([1, 1]), -1, ValueError, "blank=-1 is out of range"),
        (torch.randn(2, 3, 0), torch.tensor([1, 1]), 0, ValueError, "no classes"),
    ],
)
def test_bad_input_raises_clear_error(logits, lengths, blank, exc, match, backend: str) -> None:
    if backend == "native":
        require_kernel("ctc_greedy_decode", "cpu")
    with pytest.raises(exc, match=match):
        ctc_greedy_decode(logits, lengths, blank, backend=backend)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        ctc_greedy_decode(torch.randn(1, 2, 3), backend="fast")


def test_native_request_without_kernel_explains_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    import cllstr.ops._native as native

    monkeypatch.setattr(native, "HAS_NATIVE", False)
    monkeypatch.setattr(native, "NATIVE_ERROR", "ImportError: simulated")
    with pytest.raises(NativeUnavailableError, match="pip install --no-build-isolation -e ."):
        ctc_greedy_decode(torch.randn(1, 2, 3), backend="native")


@pytest.mark.usefixtures("native_cpu")
@pytest.mark.parametrize("name", ["odd", "empty_batch", "T1", "log_probs", "non_contiguous", "all_blank"])
def test_opcheck(name: str) -> None:
    case = next(c for c in sample_inputs("cpu") if c.name == name)
    torch.library.opcheck(
        torch.ops.cllstr.ctc_greedy_decode.default, (case.logits, case.lengths, case.blank, case.log_probs)
    )


@pytest.mark.usefixtures("native_cpu")
def test_torch_compile_traces_through_fake_kernel() -> None:
    x = _peaked(4, 6, 9, torch.Generator().manual_seed(5))
    lengths = torch.tensor([6, 5, 0, 2])
    fn = torch.compile(lambda a, b: torch.ops.cllstr.ctc_greedy_decode(a, b, 0, False), backend="eager",
                       fullgraph=True)
    for u, v in zip(fn(x, lengths), reference_ctc_greedy_decode(x, lengths), strict=False):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-6)


@pytest.mark.usefixtures("native_cpu")
def test_thread_count_does_not_change_result() -> None:
    case = sample_inputs("cpu")[0]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = run_native("cpu", case.logits, case.lengths)
        torch.set_num_threads(max(2, before))
        b = run_native("cpu", case.logits, case.lengths)
    finally:
        torch.set_num_threads(before)
    for u, v in zip(a, b, strict=False):
        assert torch.equal(u, v)
