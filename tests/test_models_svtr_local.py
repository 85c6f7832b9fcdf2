"""SVTR's Local mixing on the native windowed-attention op: same outputs, losses, weights and exports as masked
attention (the reference path)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import cllstr.models.svtr as svtr_module
from cllstr.models import create_model
from cllstr.ops import NativeUnavailableError
from tests.common import require_kernel

OP = "svtr_local_attention"
NUM_CLASSES = 37


@pytest.fixture
def native_cpu() -> None:
    require_kernel(OP, "cpu")


@pytest.fixture
def op_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """Counts the calls of the native op made by the SVTR Mixer."""
    calls: list = []
    real = svtr_module.svtr_local_attention

    def counting(*args, **kwargs):
        calls.append(kwargs.get("backend"))
        return real(*args, **kwargs)

    monkeypatch.setattr(svtr_module, "svtr_local_attention", counting)
    return calls


def _pair(name: str = "svtr_tiny", **kwargs) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    ref = create_model(name, NUM_CLASSES, drop_path_rate=0.0, local_backend="reference", **kwargs)
    nat = create_model(name, NUM_CLASSES, drop_path_rate=0.0, local_backend="native", **kwargs)
    nat.load_state_dict(ref.state_dict())
    return ref, nat


@pytest.mark.usefixtures("native_cpu")
@pytest.mark.parametrize("name", ["svtr_tiny", "svtr_small"])
def test_native_and_reference_models_agree(name: str, op_calls: list) -> None:
    ref, nat = _pair(name)
    assert list(ref.state_dict()) == list(nat.state_dict())  # no new or renamed weights
    x = torch.rand(3, 3, 32, 100) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(nat.eval()(x), ref.eval()(x), rtol=1e-4, atol=1e-4)
    num_local = 6 if name == "svtr_tiny" else 8
    assert op_calls == ["native"] * num_local


@pytest.mark.usefixtures("native_cpu")
def test_auto_backend_takes_the_native_kernel(op_calls: list) -> None:
    model = create_model("svtr_tiny", NUM_CLASSES).eval()
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 100))
    assert len(op_calls) == 6


def test_reference_backend_never_calls_the_op(op_calls: list) -> None:
    model = create_model("svtr_tiny", NUM_CLASSES, local_backend="reference").eval()
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 100))
    assert op_calls == []


def test_bad_backend_and_missing_native(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="local attention backend"):
        create_model("svtr_tiny", NUM_CLASSES, local_backend="fast")
    import importlib

    import cllstr.ops._native as native

    monkeypatch.setattr(native, "HAS_NATIVE", False)  # the library as if it had not loaded: no kernel table either
    monkeypatch.setattr(importlib.import_module("cllstr.ops.svtr_local_attention"), "_KERNELS",
                        {"cpu": False, "cuda": False})
    model = create_model("svtr_tiny", NUM_CLASSES, local_backend="native")
    with pytest.raises(NativeUnavailableError):
        model(torch.rand(1, 3, 32, 100))


def _train(model: torch.nn.Module, steps: int, seed: int = 0) -> tuple[list[float], dict[str, torch.Tensor]]:
    """A few AdamW steps of CTC training on fixed random images and labels: the loss of each step and the gradients
    of the first."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    model.train()
    losses, first_grads = [], {}
    for step in range(steps):
        images = torch.rand(4, 3, 32, 100, generator=g) * 2 - 1
        targets = torch.randint(1, NUM_CLASSES, (4, 6), generator=g)
        target_lengths = torch.randint(2, 7, (4,), generator=g)
        log_probs = model(images).log_softmax(-1).transpose(0, 1)  # (T, B, K)
        input_lengths = torch.full((4,), log_probs.shape[0], dtype=torch.long)
        loss = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            first_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        opt.step()
        losses.append(loss.item())
    return losses, first_grads


@pytest.mark.usefixtures("native_cpu")
def test_training_parity_svtr_tiny(op_calls: list) -> None:
    """Four AdamW steps of svtr_tiny with the op and with masked attention: the same losses at every step, and the
    same gradients at the first (weights are not compared: AdamW turns rounding noise in near-zero gradients, e.g.
    of the conv biases that feed a BatchNorm, into full-size steps)."""
    ref, nat = _pair()
    (ref_losses, ref_grads), (nat_losses, nat_grads) = _train(ref, 4), _train(nat, 4)
    assert len(op_calls) == 4 * 6
    assert ref_losses[-1] != ref_losses[0]  # the weights moved: later losses depend on the backward too
    torch.testing.assert_close(torch.tensor(nat_losses), torch.tensor(ref_losses), rtol=1e-4, atol=1e-5)
    assert list(nat_grads) == list(ref_grads)
    # Tolerance: 1e-3 of each tensor's largest gradient, plus 1e-6 of the model's (the BatchNorm-fed conv biases
    # have gradients of pure rounding noise, ~1e-7 of the largest).
    g_max = max(g.abs().max().item() for g in ref_grads.values())
    for name, want in ref_grads.items():
        torch.testing.assert_close(nat_grads[name], want, rtol=1e-3,
                                   atol=1e-3 * want.abs().max().item() + 1e-6 * g_max,
                                   msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.usefixtures("native_cpu")
def test_every_parameter_gets_a_gradient_through_the_op() -> None:
    model = create_model("svtr_tiny", NUM_CLASSES, drop_path_rate=0.0, local_backend="native")
    model(torch.rand(2, 3, 32, 100)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if ".mixer.qkv." in n)


@pytest.mark.usefixtures("native_cpu")
def test_torch_export_keeps_the_op() -> None:
    model = create_model("svtr_tiny", NUM_CLASSES, drop_path_rate=0.0).eval()
    x = torch.rand(2, 3, 32, 100) * 2 - 1
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(copy.deepcopy(model), (x,), dynamic_shapes={"images": {0: batch}})
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert any(OP in t for t in targets)
    y = torch.rand(5, 3, 32, 100) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(y), model(y), rtol=1e-5, atol=1e-5)


@pytest.mark.usefixtures("native_cpu")
@pytest.mark.parametrize("backend", ["auto", "native"])
def test_torch_compile_sees_one_graph_with_the_op_and_the_fused_loss(backend: str) -> None:
    """No graph break in a training forward (model + CTC loss) under bf16 autocast: the ops' kernel lookups are dict
    reads that Dynamo traces, not dispatcher queries."""
    from cllstr.device import autocast
    from cllstr.ops import ctc_loss

    model = create_model("svtr_tiny", NUM_CLASSES, local_backend=backend).train()
    targets, lengths = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([2, 3])

    def loss(x: torch.Tensor) -> torch.Tensor:
        with autocast(torch.device("cpu"), torch.bfloat16):
            logits = model(x)
        return ctc_loss(logits, targets, None, lengths, backend=backend)

    explained = torch._dynamo.explain(loss)(torch.rand(2, 3, 32, 100))
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    ops = {str(n.target) for g in explained.graphs for n in g.graph.nodes if n.op == "call_function"}
    assert any(OP in t for t in ops) and any("ctc_loss" in t for t in ops)


@pytest.mark.usefixtures("native_cpu")
def test_tracing_exports_masked_attention() -> None:
    """TorchScript tracing (the path of ONNX export) records masked attention, which ONNX can express."""
    model = create_model("svtr_tiny", NUM_CLASSES, drop_path_rate=0.0).eval()
    x = torch.rand(2, 3, 32, 100) * 2 - 1
    with torch.no_grad():
        traced = torch.jit.trace(model, (x,), check_trace=False)
        assert "cllstr::" not in str(traced.inlined_graph)
        torch.testing.assert_close(traced(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("local", [(7, 11), None])
@pytest.mark.parametrize("grid", [(2, 25), (4, 25)])  # 50 tokens: the short global path (bf16 GEMMs); 100: float32
def test_cpu_bf16_attention_paths_match_plain_attention(local, grid) -> None:
    """Under CPU bf16 autocast the Mixer leaves torch's bf16 SDPA (slow there) for float32 attention or bf16 GEMMs
    around a float32 softmax: output and gradients agree with a float64 evaluation of the same weights within bf16
    error, and no worse than the plain bf16 SDPA path's."""
    torch.manual_seed(0)
    mixer = svtr_module.Mixer(64, 4, grid, local, backend="reference")
    x = torch.randn(3, grid[0] * grid[1], 64)

    def run(fast: bool, dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
        m = copy.deepcopy(mixer)
        xi = x.clone().requires_grad_()
        if dtype is torch.float64:
            m, xi = m.double(), x.double().clone().requires_grad_()
        orig = svtr_module._cpu_low_precision
        if not fast:
            svtr_module._cpu_low_precision = lambda q: False
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is None):
                y = m(xi)
        finally:
            svtr_module._cpu_low_precision = orig
        y.float().square().sum().backward()
        return y.detach().double(), xi.grad.double()

    exact_y, exact_g = run(True, torch.float64)
    fast_y, fast_g = run(True, None)
    plain_y, plain_g = run(False, None)
    for fast, plain, exact in ((fast_y, plain_y, exact_y), (fast_g, plain_g, exact_g)):
        err_fast = (fast - exact).abs().max().item()
        err_plain = (plain - exact).abs().max().item()
        assert err_fast <= 2 * err_plain + 1e-6, (err_fast, err_plain)
        assert err_fast <= 0.05 * exact.abs().max().item()
