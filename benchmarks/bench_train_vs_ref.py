"""Training step of cllstr's models against ku21fan/CLL-STR's own models, side by side in one process (issue #18).

Same random batch (b128, 32x100 RGB, labels of 1-10 characters over 4680 classes), CTC loss, AdamW and grad
clipping 5, on the same threads. CLL-STR runs its ``model.py`` as its ``train.py`` does (fp32, contiguous,
``log_softmax`` + ``torch.nn.CTCLoss``): ``None-SVTR-None-CTC`` against cllstr's ``svtr_tiny``,
``None-VGG-BiLSTM-CTC`` against ``crnn``. cllstr runs as its Trainer does on a CPU (``precision=auto``: bf16 autocast
on a CPU with native bf16, fp32 elsewhere, e.g. on an AVX2-only EPYC where oneDNN emulates bf16; channels_last, the
fused ``cllstr.ops.ctc_loss``), and again with the loss computed the reference's way (float32 copy, ``log_softmax``,
``F.ctc_loss``) so that the fused loss's gain is measured in the same run; ``--session6`` adds SVTR with the attention
of session 6 (torch's bf16 SDPA for Global mixing).

``--peak`` also measures what the step achieves against this CPU's limit: FLOPs per training image
(``FlopCounterMode``, forward + backward) times img/s, against the best GFLOP/s of a channels_last 3x3
convolution of crnn's own layer shapes (forward + both backward convolutions, at the Trainer's precision) measured
in the same run.

The reference checkout is fetched (``fetch github:ku21fan/CLL-STR``), never copied into this project.

    python benchmarks/bench_train_vs_ref.py --ref /work/ref/CLL-STR [--models svtr crnn] [--rounds 3] [--peak]
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
from cllstr.device import autocast, resolve_amp_dtype
from cllstr.models import create_model
from cllstr.ops import ctc_loss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity_import import reference_model  # noqa: E402

NUM_CLASSES = 4680
#: what cllstr's Trainer runs under on this CPU (precision 'auto'): bf16, or None (fp32) without native bf16
AMP = resolve_amp_dtype("auto", torch.device("cpu"))
PRECISION = "bf16" if AMP == torch.bfloat16 else "fp32"
PAIRS = {"svtr": ("None-SVTR-None-CTC", "svtr_tiny"), "crnn": ("None-VGG-BiLSTM-CTC", "crnn")}


def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(n, 3, 32, 100, generator=g) * 2 - 1
    target_lengths = torch.randint(1, 11, (n,), generator=g)
    targets = torch.randint(1, NUM_CLASSES, (int(target_lengths.sum()),), generator=g)
    return images, targets, target_lengths


def unfused_loss(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """The reference trainers' CTC loss: a float32 copy, ``log_softmax``, time-major ``F.ctc_loss``."""
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)
    lengths = torch.full((logits.shape[0],), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(log_probs, targets, lengths, target_lengths, zero_infinity=True)


def fused_loss(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """cllstr's Trainer loss (``cllstr.train.ctc.CTCLoss`` runs this op)."""
    return ctc_loss(logits, targets, None, target_lengths, zero_infinity=True)


def make_step(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
              forward: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor], fast: bool,
              loss_fn: Callable[..., torch.Tensor] = unfused_loss) -> Callable[[], float]:
    """One CTC + AdamW + clip step; ``fast``: the Trainer's precision on this CPU and channels_last, as cllstr's Trainer."""
    if fast:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> float:
        with autocast(torch.device("cpu"), AMP if fast else None):
            logits = forward(model, images)
        loss = loss_fn(logits, targets, target_lengths)
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


#: crnn's 3x3 convolutions at a 32x100 input: (in, out, H, W) of each layer.
CRNN_CONVS = [(3, 64, 32, 100), (64, 128, 16, 50), (128, 256, 8, 25), (256, 256, 8, 25), (256, 512, 4, 26),
              (512, 512, 4, 26)]


def conv_peak(batch: int, rounds: int) -> tuple[float, str]:
    """Best GFLOP/s of forward + input-gradient + weight-gradient of a channels_last 3x3 convolution (the Trainer's
    precision on this CPU) over
    crnn's layer shapes (the layer where oneDNN does best is the CPU's practical limit for this model)."""
    best, where = 0.0, ""
    for cin, cout, h, w in CRNN_CONVS[1:]:  # the 3-channel first layer is memory-bound, not a peak
        conv = torch.nn.Conv2d(cin, cout, 3, padding=1).to(memory_format=torch.channels_last)
        x = torch.randn(batch, cin, h, w).contiguous(memory_format=torch.channels_last).requires_grad_()

        def run(conv=conv, x=x) -> None:
            with autocast(torch.device("cpu"), AMP):
                y = conv(x)
            y.backward(torch.ones_like(y))

        run()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        flops = 3 * 2 * batch * cout * h * w * cin * 9
        gf = flops / statistics.median(times) / 1e9
        if gf > best:
            best, where = gf, f"{cin}->{cout} at {h}x{w}"
    return best, where


def train_flops_per_image(model: torch.nn.Module, n: int = 8) -> float:
    """Forward + backward FLOPs of one training image (``FlopCounterMode``, fp32 shapes; the step's arithmetic)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.train()
    x = torch.rand(n, 3, 32, 100)
    with FlopCounterMode(display=False) as counter:
        model(x).float().sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / n


def spread(times: dict[str, list[float]], num: str, den: str) -> str:
    """Median of the per-round ratios time(num) / time(den), with their range (this VM's noise)."""
    r = [a / b for a, b in zip(times[num], times[den], strict=True)]
    return f"{statistics.median(r):5.2f}x [{min(r):.2f}-{max(r):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, required=True, help="a ku21fan/CLL-STR checkout")
    ap.add_argument("--models", nargs="+", choices=sorted(PAIRS), default=["svtr", "crnn"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (this VM's per-round noise is ~10%%)")
    ap.add_argument("--iters", type=int, default=2, help="timed steps per path and round (after one warm-up)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--session6", action="store_true", help="svtr: also the attention of session 6")
    ap.add_argument("--peak", action="store_true", help="also GFLOP/s against a convolution peak of the same run")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads)
    images, targets, target_lengths = batch(args.batch)
    for key in args.models:
        arch, name = PAIRS[key]
        ref = reference_model(args.ref, arch, NUM_CLASSES)
        torch.manual_seed(0)
        ours = create_model(name, NUM_CLASSES)
        trainer = make_step(ours, images, targets, target_lengths, lambda m, x: m(x), True, fused_loss)
        steps = {f"CLL-STR {arch} fp32": make_step(ref, images, targets, target_lengths, reference_forward, False),
                 f"cllstr {name} (Trainer: {PRECISION}, channels_last)": trainer,
                 f"cllstr {name}, unfused CTC loss": make_step(ours, images, targets, target_lengths,
                                                               lambda m, x: m(x), True, unfused_loss)}
        if key == "svtr" and args.session6:
            steps[f"cllstr {name}, session 6 attention"] = session6_attention(trainer)
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
            print(f"  {k:52s} {args.batch / t:7.1f} img/s   {spread(times, base, k)} CLL-STR")
        names = list(med)
        print(f"  fused CTC loss vs unfused: {spread(times, names[2], names[1])}")
        if len(names) == 4:
            print(f"  this attention vs session 6's: {spread(times, names[3], names[1])}")
        if args.peak:
            torch.manual_seed(0)
            per_image = train_flops_per_image(create_model(name, NUM_CLASSES))
            achieved = per_image * args.batch / med[names[1]] / 1e9
            peak, where = conv_peak(args.batch, args.rounds)
            print(f"  {per_image / 1e9:.2f} GFLOP per training image: {achieved:.0f} GFLOP/s = {achieved / peak:.0%} "
                  f"of the {PRECISION} channels_last 3x3 convolution peak measured now ({peak:.0f} GFLOP/s, {where})")


if __name__ == "__main__":
    main()
