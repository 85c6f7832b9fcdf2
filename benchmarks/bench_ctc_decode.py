"""Greedy CTC decoding throughput: native CPU kernel vs the torch-ops path vs a per-sample Python loop.

Shape of the issue: B=256, T=25, C=4680 (the MLT19 charset), fp32 logits. All three produce the decoded ids and the
per-sequence confidence (product of the per-step max probabilities), as reference STR code reports it.

    python benchmarks/bench_ctc_decode.py            # prints the ratios, measured in this run
    pytest benchmarks/bench_ctc_decode.py --benchmark-enable
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cllstr.ops import ctc_greedy_decode

B, T, C = 256, 25, 4680


def make_logits(b: int = B, t: int = T, c: int = C, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, c, generator=g)


def native(logits: torch.Tensor) -> list[list[int]]:
    tokens, lengths, conf = ctc_greedy_decode(logits, backend="native")
    return tokens, lengths, conf


def torch_ops(logits: torch.Tensor, blank: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Vectorised torch path: softmax + max for ids and confidence, then unique_consecutive per sample."""
    probs = logits.softmax(-1)
    pmax, ids = probs.max(-1)
    conf = pmax.prod(-1)
    out = []
    for row in ids:
        u = torch.unique_consecutive(row)
        out.append(u[u != blank])
    return out, conf


def python_loop(logits: torch.Tensor, blank: int = 0) -> tuple[list[list[int]], list[float]]:
    """What typical STR code does (deep-text-recognition-benchmark's demo + CTCLabelConverter.decode, the base of
    CLL-STR): softmax and max in torch, then per sample a Python loop indexing the id tensor step by step, and the
    confidence as the last element of the cumulative product of the step maxima."""
    preds_prob = logits.softmax(dim=2)
    preds_max_prob, preds_index = preds_prob.max(dim=2)
    lengths = [logits.shape[1]] * logits.shape[0]
    texts, confs = [], []
    for index, length in enumerate(lengths):
        t = preds_index[index, :]
        seq = []
        for i in range(length):
            if t[i] != blank and (not (i > 0 and t[i - 1] == t[i])):
                seq.append(int(t[i]))
        texts.append(seq)
        confs.append(float(preds_max_prob[index].cumprod(dim=0)[-1]))
    return texts, confs


def test_native(benchmark) -> None:
    x = make_logits()
    tokens, lengths, _ = benchmark(native, x)
    assert tokens.shape == (B, T)


def test_torch_ops(benchmark) -> None:
    x = make_logits()
    out, _ = benchmark(torch_ops, x)
    assert len(out) == B


def test_python_loop(benchmark) -> None:
    x = make_logits()
    out, _ = benchmark(python_loop, x)
    assert len(out) == B


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the three paths in rotating order (>= 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads of all paths")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the ratios are medians)")
    torch.set_num_threads(args.threads)
    x = make_logits()
    # Same answers before timing: the comparison is between equal work.
    tokens, lengths, conf = native(x)
    ref, ref_conf = python_loop(x)
    assert [tokens[b, : int(lengths[b])].tolist() for b in range(B)] == ref
    torch.testing.assert_close(conf, torch.tensor(ref_conf), rtol=1e-3, atol=0)
    ops_ids, ops_conf = torch_ops(x)
    assert [row.tolist() for row in ops_ids] == ref
    torch.testing.assert_close(ops_conf, torch.tensor(ref_conf), rtol=1e-3, atol=0)
    # plain_read: the fastest pass that touches every byte of the logits (a max over all of them), the bandwidth bar
    paths = {"native": native, "torch_ops": torch_ops, "python_loop": python_loop, "plain_read": torch.amax}
    for fn in paths.values():
        fn(x)
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            paths[name](x)
            times[name].append(time.perf_counter() - start)
        assert torch.get_num_threads() == args.threads
    print(f"ctc_greedy_decode B={B} T={T} C={C} fp32, {args.threads} threads (all paths), median of {args.rounds} "
          f"rotating rounds; outputs checked equal (ids exactly, confidence within 1e-3)")
    for name in names:
        print(f"  {name:12s} {B / statistics.median(times[name]):12.0f} seq/s")
    for other in ("python_loop", "torch_ops"):
        ratio = statistics.median(o / n for o, n in zip(times[other], times["native"], strict=True))
        print(f"  native vs {other + ':':12s} {ratio:.1f}x")
    gb = x.numel() * x.element_size() / 1e9
    frac = statistics.median(p / n for p, n in zip(times["plain_read"], times["native"], strict=True))
    print(f"  bytes/s: native {gb / statistics.median(times['native']):.2f} GB/s, plain read "
          f"{gb / statistics.median(times['plain_read']):.2f} GB/s -> native at {100 * frac:.0f}% of a plain read")


if __name__ == "__main__":
    main()
