"""Parity of the native ``cllstr::svtr_local_attention`` kernels (forward and backward) with masked full attention."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import pytest
import torch

from cllstr.ops import (
    NativeUnavailableError,
    has_kernel,
    local_window_mask,
    reference_svtr_local_attention,
    svtr_local_attention,
)
from tests.common import OpLog, devices, require_kernel

OP = "svtr_local_attention"
_HAS_OP = hasattr(torch.ops.cllstr, OP)
NATIVE_FWD = torch.ops.cllstr.svtr_local_attention.default if _HAS_OP else None
NATIVE_BWD = torch.ops.cllstr.svtr_local_attention_backward.default if _HAS_OP else None


def run_native(device: str, q, k, v, grid, window, scale=None) -> torch.Tensor:
    """``svtr_local_attention(..., backend="native")``, asserting the native ``device`` kernel is what ran."""
    require_kernel(OP, device)
    assert has_kernel(OP, device)
    with OpLog() as log:
        out = svtr_local_attention(q, k, v, grid, window, scale, backend="native")
    assert log.ops == [NATIVE_FWD], f"expected only the native op to run, got {log.ops}"
    return out


@dataclass
class Case:
    name: str
    batch: int
    heads: int
    grid: tuple[int, int]
    window: tuple[int, int]
    d: int
    layout: str = "contiguous"  # "contiguous", "qkv" (SVTR's permuted qkv projection) or "strided_d" (d stride != 1)


CASES = [
    Case("svtr_stage1", 3, 2, (8, 25), (7, 11), 32, "qkv"),
    Case("svtr_stage2", 1, 4, (4, 25), (7, 11), 32, "qkv"),
    Case("stage3_grid", 2, 8, (2, 25), (7, 11), 32),
    Case("row_1xN", 3, 3, (1, 13), (7, 11), 8),
    Case("column_Nx1", 1, 2, (9, 1), (7, 11), 16),
    Case("small_3x5", 5, 1, (3, 5), (3, 3), 64),
    Case("window_larger_than_grid", 3, 5, (3, 5), (9, 13), 16),
    Case("window_1x1", 2, 2, (4, 6), (1, 1), 8),
    Case("tall_window", 1, 7, (8, 25), (15, 1), 8, "strided_d"),
    Case("single_token", 2, 1, (1, 1), (7, 11), 8),
    Case("empty_batch", 0, 2, (8, 25), (7, 11), 32),
    Case("d64_heads6", 1, 6, (4, 25), (7, 11), 64, "qkv"),
    Case("odd_d", 3, 2, (5, 7), (5, 3), 12, "strided_d"),
    # CUDA launch variants: a key window over 48 KiB of shared memory (opt-in size), and one too large for shared
    # memory at all (read from global memory).
    Case("d64_large_smem", 2, 2, (8, 25), (7, 11), 64, "qkv"),
    Case("d256_global_memory", 1, 2, (8, 25), (15, 51), 256),
]
CASE_IDS = [c.name for c in CASES]
GRADCHECK = (0, 3, 4, 6, 9, 12)  # stage shape, 1xN, Nx1, window larger than the grid, one token, odd d


def make_qkv(case: Case, device: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple:
    """q, k, v (B, heads, N, d) in the case's memory layout; scaled so that the softmax is far from uniform."""
    g = torch.Generator().manual_seed(seed)
    B, NH, (H, W), d = case.batch, case.heads, case.grid, case.d
    N = H * W
    if case.layout == "qkv":
        qkv = torch.randn(B, N, 3, NH, d, generator=g).mul_(1.5).to(device=device, dtype=dtype).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]
    out = []
    for _ in range(3):
        if case.layout == "strided_d":
            t = torch.randn(B, NH, d, N, generator=g).mul_(1.5).to(device=device, dtype=dtype).transpose(2, 3)
        else:
            t = torch.randn(B, NH, N, d, generator=g).mul_(1.5).to(device=device, dtype=dtype)
        out.append(t)
    return tuple(out)


def loop_attention(q, k, v, grid, window) -> torch.Tensor:
    """Independent oracle in plain Python: per query, gather the window's keys and softmax over them."""
    H, W = grid
    rh, rw = window[0] // 2, window[1] // 2
    out = torch.empty_like(q, dtype=torch.float64)
    for y in range(H):
        for x in range(W):
            keys = [r * W + c for r in range(max(0, y - rh), min(H, y + rh + 1))
                    for c in range(max(0, x - rw), min(W, x + rw + 1))]
            qi = q[:, :, y * W + x].double()
            s = torch.einsum("bhd,bhkd->bhk", qi, k[:, :, keys].double()) / math.sqrt(q.shape[-1])
            out[:, :, y * W + x] = torch.einsum("bhk,bhkd->bhd", s.softmax(-1), v[:, :, keys].double())
    return out


@pytest.mark.parametrize("case", CASES[:11], ids=CASE_IDS[:11])
def test_reference_matches_python_loop(case: Case) -> None:
    q, k, v = make_qkv(case, "cpu")
    out = reference_svtr_local_attention(q, k, v, case.grid, case.window)
    assert out.shape == q.shape and out.dtype == q.dtype
    torch.testing.assert_close(out.double(), loop_attention(q, k, v, case.grid, case.window), rtol=1e-5, atol=1e-5)


def test_local_window_mask_counts() -> None:
    mask = local_window_mask(8, 25, 7, 11)
    assert mask.shape == (200, 200) and torch.equal(mask, mask.T)
    assert int(mask[0].sum()) == 4 * 6 and int(mask[4 * 25 + 12].sum()) == 7 * 11
    mask[0, 0] = False  # a fresh tensor: the cached one must not change
    assert bool(local_window_mask(8, 25, 7, 11)[0, 0])


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_native_forward_matches_reference(device: str, case: Case) -> None:
    q, k, v = make_qkv(case, device)
    out = run_native(device, q, k, v, case.grid, case.window)
    assert out.shape == q.shape and out.dtype == q.dtype and out.device == q.device
    torch.testing.assert_close(out, reference_svtr_local_attention(q, k, v, case.grid, case.window),
                               rtol=2e-5, atol=2e-5)
    # The heads merge as a view: (B, heads, N, d) -> (B, N, heads * d) without a copy.
    merged = out.transpose(1, 2)
    assert merged.is_contiguous()


def _grads(fn, q, k, v, grad_out) -> tuple:
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = fn(q, k, v)
    out.backward(grad_out)
    return out.detach(), q.grad, k.grad, v.grad


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_native_gradients_match_reference(device: str, case: Case) -> None:
    require_kernel(OP, device)
    q, k, v = make_qkv(case, device)
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(7)).to(device)
    with OpLog() as log:
        got = _grads(lambda a, b, c: svtr_local_attention(a, b, c, case.grid, case.window, backend="native"),
                     q, k, v, grad_out)
    assert NATIVE_FWD in log.ops and NATIVE_BWD in log.ops
    want = _grads(lambda a, b, c: reference_svtr_local_attention(a, b, c, case.grid, case.window), q, k, v, grad_out)
    for name, a, b in zip(("out", "grad_q", "grad_k", "grad_v"), got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("case", [CASES[i] for i in GRADCHECK], ids=[CASE_IDS[i] for i in GRADCHECK])
def test_gradcheck_float64(device: str, case: Case) -> None:
    require_kernel(OP, device)
    small = Case(case.name, min(case.batch, 2), min(case.heads, 2), case.grid, case.window, min(case.d, 8),
                 case.layout)
    q, k, v = (t.detach().requires_grad_() for t in make_qkv(small, device, torch.float64))

    def fn(a, b, c):
        return svtr_local_attention(a, b, c, small.grid, small.window, backend="native")

    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(device: str, dtype: torch.dtype) -> None:
    """Error against a float32 reference at most 2x that of the same-precision PyTorch path (house style)."""
    require_kernel(OP, device)
    case = Case("lp", 3, 2, (8, 25), (7, 11), 32, "qkv")
    q, k, v = make_qkv(case, device, dtype)
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(3)).to(device=device, dtype=dtype)
    got = _grads(lambda a, b, c: svtr_local_attention(a, b, c, case.grid, case.window, backend="native"),
                 q, k, v, grad_out)
    same = _grads(lambda a, b, c: reference_svtr_local_attention(a, b, c, case.grid, case.window), q, k, v, grad_out)
    exact = _grads(lambda a, b, c: reference_svtr_local_attention(a, b, c, case.grid, case.window),
                   q.float(), k.float(), v.float(), grad_out.float())
    for name, a, s, e in zip(("out", "grad_q", "grad_k", "grad_v"), got, same, exact, strict=True):
        assert a.dtype == dtype, name
        err, ref_err = (a.float() - e).abs().max().item(), (s.float() - e).abs().max().item()
        assert err <= 2 * ref_err + 1e-3, f"{name}: kernel error {err} vs PyTorch {dtype} error {ref_err}"


@pytest.mark.parametrize("backend", ["reference", "native"])
@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        ({"q": torch.randn(2, 15, 8)}, ValueError, "q must be 4-D"),
        ({"k": torch.randn(2, 2, 15, 4)}, ValueError, "k must have the shape of q"),
        ({"v": torch.randn(2, 2, 14, 8)}, ValueError, "v must have the shape of q"),
        ({"k": torch.randn(2, 2, 15, 8).double()}, TypeError, "k must have the dtype of q"),
        ({"v": torch.randn(2, 2, 15, 8).half()}, TypeError, "v must have the dtype of q"),
        ({"q": torch.randint(0, 3, (2, 2, 15, 8)), "k": torch.zeros(2, 2, 15, 8, dtype=torch.long),
          "v": torch.zeros(2, 2, 15, 8, dtype=torch.long)}, TypeError, "q must be float32"),
        ({"grid": (3, 4)}, ValueError, r"grid \(3, 4\) has 12 tokens but q has N=15"),
        ({"grid": (0, 15)}, ValueError, "grid must be positive"),
        ({"grid": (15,)}, ValueError, "grid must be a pair"),
        ({"window": (4, 11)}, ValueError, "window must be odd"),
        ({"window": (7, 0)}, ValueError, "window must be odd"),
        ({"window": (-1, 3)}, ValueError, "window must be odd"),
        ({"q": torch.randn(2, 2, 15, 0), "k": torch.randn(2, 2, 15, 0), "v": torch.randn(2, 2, 15, 0)}, ValueError,
         "head dimension d == 0"),
    ],
)
def test_bad_input_raises_clear_error(change: dict, exc: type, match: str, backend: str) -> None:
    if backend == "native":
        require_kernel(OP, "cpu")
    args = {"q": torch.randn(2, 2, 15, 8), "k": torch.randn(2, 2, 15, 8), "v": torch.randn(2, 2, 15, 8),
            "grid": (3, 5), "window": (7, 11)}
    args.update(change)
    with pytest.raises(exc, match=match):
        svtr_local_attention(args["q"], args["k"], args["v"], args["grid"], args["window"], backend=backend)


def test_native_op_checks_its_arguments() -> None:
    """The C++ checks themselves (not the Python wrapper's): same messages for direct torch.ops calls."""
    require_kernel(OP, "cpu")
    q = torch.randn(1, 2, 15, 8)
    op = torch.ops.cllstr.svtr_local_attention
    with pytest.raises(ValueError, match="window must be odd"):
        op(q, q, q, [3, 5], [6, 11], 1.0)
    with pytest.raises(ValueError, match="has 12 tokens but q has N=15"):
        op(q, q, q, [3, 4], [7, 11], 1.0)
    with pytest.raises(TypeError, match="v must have the dtype of q"):
        op(q, q, q.double(), [3, 5], [7, 11], 1.0)
    out, lse = op(q, q, q, [3, 5], [7, 11], 1.0)
    bwd = torch.ops.cllstr.svtr_local_attention_backward
    with pytest.raises(ValueError, match="grad_out must have the shape of q"):
        bwd(out[:, :1], q, q, q, out, lse, [3, 5], [7, 11], 1.0)
    with pytest.raises(TypeError, match="lse must be Float"):
        bwd(out, q, q, q, out, lse.double(), [3, 5], [7, 11], 1.0)


@pytest.mark.cuda
def test_device_mismatch_names_the_argument() -> None:
    q = torch.randn(1, 2, 15, 8)
    with pytest.raises(ValueError, match="k is on cuda"):
        svtr_local_attention(q, q.cuda(), q, (3, 5), (7, 11))


def test_unknown_backend() -> None:
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match="backend"):
        svtr_local_attention(q, q, q, (1, 3), (1, 3), backend="fast")


def test_native_request_without_kernel_explains_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    import cllstr.ops._native as native

    monkeypatch.setattr(native, "HAS_NATIVE", False)
    monkeypatch.setattr(native, "NATIVE_ERROR", "ImportError: simulated")
    monkeypatch.setattr(importlib.import_module("cllstr.ops.svtr_local_attention"), "_KERNELS",
                        {"cpu": False, "cuda": False})
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(NativeUnavailableError, match="pip install --no-build-isolation -e ."):
        svtr_local_attention(q, q, q, (1, 3), (1, 3), backend="native")


def test_explicit_scale() -> None:
    require_kernel(OP, "cpu")
    case = CASES[5]
    q, k, v = make_qkv(case, "cpu")
    out = run_native("cpu", q, k, v, case.grid, case.window, scale=0.3)
    torch.testing.assert_close(out, reference_svtr_local_attention(q, k, v, case.grid, case.window, scale=0.3),
                               rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 3, 6, 10, 12)], ids=[CASE_IDS[i] for i in (0, 3, 6, 10, 12)])
def test_opcheck(case: Case) -> None:
    require_kernel(OP, "cpu")
    small = Case(case.name, min(case.batch, 2), min(case.heads, 2), case.grid, case.window, case.d, case.layout)
    q, k, v = (t.requires_grad_() for t in make_qkv(small, "cpu"))
    scale = 1.0 / math.sqrt(small.d)
    torch.library.opcheck(torch.ops.cllstr.svtr_local_attention.default, (q, k, v, list(small.grid),
                                                                          list(small.window), scale))
    out, lse = torch.ops.cllstr.svtr_local_attention(q, k, v, list(small.grid), list(small.window), scale)
    grad_out = torch.randn_like(out)
    torch.library.opcheck(torch.ops.cllstr.svtr_local_attention_backward.default,
                          (grad_out, q.detach(), k.detach(), v.detach(), out.detach(), lse, list(small.grid),
                           list(small.window), scale))


def test_torch_compile_traces_through_fake_kernel() -> None:
    require_kernel(OP, "cpu")
    case = CASES[2]
    q, k, v = make_qkv(case, "cpu")
    fn = torch.compile(lambda a, b, c: svtr_local_attention(a, b, c, case.grid, case.window), backend="eager",
                       fullgraph=True)
    torch.testing.assert_close(fn(q, k, v), reference_svtr_local_attention(q, k, v, case.grid, case.window),
                               rtol=2e-5, atol=2e-5)


def test_thread_count_does_not_change_result() -> None:
    require_kernel(OP, "cpu")
    case = CASES[0]
    q, k, v = make_qkv(case, "cpu")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = run_native("cpu", q, k, v, case.grid, case.window)
        torch.set_num_threads(max(2, before))
        b = run_native("cpu", q, k, v, case.grid, case.window)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:`torch.jit.trace` is deprecated")
def test_tracing_uses_the_reference() -> None:
    """Under torch.jit.trace (TorchScript, ONNX export) the masked-attention reference runs: it has an ONNX form."""
    case = CASES[5]
    q, k, v = make_qkv(case, "cpu")
    traced = torch.jit.trace(lambda a, b, c: svtr_local_attention(a, b, c, case.grid, case.window), (q, k, v),
                             check_trace=False)
    graph = str(traced.graph)
    assert "cllstr::" not in graph and "scaled_dot_product_attention" in graph
    torch.testing.assert_close(traced(q, k, v), reference_svtr_local_attention(q, k, v, case.grid, case.window))
