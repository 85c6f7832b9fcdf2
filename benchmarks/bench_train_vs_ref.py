"""Training step of cllstr's models against ku21fan/CLL-STR's own models, side by side in one process (issue #18).

Same random batch (b128, 32x100 RGB, labels of 1-10 characters over 4680 classes), CTC loss, AdamW and grad
clipping 5, on the same threads. CLL-STR runs its ``model.py`` as its ``train.py`` does (fp32, contiguous):
``None-SVTR-None-CTC`` against cllstr's ``svtr_tiny``, ``None-VGG-BiLSTM-CTC`` against ``crnn``. cllstr runs as its
Trainer does on a CPU (bf16 autocast, channels_last), and for SVTR also with the attention of session 6 (torch's bf16
SDPA for Global mixing; ``--no-session6`` skips it) so that the gain of this round is measured in the same run. The
reference checkout is fetched (``fetch github:ku21fan/CLL-STR``), never copied into this project.

    python benchmarks/bench_train_vs_ref.py --ref /work/ref/CLL-STR [--models svtr crnn] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import cllstr.models.svtr as svtr_module
from cllstr.device import autocast
from cllstr.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity_import import reference_model  # noqa: E402

NUM_CLASSES = 4680
PAIRS = {"svtr": ("None-SVTR-None-CTC", "svtr_tiny"), "crnn": ("None-VGG-BiLSTM-CTC", "crnn")}


def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(n, 3, 32, 100, generator=g) * 2 - 1
    target_lengths = torch.randint(1, 11, (n,), generator=g)
    targets = torch.randint(1, NUM_CLASSES, (int(target_lengths.sum()),), generator=g)
    return images, targets, target_lengths


def make_step(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
              forward: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor], fast: bool) -> Callable[[], float]:
    """One CTC + AdamW + clip step; ``fast``: bf16 autocast and channels_last, as cllstr's Trainer on a CPU."""
    if fast:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> float:
        with autocast(torch.device("cpu"), torch.bfloat16 if fast else None):
            logits = forward(model, images)
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)
        lengths = torch.full((images.shape[0],), log_probs.shape[0], dtype=torch.long)
        loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.detach().item()

    return step


def reference_forward(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return model(images, None)


def session6_attention(step: Callable[[], float]) -> Callable[[], float]:
    """The step with session 6's CPU attention (bf16 SDPA everywhere under autocast)."""
    def run() -> float:
        orig = svtr_module._cpu_low_precision
        svtr_module._cpu_low_precision = lambda q: False
        try:
            return step()
        finally:
            svtr_module._cpu_low_precision = orig
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, required=True, help="a ku21fan/CLL-STR checkout")
    ap.add_argument("--models", nargs="+", choices=sorted(PAIRS), default=["svtr", "crnn"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=2, help="timed steps per path and round (after one warm-up)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--no-session6", action="store_true")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads)
    images, targets, target_lengths = batch(args.batch)
    for key in args.models:
        arch, name = PAIRS[key]
        ref = reference_model(args.ref, arch, NUM_CLASSES)
        torch.manual_seed(0)
        ours = create_model(name, NUM_CLASSES)
        steps = {f"CLL-STR {arch} fp32": make_step(ref, images, targets, target_lengths, reference_forward, False),
                 f"cllstr {name} (Trainer: bf16, channels_last)": make_step(ours, images, targets, target_lengths,
                                                                           lambda m, x: m(x), True)}
        if key == "svtr" and not args.no_session6:
            steps[f"cllstr {name}, session 6 attention"] = session6_attention(list(steps.values())[1])
        times: dict[str, list[float]] = {k: [] for k in steps}
        for fn in steps.values():
            fn()
        for _ in range(args.rounds):
            for k, fn in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    fn()
                times[k].append((time.perf_counter() - t0) / args.iters)
        med = {k: statistics.median(v) for k, v in times.items()}
        base = next(iter(med))
        print(f"\n{key}: b{args.batch} 32x100 CTC + AdamW + clip, {args.threads} threads, median of {args.rounds} "
              f"rounds x {args.iters} steps")
        for k, t in med.items():
            print(f"  {k:52s} {args.batch / t:7.1f} img/s   {med[base] / t:5.2f}x CLL-STR")
        if len(med) == 3:
            k6, kn = list(med)[2], list(med)[1]
            print(f"  this round's attention vs session 6's: {med[k6] / med[kn]:.2f}x")


if __name__ == "__main__":
    main()
