"""Training and inference throughput of cllstr's fast path vs a plain fp32 loop, measured in the same run.

Baseline ("plain"): the reference recipe as in CLL-STR ``train.py`` — fp32, contiguous tensors, a per-sample PIL loader
(decode, RGB, bicubic resize, ``ToTensor`` + ``Normalize(0.5, 0.5)``), ``CTCLoss(zero_infinity=True)``, AdamW +
OneCycle, grad clipping 5 — on the same model with the same initial weights. Fast: cllstr's
:class:`~cllstr.train.engine.Trainer` step (bf16 autocast on CPU, channels_last) fed by
``cllstr.data.loading.torch_backend.build_dataloader``. Inference compares fp32 forward + Python greedy decoding with
cllstr's autocast forward + native greedy decode. (CLL-STR's own model code is not run: the baseline is the same cllstr
model in the reference's fp32 recipe.)

Fair by construction: both paths run on the same pinned thread count (printed; the Trainer is given the same count),
on batches of the same size from the same LMDB; before timing, the script checks that they do the same work — the
two loaders' images agree within 1e-6, the first-step losses on one batch with the same weights agree within 5%
(bf16 vs fp32), and Python and native greedy decoding give identical strings on the same fp32 logits. Timed rounds
alternate the order of the two paths; each round gives a ratio and the script prints the median (at least 3 rounds).

Usage: ``python benchmarks/bench_train.py --models svtr_tiny crnn --iters 4 --rounds 3 --batch-size 128``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from cllstr.data.loading.torch_backend import build_dataloader
from cllstr.data.store.reader import LmdbReader
from cllstr.data.store.writer import LmdbWriter
from cllstr.decoding.ctc import decode_logits
from cllstr.decoding.heads import forward_logits
from cllstr.device import autocast
from cllstr.models import create_model
from cllstr.text.charset import Charset
from cllstr.text.ctc import encode_targets
from cllstr.train.config import TrainConfig
from cllstr.train.engine import Trainer

WARMUP = 2
LOSS_RTOL = 0.05  # bf16 autocast vs fp32: first-step CTC loss on the same batch and weights
WORDS = ["market", "Station", "OPEN", "coffee", "street", "Hotel", "parking", "exit", "bakery", "school", "bank",
         "pharmacy", "museum", "garden", "library", "theatre"]


def make_lmdb(path: Path, n: int) -> list[str]:
    """Write ``n`` rendered word crops (about 100x32 PNGs) to an LMDB; returns the labels."""
    rng = random.Random(0)
    font = ImageFont.load_default(size=20)
    labels = []
    with LmdbWriter(path) as w:
        for i in range(n):
            word = rng.choice(WORDS) + str(i % 10)
            img = Image.new("RGB", (12 * len(word) + 8, 32), tuple(rng.randint(140, 255) for _ in range(3)))
            ImageDraw.Draw(img).text((4, 4), word, fill=(0, 0, 0), font=font)
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            w.add(buf.getvalue(), word)
            labels.append(word)
    return labels


class PlainLmdbDataset(torch.utils.data.Dataset):
    """The reference-style loader: one PIL decode + resize + ToTensor/Normalize per sample."""

    def __init__(self, path: Path) -> None:
        self.reader = LmdbReader(path)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        rec = self.reader[i]
        label = rec.label
        img = Image.open(io.BytesIO(rec.image)).convert("RGB").resize((100, 32), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - 0.5) / 0.5, label


def plain_collate(samples: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
    return torch.stack([s[0] for s in samples]), [s[1] for s in samples]


def python_greedy(logits: torch.Tensor, charset: Charset) -> list[str]:
    """The reference CTCLabelConverter.decode: arg-max, then a Python loop merging repeats and dropping blanks."""
    idx = logits.argmax(-1)
    out = []
    for row in idx.tolist():
        out.append("".join(charset.tokens[c - 1] for j, c in enumerate(row) if c != 0 and (j == 0 or row[j - 1] != c)))
    return out


def cycle(loader) -> Iterator:
    """Batches of ``loader`` forever (a new epoch when one ends)."""
    while True:
        yield from loader


class Plain:
    """The baseline: fp32 model, reference-style loader, CTCLoss, AdamW + OneCycle, clipping."""

    def __init__(self, model_name: str, charset: Charset, path: Path, bs: int) -> None:
        torch.manual_seed(0)
        self.charset = charset
        self.model = create_model(model_name, charset.num_classes)
        self.dataset = PlainLmdbDataset(path)
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=bs, shuffle=True, drop_last=True,
                                             collate_fn=plain_collate, generator=torch.Generator().manual_seed(0))
        self.batches = cycle(loader)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=1e-3, total_steps=10_000, div_factor=20,
                                                         final_div_factor=1000, cycle_momentum=False)
        self.crit = torch.nn.CTCLoss(zero_infinity=True)

    def loss(self, images: torch.Tensor, labels: list[str]) -> torch.Tensor:
        ids = [self.charset.encode(lb, on_unknown="skip") for lb in labels]
        targets = torch.zeros(len(ids), 25, dtype=torch.long)
        for r, row in enumerate(ids):
            targets[r, : len(row)] = torch.tensor(row)
        lengths = torch.tensor([len(r) for r in ids], dtype=torch.int32)
        preds = self.model(images)
        sizes = torch.full((preds.size(0),), preds.size(1), dtype=torch.int32)
        return self.crit(preds.log_softmax(2).permute(1, 0, 2), targets, sizes, lengths)

    def step(self) -> int:
        images, labels = next(self.batches)
        loss = self.loss(images, labels)
        self.model.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5)
        self.opt.step()
        self.sched.step()
        return images.shape[0]

    def infer(self, images: torch.Tensor) -> list[str]:
        with torch.no_grad():
            return python_greedy(self.model(images), self.charset)


def make_fast(model_name: str, charset: Charset, root: Path, bs: int, workers: int, threads: int,
              compile_model: bool) -> Trainer:
    cfg = TrainConfig(model=model_name, batch_size=bs, iterations=10_000, val_interval=0, threads=threads,
                      compile=compile_model, out_dir=str(root / f"run_{model_name}"))
    cfg.data.workers = workers
    loader = build_dataloader([root / "bench"], None, batch_size=bs, rgb=True, charset=charset, workers=workers,
                              drop_last=True)
    return Trainer(cfg, charset, loader, quiet=True)


def fast_step(trainer: Trainer) -> int:
    batch = next(trainer.stream)
    trainer.train_step(batch)
    return len(batch.labels)


def fast_infer(trainer: Trainer, images: torch.Tensor) -> list[str]:
    logits = forward_logits(trainer.model, images, trainer.device, trainer.amp_dtype, trainer.cfg.channels_last)
    return decode_logits(logits, trainer.charset)[0]


def check_same_work(plain: Plain, fast: Trainer, root: Path, bs: int) -> dict[str, float]:
    """Same inputs, same weights, same decoding: raise if the two paths do different work."""
    fast.model.load_state_dict(plain.model.state_dict())  # the same initial weights
    ref_images = torch.stack([plain.dataset[i][0] for i in range(bs)])
    labels = [plain.dataset[i][1] for i in range(bs)]
    ours = next(iter(build_dataloader([root / "bench"], None, batch_size=bs, rgb=True, shuffle=False)))
    image_diff = (ours.images - ref_images).abs().max().item()
    if image_diff > 1e-6 or ours.labels != labels:
        raise SystemExit(f"the loaders disagree: max image difference {image_diff:.2g}")
    with torch.no_grad():
        plain_loss = float(plain.loss(ref_images, labels))
        enc = encode_targets(fast.charset, labels)
        images = ref_images.contiguous(memory_format=torch.channels_last) if fast.cfg.channels_last else ref_images
        with autocast(fast.device, fast.amp_dtype):
            logits = fast.model(images)
        fast_loss = float(fast.criterion(logits, enc))
        fp32_logits = plain.model(ref_images)
    rel = abs(fast_loss - plain_loss) / abs(plain_loss)
    if rel > LOSS_RTOL:
        raise SystemExit(f"first-step losses differ by {rel:.1%} (plain {plain_loss:.4f}, cllstr {fast_loss:.4f})")
    if python_greedy(fp32_logits, plain.charset) != decode_logits(fp32_logits, fast.charset)[0]:
        raise SystemExit("native greedy decoding differs from the Python loop on the same logits")
    same = sum(a == b for a, b in zip(plain.infer(ref_images), fast_infer(fast, ref_images), strict=True)) / bs
    return {"image_diff": image_diff, "loss_rel_diff": rel, "same_predictions_bf16_vs_fp32": same}


def timed(fn: Callable[[], int], iters: int, threads: int) -> float:
    """Images/s of ``iters`` calls of ``fn`` (each returns its batch size), on ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    n = sum(fn() for _ in range(iters))
    seconds = time.perf_counter() - t0
    if torch.get_num_threads() != threads:
        raise SystemExit(f"the thread count changed during the measurement ({torch.get_num_threads()} != {threads})")
    return n / seconds


def alternate(plain_fn: Callable[[], int], fast_fn: Callable[[], int], iters: int, rounds: int,
              threads: int) -> dict[str, float]:
    """Median img/s of each path and median per-round ratio over ``rounds`` rounds of alternating order."""
    per = {"plain": [], "fast": []}
    ratios = []
    for r in range(rounds):
        order = [("plain", plain_fn), ("fast", fast_fn)] if r % 2 == 0 else [("fast", fast_fn), ("plain", plain_fn)]
        ips = {name: timed(fn, iters, threads) for name, fn in order}
        per["plain"].append(ips["plain"])
        per["fast"].append(ips["fast"])
        ratios.append(ips["fast"] / ips["plain"])
    return {"plain": statistics.median(per["plain"]), "fast": statistics.median(per["fast"]),
            "ratio": statistics.median(ratios), "ratios": ratios}


def bench_model(name: str, charset: Charset, root: Path, args: argparse.Namespace) -> dict:
    """Check that both paths do the same work, then time training and inference in alternating rounds."""
    plain = Plain(name, charset, root / "bench", args.batch_size)
    fast = make_fast(name, charset, root, args.batch_size, args.workers, args.threads, args.compile)
    checks = check_same_work(plain, fast, root, args.batch_size)
    plain.model.train()
    fast.model.train()
    for _ in range(WARMUP):
        plain.step()
        fast_step(fast)
    train = alternate(plain.step, lambda: fast_step(fast), args.iters, args.rounds, args.threads)
    plain.model.eval()
    fast.model.eval()
    images = next(plain.batches)[0]
    plain.infer(images)
    fast_infer(fast, images)
    infer = alternate(lambda: len(plain.infer(images)), lambda: len(fast_infer(fast, images)), args.iters,
                      args.rounds, args.threads)
    print(f"{name:10s} train img/s: plain fp32 {train['plain']:7.1f} | cllstr {train['fast']:7.1f} | "
          f"x{train['ratio']:.2f} (median of {args.rounds}: {', '.join(f'{r:.2f}' for r in train['ratios'])})",
          flush=True)
    print(f"{'':10s} infer img/s: plain fp32 {infer['plain']:7.1f} | cllstr {infer['fast']:7.1f} | "
          f"x{infer['ratio']:.2f} (median of {args.rounds}) | same work: images within {checks['image_diff']:.1g}, "
          f"loss within {checks['loss_rel_diff']:.1%}, {checks['same_predictions_bf16_vs_fp32']:.0%} identical "
          f"bf16/fp32 predictions", flush=True)
    return {"threads": args.threads, "checks": checks, "train_img_s": train, "infer_img_s": infer}


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["svtr_tiny", "crnn"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=4, help="timed iterations per path and round (after 2 warm-ups)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median ratio is printed)")
    ap.add_argument("--threads", type=int, default=cores, help="intra-op threads of both paths (default: the cores)")
    ap.add_argument("--workers", type=int, default=0, help="cllstr loader workers for the fast path")
    ap.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    if args.rounds < 3:
        ap.error("--rounds must be at least 3 (the ratio is a median)")
    torch.set_num_threads(args.threads)
    print(f"threads: {torch.get_num_threads()} (both paths) | batch {args.batch_size} | {args.iters} iterations x "
          f"{args.rounds} alternating rounds", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        labels = make_lmdb(root / "bench", args.batch_size * 8)
        charset = Charset.from_labels(labels)
        for name in args.models:
            results[name] = bench_model(name, charset, root, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
