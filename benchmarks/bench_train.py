"""Training and inference throughput of cllstr's fast path vs a plain fp32 loop, measured in the same run.

Baseline ("plain"): the reference recipe as in CLL-STR ``train.py`` — fp32, contiguous tensors, a per-sample PIL
loader (decode, RGB, bicubic resize, ``ToTensor`` + ``Normalize(0.5, 0.5)``), ``CTCLoss(zero_infinity=True)``,
AdamW + OneCycle, grad clipping 5 — on the same model. Fast: cllstr's :class:`~cllstr.train.engine.Trainer` step
(bf16 autocast on CPU, channels_last, threads pinned to the cores) fed by ``cllstr.data.loader.build_dataloader``.
Inference compares fp32 forward + Python greedy decoding with cllstr's autocast forward + native greedy decode.

Both read the same synthetic LMDB (rendered words). The reference code measured on a 2-core CPU of this kind gives
SVTR 64-67 img/s and CRNN 54-58 img/s for training (figures quoted in the project issue); the script prints the ratio
to the midpoints too. Other processes sharing the CPU make the figures noisy: compare ratios from one run.

Usage: ``python benchmarks/bench_train.py --models svtr_tiny crnn --iters 4 --batch-size 128``
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from cllstr.data.lmdb_store import LmdbReader, LmdbWriter
from cllstr.data.loader import build_dataloader
from cllstr.eval.decode import decode_logits
from cllstr.eval.evaluate import forward_logits
from cllstr.models import create_model
from cllstr.text.charset import Charset
from cllstr.train.config import TrainConfig
from cllstr.train.engine import Trainer

WARMUP = 2
REFERENCE_IMG_S = {"svtr_tiny": (64.0, 67.0), "crnn": (54.0, 58.0)}
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


def bench_plain(model_name: str, charset: Charset, path: Path, bs: int, iters: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = create_model(model_name, charset.num_classes)
    loader = torch.utils.data.DataLoader(PlainLmdbDataset(path), batch_size=bs, shuffle=True, drop_last=True,
                                         collate_fn=plain_collate)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=1000, div_factor=20,
                                                final_div_factor=1000, cycle_momentum=False)
    crit = torch.nn.CTCLoss(zero_infinity=True)
    it = iter(loader)

    def step() -> int:
        images, labels = next(it)
        ids = [charset.encode(lb, on_unknown="skip") for lb in labels]
        targets = torch.zeros(len(ids), 25, dtype=torch.long)
        for r, row in enumerate(ids):
            targets[r, : len(row)] = torch.tensor(row)
        lengths = torch.tensor([len(r) for r in ids], dtype=torch.int32)
        preds = model(images)
        sizes = torch.full((preds.size(0),), preds.size(1), dtype=torch.int32)
        loss = crit(preds.log_softmax(2).permute(1, 0, 2), targets, sizes, lengths)
        model.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
        opt.step()
        sched.step()
        return images.shape[0]

    model.train()
    for _ in range(WARMUP):
        step()
    t0 = time.perf_counter()
    n = sum(step() for _ in range(iters))
    train_ips = n / (time.perf_counter() - t0)
    model.eval()
    images, _ = next(iter(loader))
    with torch.no_grad():
        python_greedy(model(images), charset)
        t0 = time.perf_counter()
        for _ in range(iters):
            python_greedy(model(images), charset)
    return train_ips, iters * images.shape[0] / (time.perf_counter() - t0)


def bench_fast(model_name: str, charset: Charset, root: Path, bs: int, iters: int, workers: int,
               compile_model: bool) -> tuple[float, float]:
    cfg = TrainConfig(model=model_name, batch_size=bs, iterations=1000, val_interval=0, threads=None,
                      compile=compile_model, out_dir=str(root / f"run_{model_name}"))
    cfg.data.workers = workers
    loader = build_dataloader([root / "bench"], None, batch_size=bs, rgb=True, charset=charset, workers=workers,
                              drop_last=True)
    trainer = Trainer(cfg, charset, loader, quiet=True)
    trainer.model.train()
    for _ in range(WARMUP):
        trainer.train_step(next(trainer.stream))
    t0 = time.perf_counter()
    n = 0
    for _ in range(iters):
        batch = next(trainer.stream)
        trainer.train_step(batch)
        n += len(batch.labels)
    train_ips = n / (time.perf_counter() - t0)
    model = trainer.model.eval()
    images = next(trainer.stream).images
    decode_logits(forward_logits(model, images, trainer.device, trainer.amp_dtype, True), charset)
    t0 = time.perf_counter()
    for _ in range(iters):
        decode_logits(forward_logits(model, images, trainer.device, trainer.amp_dtype, True), charset)
    return train_ips, iters * images.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["svtr_tiny", "crnn"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=4, help="timed iterations per measurement (after 2 warm-ups)")
    ap.add_argument("--workers", type=int, default=0, help="cllstr loader workers for the fast path")
    ap.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        labels = make_lmdb(root / "bench", args.batch_size * (args.iters + WARMUP + 2))
        charset = Charset.from_labels(labels)
        for name in args.models:
            plain_train, plain_inf = bench_plain(name, charset, root / "bench", args.batch_size, args.iters)
            fast_train, fast_inf = bench_fast(name, charset, root, args.batch_size, args.iters, args.workers,
                                              args.compile)
            lo, hi = REFERENCE_IMG_S.get(name, (float("nan"), float("nan")))
            ref = (lo + hi) / 2
            results[name] = {
                "train_img_s": {"plain_fp32": plain_train, "cllstr": fast_train},
                "infer_img_s": {"plain_fp32": plain_inf, "cllstr": fast_inf},
                "train_ratio_vs_plain": fast_train / plain_train, "infer_ratio_vs_plain": fast_inf / plain_inf,
                "train_ratio_vs_reference_figure": fast_train / ref,
            }
            print(f"{name:10s} train img/s: plain fp32 {plain_train:7.1f} | cllstr {fast_train:7.1f} | "
                  f"x{fast_train / plain_train:.2f} vs plain, x{fast_train / ref:.2f} vs reference {lo:.0f}-{hi:.0f}",
                  flush=True)
            print(f"{'':10s} infer img/s: plain fp32 {plain_inf:7.1f} | cllstr {fast_inf:7.1f} | "
                  f"x{fast_inf / plain_inf:.2f} vs plain", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
