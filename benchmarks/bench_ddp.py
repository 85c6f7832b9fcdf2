"""Data-parallel scaling on this machine: one process vs N gloo ranks (CPU) or NCCL ranks (GPUs), same global batch.

Every configuration trains the same model on the same LMDB for the same steps with the same global batch, through
the real entry point (``cllstr train``, ``--nproc-per-node N`` for N ranks); the cores are split evenly (one process
with C threads vs N ranks with C/N threads each). It prints img/s per configuration, the ratio against one process
measured in the same run, and where a DDP step's time goes: the gradient all-reduce measured alone on the same
process group size and gradient volume, as a share of the step.

    python benchmarks/bench_ddp.py                          # CPU: 1 vs 2 gloo ranks on the machine's cores
    python benchmarks/bench_ddp.py --device cuda --ranks 4  # GPUs: 1 GPU vs 4 NCCL ranks (needs 4 GPUs)

With one rank cllstr does not wrap the model in DDP at all, so on a single GPU there is no DDP overhead to measure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cllstr.data.store.writer import LmdbWriter

ROOT = Path(__file__).resolve().parents[1]
MODEL_KWARGS = {"out_channels": 256, "hidden_size": 128, "batch_norm": True}  # the demo's CPU recipe


def make_data(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    words = ["cat", "door", "window", "street", "market", "house", "river", "light"]
    for split, count in (("training", n), ("validation", 32)):
        with LmdbWriter(root / split / "LAT") as w:
            for i in range(count):
                img = Image.fromarray(rng.integers(0, 256, (32, int(rng.integers(60, 160)), 3), dtype=np.uint8))
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=90)
                w.add(buf.getvalue(), words[i % len(words)])
    return root


def train(data: Path, out: Path, ranks: int, threads: int, args: argparse.Namespace, batch: int | None = None,
          sync_bn: bool = True) -> dict:
    cfg = {"model": "crnn", "model_kwargs": MODEL_KWARGS, "out_dir": str(out), "batch_size": batch or args.batch,
           "iterations": args.iters, "val_interval": 0, "save_interval": 0, "log_interval": args.iters,
           "threads": threads, "device": args.device, "sync_bn": sync_bn,
           "data": {"root": str(data), "select_data": "lang_L"}}
    path = out.with_suffix(".json")
    path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "cllstr.cli.main", "train", "--config", str(path), "--quiet"]
    if ranks > 1:
        cmd += ["--nproc-per-node", str(ranks)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"training with {ranks} rank(s) failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    summary = json.loads([line for line in res.stdout.splitlines() if line.startswith("{")][-1])
    return {"img_per_s": summary["img_per_s"], "step_s": summary["seconds"] / args.iters, "wall_s": wall}


ALLREDUCE = r'''
import os, sys, time, torch, torch.distributed as dist
n, iters, dev = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("nccl" if dev == "cuda" else "gloo")
device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if dev == "cuda" else torch.device("cpu")
x = torch.ones(n, device=device)
for _ in range(3):
    dist.all_reduce(x)
if dev == "cuda":
    torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(iters):
    dist.all_reduce(x)
if dev == "cuda":
    torch.cuda.synchronize()
if dist.get_rank() == 0:
    print((time.perf_counter() - t0) / iters)
dist.destroy_process_group()
'''


def allreduce_seconds(numel: int, ranks: int, threads: int, device: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(ALLREDUCE)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
                          f.name, str(numel), "20", device], env=env, capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, default=2, help="ranks of the DDP configuration")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="cores shared by the ranks")
    ap.add_argument("--batch", type=int, default=64, help="global batch")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds; medians are printed")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    from cllstr.models import count_parameters, create_model

    numel = count_parameters(create_model("crnn", 40, **MODEL_KWARGS))
    import torch

    if args.device == "cuda":
        if torch.cuda.device_count() < args.ranks or args.ranks < 2:
            print(f"bench_ddp: {torch.cuda.device_count()} GPU(s); DDP needs --ranks >= 2 GPUs (one rank trains "
                  "without DDP: no overhead to measure)")
            return
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "data", 512)
        per_rank = 1 if args.device == "cuda" else max(1, args.cores // args.ranks)
        # (label, ranks, threads, global batch, SyncBatchNorm); on CPU two more rows say where a DDP step's time goes:
        # one rank's share trained alone (no DDP: the compute of a rank) and the ranks without SyncBatchNorm
        configs = [("1 process", 1, 1 if args.device == "cuda" else args.cores, args.batch, True),
                   ("DDP", args.ranks, per_rank, args.batch, True)]
        if args.device == "cpu":
            configs += [("one rank's share alone", 1, per_rank, args.batch // args.ranks, True),
                        ("DDP without SyncBatchNorm", args.ranks, per_rank, args.batch, False)]
        results: dict[int, list[dict]] = {i: [] for i in range(len(configs))}
        for r in range(args.rounds):
            for i, (_, ranks, threads, batch, sync) in enumerate(configs):
                results[i].append(train(data, Path(tmp) / f"run{i}_{r}", ranks, threads, args, batch, sync))
        base = statistics.median(x["img_per_s"] for x in results[0])
        print(f"crnn ({numel / 1e6:.2f}M parameters), global batch {args.batch}, {args.iters} steps, {args.device}, "
              f"{args.rounds} alternated rounds (medians)")
        for i, (name, ranks, threads, batch, sync) in enumerate(configs):
            ips = statistics.median(x["img_per_s"] for x in results[i])
            step = statistics.median(x["step_s"] for x in results[i])
            label = f"{name}: {ranks} rank(s) x {threads} thread(s), batch {batch}{'' if sync else ', no SyncBN'}"
            print(f"  {label:<62} {ips:8.1f} img/s   {1000 * step:7.1f} ms/step   x{ips / base:.2f} vs 1 process")
        configs = [(c[1], c[2]) for c in configs[:2]]
        ranks, threads = configs[-1]
        ar = allreduce_seconds(numel, ranks, threads, args.device)
        step = statistics.median(x["step_s"] for x in results[1])
        print(f"  gradient all-reduce alone ({numel * 4 / 1e6:.1f} MB fp32, {ranks} ranks): {1000 * ar:.1f} ms "
              f"= {100 * ar / step:.0f}% of a DDP step")
        if args.device == "cpu":  # SyncBatchNorm: 2 small all-reduces per BatchNorm layer and step
            model = create_model("crnn", 40, **MODEL_KWARGS)
            layers = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
            small = allreduce_seconds(2 * 256 + 1, ranks, threads, args.device)
            print(f"  a SyncBatchNorm statistics all-reduce alone (513 floats): {1000 * small:.2f} ms; x {2 * layers} "
                  f"per step ({layers} BatchNorm layers) = {1000 * 2 * layers * small:.1f} ms")


if __name__ == "__main__":
    main()
