"""CTC beam search throughput and agreement: native ``ctc_beam_search`` vs pyctcdecode vs fast-ctc-decode, and
greedy decoding vs a plain read of the same logits.

Shape of issue #16: B=256, T=25, C=4680 (the MLT19 charset), beam 10, on the same log-probabilities (computed once,
outside the timed region, for every decoder). The logits mimic a trained model: a peaked best path with blanks and
repeats, and in a third of the frames a runner-up class close behind, so the beam has decisions to make. Each
baseline is measured in this run, in rounds that alternate the decoders; the median of the rounds is reported.
One thread: torch.set_num_threads(1) for cllstr, the baselines in-process (both are single-threaded). All threads:
cllstr's at::parallel_for on every core, the baselines on a process pool of as many workers.

cllstr runs exact (no pruning: equal to trying every class at every step); pyctcdecode runs its defaults
(token_min_logp=-5, beam_prune_logp=-10). fast-ctc-decode is built for nanopore alphabets of 5 labels: at C=4680
its default beam_cut_threshold=0 asks for a 4.9 GB allocation per sequence and fails, so it runs with the largest
threshold it accepts (just below 1/C: 2e-4), on the first --fast-batch sequences only (about 2.3 GB and seconds per
sequence) and in one process (--fast-pool adds the all-threads run). Every top-1 disagreement is explained with the
exact probability of both labellings (torch's CTC loss in float64).

    pip install -e .[bench]
    python benchmarks/bench_ctc_beam.py [--rounds 3] [--batch 256]
    python benchmarks/bench_ctc_beam.py --device cuda    # CUDA kernels vs this host's CPU kernels (< 2 minutes)

``--checkpoint CKPT --lmdb DIR``: the same comparisons on the logits of a trained CTC checkpoint over the crops of
an LMDB (its own T and C; repeated to --batch sequences when there are fewer), instead of the made-up logits: a
trained model's rows are far more peaked, which changes how much each decoder's pruning saves.

``--device cuda``: the CUDA beam kernel (fp32 log-probabilities, fp32 logits, bf16 log-probabilities; B = 256 and
2048) against the CPU kernel on all threads of the host, with top-1 agreement and the largest score difference
against the CPU kernel on the same input, and CUDA greedy decoding against a plain read of the same bytes on the GPU.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from cllstr.ops import ctc_beam_search, ctc_greedy_decode, has_kernel

T, C, BEAM = 25, 4680, 10
LABELS = [""] + [chr(0x4E00 + i) for i in range(C - 1)]  # one character per class; blank first
INDEX = {ch: i for i, ch in enumerate(LABELS) if ch}


def make_logits(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, T, C, generator=g)
    ids = torch.randint(1, C, (b, T), generator=g)
    ids[torch.rand(b, T, generator=g) < 0.4] = 0
    rep = torch.rand(b, T, generator=g) < 0.3
    ids[:, 1:] = torch.where(rep[:, 1:], ids[:, :-1], ids[:, 1:])
    x.scatter_(2, ids[..., None], 9.0 + torch.rand(b, T, 1, generator=g))
    second = torch.randint(0, C, (b, T, 1), generator=g)
    close = 8.5 + torch.rand(b, T, 1, generator=g)
    x.scatter_(2, second, torch.where(torch.rand(b, T, 1, generator=g) < 0.33, close, x.gather(2, second)))
    return x


def set_shape(t: int, c: int) -> None:
    """Sequence length and classes of the inputs (the baselines' label tables follow C)."""
    global T, C, LABELS, INDEX, LABELS_FAST, FAST_CUT
    T, C = t, c
    LABELS = [""] + [chr(0x4E00 + i) for i in range(C - 1)]
    INDEX = {ch: i for i, ch in enumerate(LABELS) if ch}
    LABELS_FAST = ["N"] + LABELS[1:]
    FAST_CUT = 0.95 / C


def checkpoint_logits(checkpoint: str, lmdb: str, batch: int) -> torch.Tensor:
    """fp32 logits (batch, T, C) of a CTC checkpoint on the first crops of an LMDB (repeated when it has fewer)."""
    from cllstr.checkpoint import load_model
    from cllstr.data.loading.torch_backend import build_dataloader
    from cllstr.models import prediction_kind

    loaded = load_model(checkpoint)
    if prediction_kind(loaded.model) != "ctc":
        raise SystemExit(f"--checkpoint {checkpoint}: not a CTC model")
    loader = build_dataloader([lmdb], batch_size=64, charset=loaded.charset, **loaded.image)
    out, n = [], 0
    with torch.inference_mode():
        for b in loader:
            out.append(loaded.model(b.images).float())
            n += out[-1].shape[0]
            if n >= batch:
                break
    if not out:
        raise SystemExit(f"--lmdb {lmdb}: no samples")
    x = torch.cat(out)
    x = x.repeat((batch + x.shape[0] - 1) // x.shape[0], 1, 1)[:batch]
    print(f"logits of {checkpoint} on {min(n, batch)} crops of {lmdb}: T={x.shape[1]}, C={x.shape[2]}; mean "
          f"probability of the best class per frame {x.softmax(-1).amax(-1).mean():.3f}")
    return x.contiguous()


def cllstr_beam(lp: torch.Tensor) -> list[tuple[int, ...]]:
    tokens, lengths, _ = ctc_beam_search(lp, None, 0, BEAM, 1, backend="native")
    return [tuple(tokens[b, 0, : int(lengths[b, 0])].tolist()) for b in range(lp.shape[0])]


_DECODER = None


def _pyctc_decoder():
    global _DECODER
    if _DECODER is None:
        import logging

        from pyctcdecode import build_ctcdecoder

        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
        _DECODER = build_ctcdecoder(LABELS)
    return _DECODER


def _ids(text: str) -> tuple[int, ...]:
    return tuple(INDEX[ch] for ch in text)


def pyctc_one(lp: np.ndarray) -> tuple[int, ...]:
    return _ids(_pyctc_decoder().decode_beams(lp, beam_width=BEAM)[0][0])


def fast_one(p: np.ndarray) -> tuple[int, ...]:
    from fast_ctc_decode import beam_search

    return _ids(beam_search(p, LABELS_FAST, beam_size=BEAM, beam_cut_threshold=FAST_CUT)[0])


LABELS_FAST = ["N"] + LABELS[1:]  # fast-ctc-decode wants a non-empty blank label
FAST_CUT = 2e-4  # must be < 1/C


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def ctc_log_prob(lp: torch.Tensor, labels: tuple[int, ...]) -> float:
    loss = F.ctc_loss(lp[:, None].double(), torch.tensor([labels], dtype=torch.long).reshape(1, -1),
                      torch.tensor([lp.shape[0]]), torch.tensor([len(labels)]), reduction="none")
    return -float(loss)


def explain(name: str, lp: torch.Tensor, ours: list, theirs: list) -> None:
    diff = [b for b in range(len(ours)) if ours[b] != theirs[b]]
    print(f"  top-1 agreement with {name}: {len(ours) - len(diff)}/{len(ours)} "
          f"({100 * (len(ours) - len(diff)) / len(ours):.1f}%)")
    better = worse = tie = 0
    for b in diff:
        a, t = ctc_log_prob(lp[b], ours[b]), ctc_log_prob(lp[b], theirs[b])
        if abs(a - t) < 1e-9:
            tie += 1
        elif a > t:
            better += 1
        else:
            worse += 1
    if diff:
        print(f"    disagreements: {better} where cllstr's labelling is the more probable one (the baseline's "
              f"pruning or approximation lost it), {worse} where the baseline's is (cllstr's beam lost it), "
              f"{tie} ties")


_ITEMS: dict[str, list] = {}  # inputs of the pool workers, inherited through fork (no pickling of arrays)


def _call(job: tuple[Callable, str, int]) -> tuple[int, ...]:
    fn, key, i = job
    return fn(_ITEMS[key][i])


def _over(fn: Callable, key: str, pool, workers: int) -> Callable[[], list]:
    """Decode every item of ``_ITEMS[key]`` in this process, or on the pool (workers read their inputs from the
    memory they inherited; only indices and results cross the process boundary)."""
    items = _ITEMS[key]
    if pool is None:
        return lambda: [fn(x) for x in items]
    jobs = [(fn, key, i) for i in range(len(items))]
    return lambda: pool.map(_call, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def bench_beam(lp: torch.Tensor, rounds: int, threads: int, fast_batch: int, fast_pool: bool) -> None:
    B = lp.shape[0]
    _ITEMS["lp"] = [np.ascontiguousarray(lp[b].numpy()) for b in range(B)]
    _ITEMS["p"] = [np.ascontiguousarray(lp[b].exp().numpy()) for b in range(min(B, fast_batch))]
    p_np = _ITEMS["p"]
    _pyctc_decoder()
    for mode, n in (("1 thread", 1), (f"all threads ({threads})", threads)):
        torch.set_num_threads(n)
        print(f"\nbeam search B={B} T={T} C={C} beam={BEAM}, {mode}: torch.get_num_threads()={torch.get_num_threads()}"
              f", baseline workers={n}")
        pool = mp.get_context("fork").Pool(n) if n > 1 else None
        runs = {
            "cllstr": lambda: cllstr_beam(lp),
            "pyctcdecode": _over(pyctc_one, "lp", pool, n),
        }
        if n == 1 or fast_pool:
            runs["fast-ctc-decode"] = _over(fast_one, "p", pool, n)
        count = {"cllstr": B, "pyctcdecode": B, "fast-ctc-decode": len(p_np)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        outs: dict[str, object] = {}
        for _ in range(rounds):
            for name, fn in runs.items():
                dt, outs[name] = timed(fn)
                times[name].append(dt)
        if pool is not None:
            pool.close()
        rate = {k: count[k] / statistics.median(v) for k, v in times.items()}
        for name in runs:
            print(f"  {name:16s} {count[name]:4d} seq  {rate[name]:10.1f} seq/s  (rounds: "
                  f"{', '.join(f'{1000 * x:.0f}' for x in times[name])} ms)")
        for base in runs:
            if base != "cllstr":
                print(f"  cllstr vs {base}: {rate['cllstr'] / rate[base]:.1f}x (sequences per second)")
        if n == 1:
            explain("pyctcdecode", lp, outs["cllstr"], outs["pyctcdecode"])
            explain("fast-ctc-decode", lp, outs["cllstr"][: len(p_np)], outs["fast-ctc-decode"])


def bench_greedy(logits: torch.Tensor, rounds: int, threads: int) -> None:
    """Greedy decoding against a plain read (torch.sum) of the same bytes: of logits (the softmax normaliser needs
    an exp per entry), of log-probabilities (no exp), and of a batch small enough to stay in L2, where no memory
    read limits either side, so the greedy row shows what the exp arithmetic alone costs."""
    lp = logits.log_softmax(-1).contiguous()
    small = logits[:4].clone()
    lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    inputs = {"logits": (logits, False), "log-probabilities": (lp, True), "logits, 4 sequences (in L2)": (small, False)}
    for n in (1, threads):
        torch.set_num_threads(n)
        print(f"\ngreedy vs a plain read of the same fp32 bytes, torch.get_num_threads()={torch.get_num_threads()}")
        for what, (x, is_lp) in inputs.items():
            reps = max(1, logits.shape[0] // x.shape[0])
            lens = lengths[: x.shape[0]]

            def read(x=x, reps=reps) -> None:
                for _ in range(reps):
                    x.sum()

            def greedy(x=x, reps=reps, lens=lens, is_lp=is_lp) -> None:
                for _ in range(reps):
                    ctc_greedy_decode(x, lens, log_probs=is_lp, backend="native")

            times: dict[str, list[float]] = {"read": [], "greedy": []}
            for _ in range(max(rounds, 7)):
                times["read"].append(timed(read)[0])
                times["greedy"].append(timed(greedy)[0])
            med = {k: statistics.median(v) for k, v in times.items()}
            nbytes = reps * x.numel() * x.element_size()
            print(f"  {what:30s} plain read {nbytes / med['read'] / 1e9:6.2f} GB/s, greedy "
                  f"{nbytes / med['greedy'] / 1e9:6.2f} GB/s: {100 * med['read'] / med['greedy']:.0f}% of the read")


def _cuda_timed(fn: Callable[[], object], rounds: int) -> tuple[float, object]:
    out = fn()  # warm-up (first launch, workspace allocation)
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_cuda(logits: torch.Tensor, rounds: int, threads: int) -> None:
    """The CUDA kernels against the CPU kernels of the same build on the same inputs (issue #16's GPU figures)."""
    if not (torch.cuda.is_available() and has_kernel("ctc_beam_search", "cuda")):
        raise SystemExit("--device cuda needs a GPU and the CUDA kernels (make build on a machine with nvcc)")
    torch.set_num_threads(threads)
    print(f"\nCUDA: {torch.cuda.get_device_name()}; CPU baseline: the native CPU kernel on {threads} threads")
    for b in (logits.shape[0], 8 * logits.shape[0]):
        x = logits.repeat(b // logits.shape[0], 1, 1) if b > logits.shape[0] else logits
        lp = x.log_softmax(-1).contiguous()
        cpu_dt, (cpu_tok, cpu_len, cpu_score) = _cuda_timed(
            lambda lp=lp: ctc_beam_search(lp, None, 0, BEAM, 1, backend="native"), 1)
        cases = {"fp32 log-probs": (lp.cuda(), False), "fp32 logits": (x.cuda(), True),
                 "bf16 log-probs": (lp.to(torch.bfloat16).cuda(), False)}
        print(f"  beam {BEAM}, B={b}: CPU kernel {b / cpu_dt:9.0f} seq/s")
        for name, (inp, from_logits) in cases.items():
            dt, (tok, ln, score) = _cuda_timed(
                lambda inp=inp, fl=from_logits: ctc_beam_search(inp, None, 0, BEAM, 1, from_logits=fl,
                                                                backend="native"), rounds)
            same = sum(int(ln[i, 0]) == int(cpu_len[i, 0]) and bool((tok[i, 0].cpu() == cpu_tok[i, 0]).all())
                       for i in range(b))
            gap = (score.float().cpu() - cpu_score).abs().max().item()
            print(f"    {name:15s} {b / dt:9.0f} seq/s = {cpu_dt / dt:6.1f}x the CPU kernel; top-1 equal to the CPU "
                  f"kernel's on {same}/{b}, largest score difference {gap:.2e}")
    lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device="cuda")
    for name, x, is_lp in (("fp32 logits", logits.cuda(), False),
                           ("fp32 log-probs", logits.log_softmax(-1).cuda(), True),
                           ("bf16 logits", logits.to(torch.bfloat16).cuda(), False)):
        big = x.repeat(16, 1, 1)  # 16x the batch: a read long enough to time
        lens = lengths.repeat(16)
        read_dt, _ = _cuda_timed(lambda big=big: big.sum(), max(rounds, 10))
        dt, _ = _cuda_timed(lambda big=big, lens=lens, is_lp=is_lp: ctc_greedy_decode(big, lens, log_probs=is_lp,
                                                                                       backend="native"),
                            max(rounds, 10))
        nbytes = big.numel() * big.element_size()
        print(f"  greedy, {name:15s} B={big.shape[0]}: plain read {nbytes / read_dt / 1e9:7.1f} GB/s, greedy "
              f"{nbytes / dt / 1e9:7.1f} GB/s: {100 * read_dt / dt:.0f}% of the read")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--fast-batch", type=int, default=8, help="sequences given to fast-ctc-decode")
    ap.add_argument("--fast-pool", action="store_true", help="also run fast-ctc-decode on a pool (GBs per worker)")
    ap.add_argument("--skip-greedy", action="store_true")
    ap.add_argument("--checkpoint", help="a trained CTC checkpoint whose logits to decode (with --lmdb)")
    ap.add_argument("--lmdb", help="an LMDB of crops for --checkpoint")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: the CUDA kernels against the CPU kernels (no baselines)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if not has_kernel("ctc_beam_search", "cpu"):
        raise SystemExit("the native library is not built: pip install --no-build-isolation -e .")
    if bool(args.checkpoint) != bool(args.lmdb):
        raise SystemExit("--checkpoint and --lmdb go together")
    if args.checkpoint:
        logits = checkpoint_logits(args.checkpoint, args.lmdb, args.batch)
        set_shape(logits.shape[1], logits.shape[2])
    else:
        logits = make_logits(args.batch)
    if args.device == "cuda":
        bench_cuda(logits, args.rounds, args.threads)
        return
    lp = logits.log_softmax(-1).contiguous()
    bench_beam(lp, args.rounds, args.threads, args.fast_batch, args.fast_pool)
    if not args.skip_greedy:
        bench_greedy(logits, args.rounds, args.threads)


if __name__ == "__main__":
    main()
