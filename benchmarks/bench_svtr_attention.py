"""SVTR Local mixing: the native windowed op vs masked full attention (SDPA), and the svtr_tiny training step.

Shapes of svtr_tiny at 32x100, batch 128: the Local blocks are stage 1 (grid 8x25, 2 heads of d=32) and the first
three blocks of stage 2 (grid 4x25, 4 heads of d=32), window 7x11. q, k, v are views of one qkv projection, as in the
model. Each path is timed forward only and forward+backward; the training step (CTC + AdamW, drop path off) runs the
whole model with ``local_backend="native"`` and ``"reference"`` (today's masked path) from the same weights. Every
ratio is a median of per-round ratios against the baseline measured in the same run, all paths on the same pinned
number of threads (CPU) or the same GPU; outputs are checked equal before timing.

    python benchmarks/bench_svtr_attention.py                      # CPU, fp32
    python benchmarks/bench_svtr_attention.py --device cuda        # GPU, bf16 (autocast for the training step)
    pytest benchmarks/bench_svtr_attention.py --benchmark-enable
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from cllstr.models import create_model
from cllstr.ops import local_window_mask, svtr_local_attention

WINDOW = (7, 11)
STAGES = {"stage1 8x25 h2 d32": ((8, 25), 2, 32), "stage2 4x25 h4 d32": ((4, 25), 4, 32)}
NUM_CLASSES = 97


def make_qkv(batch: int, grid: tuple[int, int], heads: int, d: int, device: str, dtype: torch.dtype,
             grad: bool = False, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """q, k, v (B, heads, N, d) as views of one (B, N, 3, heads, d) projection, like SVTR's Mixer."""
    g = torch.Generator().manual_seed(seed)
    n = grid[0] * grid[1]
    qkv = torch.randn(batch, n, 3, heads, d, generator=g).to(device=device, dtype=dtype).requires_grad_(grad)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    return q, k, v


def attention_step(fn: Callable, q, k, v, grid, backward: bool) -> Callable[[], None]:
    def step() -> None:
        out = fn(q, k, v, grid, WINDOW)
        if backward:
            out.backward(torch.ones_like(out))

    return step


def native(q, k, v, grid, window):
    return svtr_local_attention(q, k, v, grid, window, backend="native")


def train_step(model: torch.nn.Module, device: str, batch: int, amp: bool) -> Callable[[], float]:
    """One CTC + AdamW step of ``model`` on a fixed random batch (32x100 RGB, labels of 1-10 characters)."""
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(batch, 3, 32, 100, generator=g) * 2 - 1).to(device)
    target_lengths = torch.randint(1, 11, (batch,), generator=g)
    targets = torch.randint(1, NUM_CLASSES, (int(target_lengths.sum()),), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step() -> float:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
            logits = model(images)
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)
        lengths = torch.full((batch,), log_probs.shape[0], dtype=torch.long)
        loss = F.ctc_loss(log_probs, targets.to(device), lengths, target_lengths, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def masked_sdpa(grid: tuple[int, int], device: str) -> Callable:
    """Today's Local mixing: full attention with the window as a boolean mask, built once on the device (as the
    model's buffer is)."""
    mask = local_window_mask(grid[0], grid[1], WINDOW[0], WINDOW[1], device)

    def fn(q, k, v, grid, window):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    return fn


def timed(paths: dict[str, Callable], rounds: int, device: str, threads: int, reps: int = 1) -> dict[str, list[float]]:
    """Run the paths in rotating order, ``rounds`` times each (``reps`` calls per timing); wall seconds per call."""
    names = list(paths)
    times: dict[str, list[float]] = {name: [] for name in names}
    for fn in paths.values():
        fn()
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(reps):
                paths[name]()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / reps)
        if device == "cpu":
            assert torch.get_num_threads() == threads
    return times


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    return statistics.median(s / f for s, f in zip(times[slow], times[fast], strict=True))


def bench_op(args: argparse.Namespace, dtype: torch.dtype) -> None:
    reps = 20 if args.device == "cuda" else 1  # a GPU call takes ~0.1 ms: time a batch of calls
    for label, (grid, heads, d) in STAGES.items():
        baseline = masked_sdpa(grid, args.device)
        q, k, v = make_qkv(args.batch, grid, heads, d, args.device, dtype)
        torch.testing.assert_close(native(q, k, v, grid, WINDOW).float(), baseline(q, k, v, grid, WINDOW).float(),
                                   rtol=2e-2 if dtype != torch.float32 else 2e-5,
                                   atol=2e-2 if dtype != torch.float32 else 2e-5)
        for backward in (False, True):
            q, k, v = make_qkv(args.batch, grid, heads, d, args.device, dtype, grad=backward)
            paths = {"native": attention_step(native, q, k, v, grid, backward),
                     "masked_sdpa": attention_step(baseline, q, k, v, grid, backward)}
            t = timed(paths, args.rounds, args.device, args.threads, reps)
            kind = "fwd+bwd" if backward else "fwd    "
            print(f"  {label} {kind}: native {statistics.median(t['native']) * 1e3:8.2f} ms, masked SDPA "
                  f"{statistics.median(t['masked_sdpa']) * 1e3:8.2f} ms, native vs masked SDPA: "
                  f"{ratio(t, 'masked_sdpa', 'native'):.2f}x")


def bench_train(args: argparse.Namespace) -> None:
    amp = args.device == "cuda"
    torch.manual_seed(0)
    ref = create_model("svtr_tiny", NUM_CLASSES, drop_path_rate=0.0, local_backend="reference").to(args.device)
    nat = create_model("svtr_tiny", NUM_CLASSES, drop_path_rate=0.0, local_backend="native").to(args.device)
    nat.load_state_dict(ref.state_dict())
    steps = {"native": train_step(nat, args.device, args.train_batch, amp),
             "reference": train_step(ref, args.device, args.train_batch, amp)}
    first = {name: fn() for name, fn in steps.items()}  # same weights, same batch: the same first loss
    tol = 2e-2 if amp else 1e-3  # bf16 autocast: the two attention paths round differently
    assert abs(first["native"] - first["reference"]) <= tol * abs(first["reference"]) + tol, first
    t = timed(steps, args.train_rounds, args.device, args.threads)
    print(f"  svtr_tiny train step b{args.train_batch} 32x100 CTC+AdamW{' bf16 autocast' if amp else ' fp32'}: "
          f"native {statistics.median(t['native']):.3f} s, reference {statistics.median(t['reference']):.3f} s, "
          f"native vs reference: {ratio(t, 'reference', 'native'):.2f}x (first losses {first['native']:.4f} / "
          f"{first['reference']:.4f})")


def test_native_stage1_fwd_bwd(benchmark) -> None:
    q, k, v = make_qkv(32, (8, 25), 2, 32, "cpu", torch.float32, grad=True)
    benchmark(attention_step(native, q, k, v, (8, 25), True))


def test_masked_sdpa_stage1_fwd_bwd(benchmark) -> None:
    q, k, v = make_qkv(32, (8, 25), 2, 32, "cpu", torch.float32, grad=True)
    benchmark(attention_step(masked_sdpa((8, 25), "cpu"), q, k, v, (8, 25), True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the op paths (>= 3, medians)")
    parser.add_argument("--train-rounds", type=int, default=3, help="rounds of the training steps (>= 3)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads (CPU)")
    parser.add_argument("--skip-train", action="store_true", help="only the op benchmark")
    args = parser.parse_args()
    if args.rounds < 3 or args.train_rounds < 3:
        parser.error("--rounds and --train-rounds must be at least 3 (the ratios are medians)")
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads (all paths)"
    print(f"svtr_local_attention window {WINDOW}, batch {args.batch}, {dtype}, {where}; median of {args.rounds} "
          f"rotating rounds; outputs checked equal to masked SDPA first")
    bench_op(args, dtype)
    if not args.skip_train:
        bench_train(args)


if __name__ == "__main__":
    main()
