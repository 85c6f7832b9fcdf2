"""Where the time of one CPU training step goes, per op family (issue #18): svtr_tiny and crnn as cllstr's Trainer
runs them on a CPU (bf16 autocast, channels_last, the fused ``cllstr.ops.ctc_loss``) and, for the before/after
columns, with the loss computed the reference trainers' way (float32 copy, log_softmax, ``F.ctc_loss``); b128 32x100,
CTC + AdamW + clip. torch.profiler's self CPU time of every op is summed by
family; the step time is measured outside the profiler (its overhead is not in it).

    python benchmarks/profile_train_step.py [--steps 2] [--batch 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from cllstr.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_vs_ref import NUM_CLASSES, batch, fused_loss, make_step, unfused_loss  # noqa: E402

# First match wins: (family, substrings of the op name).
FAMILIES = [
    ("local attention (cllstr op)", ("svtr_local_attention",)),
    ("global attention (SDPA)", ("scaled_dot_product", "_efficient_attention", "_flash_attention")),
    ("GEMM (linear, bmm)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")),
    ("convolution", ("convolution", "mkldnn_conv")),
    ("LSTM", ("lstm", "rnn")),
    ("normalisation (LN, BN)", ("layer_norm", "batch_norm")),
    ("GELU / ReLU", ("gelu", "relu", "threshold")),
    ("CTC loss + log-softmax", ("ctc", "log_softmax")),
    ("optimizer + clip", ("Optimizer", "_foreach", "lerp", "addcdiv", "sqrt", "norm", "clamp")),
    ("copies / casts", ("copy_", "_to_copy", "contiguous", "clone")),
    ("elementwise (add, mul, ...)", ("aten::add", "aten::mul", "aten::sub", "aten::div", "aten::sum", "aten::fill")),
]


def family(name: str) -> str:
    low = name.lower()
    for fam, keys in FAMILIES:
        if any(k.lower() in low for k in keys):
            return fam
    return "other"


def profile_step(step, steps: int) -> tuple[float, dict[str, float]]:
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - t0) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    fams: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        fams[family(ev.key)] += ev.self_cpu_time_total / 1e3 / steps  # ms per step
    return wall, fams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    images, targets, lengths = batch(args.batch)
    runs = {}
    for name in ("svtr_tiny", "crnn"):
        torch.manual_seed(0)
        model = create_model(name, NUM_CLASSES)
        for tag, loss in (("unfused loss", unfused_loss), ("fused loss", fused_loss)):
            runs[f"{name}, {tag}"] = make_step(model, images, targets, lengths, lambda m, x: m(x), True, loss)
    results = {name: profile_step(fn, args.steps) for name, fn in runs.items()}
    names = list(results)
    order = [f for f, _ in FAMILIES] + ["other"]
    print(f"\nms per training step (self CPU time by op family, profiled; b{args.batch} 32x100, "
          f"{torch.get_num_threads()} threads, bf16 autocast + channels_last)\n")
    print("| op family | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for fam in order:
        vals = [results[n][1].get(fam, 0.0) for n in names]
        if max(vals) >= 0.5:
            print(f"| {fam} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    print("| **sum of profiled ops** | " + " | ".join(f"{sum(results[n][1].values()):.0f}" for n in names) + " |")
    print("| **step, unprofiled (ms)** | " + " | ".join(f"{1e3 * results[n][0]:.0f}" for n in names) + " |")


if __name__ == "__main__":
    main()
