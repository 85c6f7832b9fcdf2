"""The fused CTC loss (``cllstr.ops.ctc_loss``) against the reference trainers' loss, in the same run.

Baseline: what CLL-STR, deep-text-recognition-benchmark and PaddleOCR compute, ``F.log_softmax(logits.float())``,
transposed to ``(T, B, C)``, then ``F.ctc_loss`` (``zero_infinity=True``, mean reduction). Shapes of a recogniser's
head (default b128, T=26, 4680 classes, labels of 1-10 characters), logits in bf16 (as under the Trainer's autocast)
and fp32; forward alone and forward + backward; one thread and all threads. The losses and gradients are checked
equal before timing. Ratios are medians of per-round ratios.

    python benchmarks/bench_ctc_loss.py [--batch 128] [--frames 26] [--classes 4680] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from cllstr.ops import ctc_loss, reference_ctc_loss


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--frames", type=int, default=26)
    ap.add_argument("--classes", type=int, default=4680)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 11, (args.batch,), generator=g)
    targets = torch.randint(1, args.classes, (int(lengths.sum()),), generator=g)
    base = torch.randn(args.batch, args.frames, args.classes, generator=g) * 4
    threads = torch.get_num_threads()
    print(f"CTC loss, b{args.batch} T={args.frames} C={args.classes}: fused op vs log_softmax + F.ctc_loss "
          f"(median of {args.rounds} per-round ratios [range])")
    for dtype in (torch.bfloat16, torch.float32):
        x = base.to(dtype).requires_grad_()
        paths = {"fused": lambda x=x: ctc_loss(x, targets, None, lengths, backend="native"),
                 "reference": lambda x=x: reference_ctc_loss(x, targets, None, lengths)}
        got = {}
        for name, fn in paths.items():
            x.grad = None
            loss = fn()
            loss.backward()
            got[name] = (loss.detach(), x.grad.float())
        torch.testing.assert_close(got["fused"][0], got["reference"][0], rtol=1e-5, atol=1e-5)
        grad_err = (got["fused"][1] - got["reference"][1]).abs().max().item()
        for n in sorted({1, threads}):
            torch.set_num_threads(n)
            for mode in ("forward", "forward + backward"):
                def run(fn: Callable[[], torch.Tensor], mode: str = mode) -> None:
                    if mode == "forward":
                        with torch.no_grad():
                            fn()
                    else:
                        fn().backward()

                ratios, fused_ms = [], []
                for _ in range(args.rounds):
                    tf = timed(lambda p=paths, r=run: r(p["fused"]))
                    tr = timed(lambda p=paths, r=run: r(p["reference"]))
                    ratios.append(tr / tf)
                    fused_ms.append(tf * 1e3)
                print(f"  {str(dtype).removeprefix('torch.'):8s} {n} thread{'s' if n > 1 else ' '}  {mode:18s} "
                      f"{statistics.median(ratios):6.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]   "
                      f"fused {statistics.median(fused_ms):7.1f} ms")
        torch.set_num_threads(threads)
        print(f"  {str(dtype).removeprefix('torch.'):8s} same losses; largest gradient difference {grad_err:.1e}")


if __name__ == "__main__":
    main()
