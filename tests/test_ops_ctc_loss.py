"""The fused CTC loss ``cllstr::ctc_loss`` (+ backward): parity with ``F.log_softmax`` + ``F.ctc_loss``, brute force
over alignments, gradcheck, opcheck, the zero-infinity and NaN semantics, and its argument errors."""

from __future__ import annotations

import importlib
import itertools
import math
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

from cllstr.ops import ctc_loss, reference_ctc_loss
from tests.common import OpLog, require_kernel

OP = "ctc_loss"
_HAS_OP = hasattr(torch.ops.cllstr, OP)


@dataclass
class Case:
    name: str
    B: int
    T: int
    C: int
    input_lengths: list[int] | None = None  # None: all T
    target_lengths: list[int] = field(default_factory=list)
    blank: int = 0
    padded: bool = False  # 2-D (B, S) targets
    int32: bool = False
    layout: str = "contiguous"  # or "time_major" (a transposed (T, B, C) buffer: non-contiguous)
    repeats: bool = False  # targets made of repeated characters ("aa", "aab")
    scale: float = 3.0


CASES = [
    Case("odd", 3, 7, 5, [7, 5, 6], [2, 3, 1]),
    Case("one_frame", 2, 1, 4, None, [1, 0]),
    Case("no_frames", 2, 0, 4, None, [0, 0]),
    Case("empty_batch", 0, 5, 4, [], []),
    Case("blank_only_class", 2, 3, 1, None, [0, 0]),
    Case("two_classes", 3, 6, 2, [6, 4, 2], [2, 1, 0], repeats=True),
    Case("lengths_below_T", 4, 9, 6, [9, 3, 0, 1], [3, 1, 0, 1]),
    Case("repeats", 3, 8, 5, None, [2, 3, 4], repeats=True),
    Case("infeasible", 3, 4, 6, [4, 4, 2], [3, 2, 2], repeats=True),  # "aa" in 2 frames, 3 repeats in 4
    Case("blank_last", 3, 7, 6, None, [2, 3, 1], blank=5),
    Case("padded_int32", 3, 7, 9, [7, 6, 7], [3, 0, 2], padded=True, int32=True),
    Case("time_major", 5, 6, 7, None, [2, 1, 3, 0, 2], layout="time_major"),
    Case("wide", 3, 10, 4680, [10, 8, 9], [4, 2, 5], scale=8.0),  # the vector tails, a 4680-way head
    Case("odd_wide", 2, 5, 37, None, [2, 2], scale=30.0),  # peaked rows: occupancy close to the softmax
]
IDS = [c.name for c in CASES]


def make(case: Case, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    if case.layout == "time_major":
        logits = (torch.randn(case.T, case.B, case.C, generator=g) * case.scale).transpose(0, 1)
    else:
        logits = torch.randn(case.B, case.T, case.C, generator=g) * case.scale
    logits = logits.to(dtype)
    labels = [c for c in range(case.C) if c != case.blank]
    rows = []
    for n in case.target_lengths:
        if case.repeats and labels:
            a = labels[int(torch.randint(len(labels), (1,), generator=g))]
            row = [a] * n
        else:
            row = [labels[int(i)] for i in torch.randint(max(len(labels), 1), (n,), generator=g)] if labels else []
        rows.append(row)
    if case.padded:
        s = max(case.target_lengths, default=0) + 1
        targets = torch.full((case.B, s), case.blank if case.blank else 1, dtype=torch.long)
        for b, row in enumerate(rows):
            targets[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    else:
        targets = torch.tensor([c for row in rows for c in row], dtype=torch.long)
    dt = torch.int32 if case.int32 else torch.long
    il = torch.tensor(case.input_lengths if case.input_lengths is not None else [case.T] * case.B, dtype=dt)
    tl = torch.tensor(case.target_lengths, dtype=dt)
    return logits, targets.to(dt), il, tl


def loss_and_grad(fn, logits: torch.Tensor, weights: torch.Tensor):
    x = logits.detach().requires_grad_()
    nll = fn(x)
    (nll.double() * weights).sum().backward()
    return nll.detach(), x.grad


def exact(case: Case, logits, targets, il, tl, weights):
    """float64 reference on the same (already rounded) scores."""
    return loss_and_grad(lambda x: reference_ctc_loss(x.double(), targets, il, tl, case.blank, "none"), logits,
                         weights)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16],
                         ids=["f32", "f64", "bf16", "f16"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_native_matches_reference(case: Case, dtype: torch.dtype) -> None:
    require_kernel(OP, "cpu")
    logits, targets, il, tl = make(case, dtype)
    weights = torch.rand(case.B, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.5
    with OpLog() as log:
        got, got_grad = loss_and_grad(lambda x: ctc_loss(x, targets, il, tl, case.blank, "none", backend="native"),
                                      logits, weights)
    assert torch.ops.cllstr.ctc_loss.default in log.ops and torch.ops.cllstr.ctc_loss_backward.default in log.ops
    assert not any("log_softmax" in str(op) for op in log.ops)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert got_grad.dtype == dtype and got_grad.shape == logits.shape
    want, want_grad = exact(case, logits, targets, il, tl, weights)
    torch.testing.assert_close(got.double(), want, rtol=1e-5 if dtype != torch.float64 else 1e-12,
                               atol=1e-4 if dtype != torch.float64 else 1e-10)
    if dtype in (torch.float32, torch.float64):
        # float32: log-space values of ~30 in magnitude carry ~4e-6 absolute rounding (30 x 1.2e-7), which becomes a
        # relative error of that size in the exponentiated gradient (measured: 5.0e-6 relative on one entry of
        # `wide` through the baseline (SSE2) build of the row scans, 2.0e-6 absolute)
        atol, rtol = (2e-6, 1e-5) if dtype == torch.float32 else (1e-12, 0.0)
        torch.testing.assert_close(got_grad.double(), want_grad.double(), rtol=rtol, atol=atol)
    else:  # rounded to the low precision: no worse than twice the same-precision PyTorch path's own rounding error,
        # plus one unit in the last place (where that path happens to round exactly, its error is 0)
        _, ref_grad = loss_and_grad(lambda x: reference_ctc_loss(x, targets, il, tl, case.blank, "none"), logits,
                                    weights)
        err = (got_grad.double() - want_grad.double()).abs().max().item() if got_grad.numel() else 0.0
        ref_err = (ref_grad.double() - want_grad.double()).abs().max().item() if got_grad.numel() else 0.0
        ulp = torch.finfo(dtype).eps * (want_grad.abs().max().item() if want_grad.numel() else 0.0)
        assert err <= 2 * ref_err + ulp, (err, ref_err, ulp)


def brute_force_nll(log_probs: torch.Tensor, target: list[int], blank: int) -> float:
    """-log of the summed probability of every path of T frames that collapses to ``target``."""
    T, C = log_probs.shape
    total = -math.inf
    for path in itertools.product(range(C), repeat=T):
        out, prev = [], None
        for c in path:
            if c != prev and c != blank:
                out.append(c)
            prev = c
        if out == target:
            lp = sum(float(log_probs[t, c]) for t, c in enumerate(path))
            total = max(total, lp) + math.log1p(math.exp(-abs(total - lp))) if total > -math.inf else lp
    return -total


@pytest.mark.parametrize("target", [[], [1], [1, 1], [2, 1], [1, 2, 1], [2, 2, 2]], ids=str)
@pytest.mark.parametrize("T", [1, 3, 5])
def test_nll_equals_brute_force_over_alignments(T: int, target: list[int]) -> None:
    require_kernel(OP, "cpu")
    torch.manual_seed(T + len(target))
    logits = torch.randn(1, T, 3, dtype=torch.float64) * 2
    nll = ctc_loss(logits, torch.tensor(target, dtype=torch.long), None, torch.tensor([len(target)]),
                   reduction="none", zero_infinity=False, backend="native")
    want = brute_force_nll(F.log_softmax(logits[0], -1), target, blank=0)
    if math.isinf(want):
        assert math.isinf(nll.item()) and nll.item() > 0
    else:
        assert nll.item() == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 5, 7, 8, 9, 10)], ids=[IDS[i] for i in (0, 5, 7, 8, 9, 10)])
def test_gradcheck_float64(case: Case) -> None:
    require_kernel(OP, "cpu")
    logits, targets, il, tl = make(case, torch.float64)
    x = logits.detach().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a: ctc_loss(a, targets, il, tl, case.blank, "sum", backend="native"), (x,), eps=1e-6, atol=1e-7,
        rtol=1e-5)


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 3, 7, 8, 10)], ids=[IDS[i] for i in (0, 3, 7, 8, 10)])
def test_opcheck(case: Case) -> None:
    require_kernel(OP, "cpu")
    logits, targets, il, tl = make(case, torch.float32)
    x = logits.detach().requires_grad_()
    torch.library.opcheck(torch.ops.cllstr.ctc_loss.default, (x, targets, il, tl, case.blank))
    nll, lse = torch.ops.cllstr.ctc_loss(logits, targets, il, tl, case.blank)
    torch.library.opcheck(torch.ops.cllstr.ctc_loss_backward.default,
                          (torch.rand(case.B), logits, targets, il, tl, nll, lse, case.blank))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_infinity", [True, False])
def test_reductions_and_zero_infinity_match_torch(reduction: str, zero_infinity: bool) -> None:
    require_kernel(OP, "cpu")
    case = CASES[8]  # two infeasible samples
    logits, targets, il, tl = make(case, torch.float32)
    x = logits.detach().requires_grad_()
    got = ctc_loss(x, targets, il, tl, reduction=reduction, zero_infinity=zero_infinity, backend="native")
    want = F.ctc_loss(F.log_softmax(logits, -1).transpose(0, 1), targets, il, tl, reduction=reduction,
                      zero_infinity=zero_infinity)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if zero_infinity:
        assert torch.isfinite(got).all()
        got.sum().backward()
        assert torch.isfinite(x.grad).all()
        infeasible = torch.tensor([True, False, True])  # 'aaa' in 4 frames, 'aa' in 2
        assert (x.grad[infeasible] == 0).all() and (x.grad[~infeasible] != 0).any()


def test_frames_past_the_input_length_get_zero_gradient() -> None:
    require_kernel(OP, "cpu")
    case = CASES[6]
    logits, targets, il, tl = make(case, torch.float32)
    x = logits.detach().requires_grad_()
    ctc_loss(x, targets, il, tl, reduction="sum", backend="native").backward()
    for b, n in enumerate(case.input_lengths):
        assert (x.grad[b, n:] == 0).all()
        # each valid frame's gradient is softmax - occupancy: it sums to zero over the classes
        torch.testing.assert_close(x.grad[b, :n].sum(-1), torch.zeros(n), atol=1e-5, rtol=0)


def test_nan_scores_give_nan_loss_and_gradient_for_that_sample_only() -> None:
    require_kernel(OP, "cpu")
    logits, targets, il, tl = make(CASES[0], torch.float32)
    logits[1, 2, 3] = float("nan")
    x = logits.detach().requires_grad_()
    nll = ctc_loss(x, targets, il, tl, reduction="none", backend="native")
    assert nll[1].isnan() and torch.isfinite(nll[[0, 2]]).all()
    nll[[0, 2]].sum().backward()  # a zero weight on the NaN sample: its gradient is zero, the others' finite
    assert torch.isfinite(x.grad).all() and (x.grad[1] == 0).all()
    x.grad = None
    ctc_loss(x, targets, il, tl, reduction="none", backend="native").sum().backward()
    assert x.grad[1, : il[1]].isnan().all() and torch.isfinite(x.grad[[0, 2]]).all()


def test_auto_takes_the_native_kernel_and_reference_backend_does_not() -> None:
    require_kernel(OP, "cpu")
    logits, targets, il, tl = make(CASES[0], torch.bfloat16)
    with OpLog() as log:
        ctc_loss(logits, targets, il, tl)
    assert torch.ops.cllstr.ctc_loss.default in log.ops
    with OpLog() as log:
        ctc_loss(logits, targets, il, tl, backend="reference")
    assert torch.ops.cllstr.ctc_loss.default not in log.ops


def test_reference_runs_without_the_native_library(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = importlib.import_module("cllstr.ops.ctc_loss")  # the package exports the function under the same name
    monkeypatch.setattr(mod, "_KERNELS", {"cpu": False, "cuda": False})
    logits, targets, il, tl = make(CASES[0], torch.float32)
    with OpLog() as log:
        got = ctc_loss(logits, targets, il, tl)
    assert all("cllstr" not in str(op) for op in log.ops)
    want = F.ctc_loss(F.log_softmax(logits, -1).transpose(0, 1), targets, il, tl, zero_infinity=True)
    torch.testing.assert_close(got, want)


def _args():
    logits, targets, il, tl = make(CASES[0], torch.float32)
    return dict(logits=logits, targets=targets, input_lengths=il, target_lengths=tl)


BAD = [
    ("rank", dict(logits=torch.zeros(3, 7)), ValueError, "logits must be 3-D"),
    ("dtype", dict(logits=torch.zeros(3, 7, 5, dtype=torch.int64)), TypeError, "logits must be float"),
    ("no_classes", dict(logits=torch.zeros(3, 7, 0)), ValueError, "no classes"),
    ("targets_rank", dict(targets=torch.zeros(3, 2, 2, dtype=torch.long)), ValueError, "targets must be 1-D"),
    ("targets_dtype", dict(targets=torch.zeros(6)), TypeError, "targets must be int64"),
    ("il_shape", dict(input_lengths=torch.tensor([7, 7])), ValueError, "input_lengths must be 1-D with B=3"),
    ("tl_dtype", dict(target_lengths=torch.tensor([2.0, 3.0, 1.0])), TypeError, "target_lengths must be int64"),
    ("il_over_T", dict(input_lengths=torch.tensor([7, 8, 6])), ValueError, r"input_lengths\[1\]=8"),
    ("il_negative", dict(input_lengths=torch.tensor([7, -1, 6])), ValueError, r"input_lengths\[1\]=-1"),
    ("tl_negative", dict(target_lengths=torch.tensor([2, -3, 1])), ValueError, r"target_lengths\[1\]=-3"),
    ("tl_past_targets", dict(target_lengths=torch.tensor([2, 3, 4])), ValueError, "target_lengths sum past"),
    ("target_is_blank", dict(targets=torch.tensor([1, 2, 0, 1, 2, 3])), ValueError, "targets of sample 1"),
    ("target_over_C", dict(targets=torch.tensor([1, 2, 3, 1, 2, 5])), ValueError, "targets of sample 2"),
]


#: Value checks (lengths, class ids) are the native kernel's; the reference leaves them to F.ctc_loss.
VALUE_CHECKS = {"il_over_T", "il_negative", "tl_negative", "tl_past_targets", "target_is_blank", "target_over_C"}
BAD_CASES = [pytest.param(*b, backend, id=f"{b[0]}-{backend}") for b in BAD for backend in ("native", "reference")
             if backend == "native" or b[0] not in VALUE_CHECKS]


@pytest.mark.parametrize(("name", "change", "exc", "match", "backend"), BAD_CASES)
def test_bad_input_names_the_argument(name, change, exc, match, backend) -> None:
    if backend == "native":
        require_kernel(OP, "cpu")
    args = _args() | change
    with pytest.raises(exc, match=match):
        ctc_loss(**args, backend=backend)


def test_blank_out_of_range() -> None:
    args = _args()
    with pytest.raises(ValueError, match="blank=5 is out of range"):
        ctc_loss(**args, blank=5)
    with pytest.raises(ValueError, match="reduction must be"):
        ctc_loss(**args, reduction="avg")


def test_trainer_ctc_loss_uses_the_fused_op_and_matches_the_reference() -> None:
    require_kernel(OP, "cpu")
    from cllstr.text.ctc import EncodedTargets
    from cllstr.train.ctc import CTCLoss

    logits, targets, _, tl = make(CASES[7], torch.bfloat16)
    enc = EncodedTargets(targets, tl, [2 * int(n) - 1 for n in tl])
    crit = CTCLoss()
    x = logits.detach().requires_grad_()
    with OpLog() as log:
        loss = crit(x, enc)
        loss.backward()
    assert torch.ops.cllstr.ctc_loss.default in log.ops
    want = F.ctc_loss(F.log_softmax(logits.float(), -1).transpose(0, 1), targets,
                      torch.full((CASES[7].B,), CASES[7].T), tl, zero_infinity=True)
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-5)
    assert crit.seen == CASES[7].B


def test_native_request_without_kernel_explains_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    from cllstr.ops import NativeUnavailableError

    native = importlib.import_module("cllstr.ops._native")
    monkeypatch.setattr(native, "HAS_NATIVE", False)
    monkeypatch.setattr(native, "NATIVE_ERROR", "ImportError: simulated")
    monkeypatch.setattr(importlib.import_module("cllstr.ops.ctc_loss"), "_KERNELS", {"cpu": False, "cuda": False})
    with pytest.raises(NativeUnavailableError, match="pip install --no-build-isolation -e ."):
        ctc_loss(**_args(), backend="native")
