"""Loader throughput: DALI (CPU, and "mixed" GPU when there is one) vs the torch loader vs a plain Pillow loop.

All loaders read the same LMDB in the same run and produce ``(B, 1, 32, 100)`` float batches in ``[-1, 1]``
(batch 128; DALI with 2 CPU threads, the torch loader with 2 workers). Each is timed over whole epochs after one
warm-up epoch; the ratios against the Pillow loop are what to compare across machines. With CUDA, the GPU figures
and a training step (model forward + CTC loss + backward + SGD step) fed by each loader are added.

    python benchmarks/bench_dali.py                 # builds a synthetic LMDB of 4096 crops in a temp dir
    python benchmarks/bench_dali.py --lmdb PATH --epochs 3
    CLLSTR_DALI_PLUGIN=0 python benchmarks/bench_dali.py   # DALI's fn.resize instead of cllstr's plugin
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from cllstr.data.lmdb_store import LmdbReader, LmdbWriter
from cllstr.data.loader import build_dataloader

BATCH = 128
IMG_H, IMG_W = 32, 100
THREADS = 2


def _crop(rng: random.Random) -> bytes:
    """A word-crop-like JPEG: 24-64 px high, 2-8 times as wide, dark strokes on a light noisy background."""
    h = rng.randint(24, 64)
    w = int(h * rng.uniform(2.0, 8.0))
    bg = tuple(rng.randint(140, 255) for _ in range(3))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    x = rng.randint(1, 6)
    while x < w - 6:
        cw = rng.randint(3, max(4, h // 2))
        fg = tuple(rng.randint(0, 90) for _ in range(3))
        draw.rectangle([x, rng.randint(2, h // 3), x + cw // 3 + 1, h - rng.randint(2, h // 3)], fill=fg)
        draw.ellipse([x, h // 3, x + cw, 2 * h // 3], outline=fg, width=2)
        x += cw + rng.randint(1, 5)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(70, 95))
    return buf.getvalue()


def make_lmdb(path: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` synthetic crops to an LMDB at ``path``."""
    rng = random.Random(seed)
    with LmdbWriter(path) as w:
        for i in range(n):
            w.add(_crop(rng), f"word{i}")
    return path


def pil_loop(path: Path) -> Iterable[torch.Tensor]:
    """The plain baseline: read, decode, grey, bicubic resize and normalise in one Python loop, batch by batch."""
    reader = LmdbReader(path)
    n = len(reader)
    for start in range(0, n, BATCH):
        arrays = []
        for i in range(start, min(n, start + BATCH)):
            img = Image.open(io.BytesIO(reader.image(i))).convert("L").resize((IMG_W, IMG_H), Image.Resampling.BICUBIC)
            arrays.append(np.asarray(img, dtype=np.uint8))
        yield torch.from_numpy(np.stack(arrays)[:, None]).float().div_(127.5).sub_(1.0)


def _images(batch: object) -> torch.Tensor:
    return batch if isinstance(batch, torch.Tensor) else batch.images


CPU_US: dict[str, float] = {}


def throughput(
    make_epoch: Callable[[], Iterable[object]], epochs: int, sync: bool = False, name: str | None = None
) -> float:
    """Images per second over ``epochs`` epochs after one warm-up epoch.

    With ``name``, also records this process's CPU time per image in :data:`CPU_US` (all its threads; meaningful
    for loaders that do their work in-process; less sensitive than wall time to other load on a shared machine).
    """
    for batch in make_epoch():
        _images(batch)
    count = 0
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for batch in make_epoch():
            count += _images(batch).shape[0]
    if sync:
        torch.cuda.synchronize()
    if name is not None:
        CPU_US[name] = (time.process_time() - cpu) / count * 1e6
    return count / (time.perf_counter() - start)


def train_throughput(loader: Iterable[object], epochs: int, device: str) -> float:
    """Images per second of a CRNN training step (forward, CTC loss, backward, SGD) fed by ``loader``."""
    from cllstr.models import create_model

    model = create_model("crnn", num_classes=40).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ctc = torch.nn.CTCLoss(zero_infinity=True)

    def step(images: torch.Tensor) -> None:
        images = images.to(device, non_blocking=True)
        logits = model(images).log_softmax(-1).transpose(0, 1)
        b, t = images.shape[0], logits.shape[0]
        targets = torch.randint(1, 40, (b, 5), device=device)
        loss = ctc(logits, targets, torch.full((b,), t, device=device), torch.full((b,), 5, device=device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def epoch() -> Iterable[torch.Tensor]:
        for batch in loader:
            images = _images(batch)
            step(images)
            yield images

    return throughput(epoch, epochs, sync=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmdb", type=Path, help="an existing LMDB (default: a synthetic one)")
    parser.add_argument("--samples", type=int, default=4096, help="size of the synthetic LMDB")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per loader")
    parser.add_argument("--dali-workers", type=int, default=0, help="DALI external-source worker processes")
    args = parser.parse_args()

    from cllstr.data.dali import HAS_DALI, plugin_status

    if not HAS_DALI:
        raise SystemExit("NVIDIA DALI is not installed: pip install nvidia-dali-cuda130")
    from cllstr.data.dali.loader import build_dali_loader

    with tempfile.TemporaryDirectory() as tmp:
        path = args.lmdb or make_lmdb(Path(tmp) / "bench.lmdb", args.samples)
        n = len(LmdbReader(path))
        print(f"LMDB {path}: {n} images, batch {BATCH}, {IMG_H}x{IMG_W} grey, {THREADS} threads/workers")
        status = plugin_status()
        resize = "fn.cllstr.text_resize (cllstr plugin)" if status == "loaded" else f"fn.resize (plugin {status})"
        print(f"DALI cpu resize: {resize}")
        dali_cpu = build_dali_loader(
            path, batch_size=BATCH, device="cpu", num_threads=THREADS, workers=args.dali_workers, shuffle=True
        )
        # The torch loader's workers are other processes: its CPU time is not measured here.
        torch_loader = build_dataloader(path, batch_size=BATCH, workers=THREADS, shuffle=True)
        results = {
            "PIL loop": throughput(lambda: pil_loop(path), args.epochs, name="PIL loop"),
            "torch loader": throughput(lambda: torch_loader, args.epochs),
            "DALI cpu": throughput(lambda: dali_cpu, args.epochs, name="DALI cpu"),
        }
        dali_cpu.close()
        gpu = torch.cuda.is_available()
        if gpu:
            dali_gpu = build_dali_loader(
                path, batch_size=BATCH, device="gpu", num_threads=THREADS, workers=args.dali_workers
            )
            results["DALI gpu (mixed)"] = throughput(lambda: dali_gpu, args.epochs, sync=True)
            results["train step, torch loader"] = train_throughput(torch_loader, args.epochs, "cuda")
            results["train step, DALI gpu"] = train_throughput(dali_gpu, args.epochs, "cuda")
            dali_gpu.close()
        base = results["PIL loop"]
        print(f"{'loader':<28}{'images/s':>12}{'x PIL loop':>12}")
        for name, ips in results.items():
            print(f"{name:<28}{ips:>12.0f}{ips / base:>12.2f}")
        print(f"DALI cpu / torch loader: {results['DALI cpu'] / results['torch loader']:.2f}x")
        cpu_ratio = CPU_US["PIL loop"] / CPU_US["DALI cpu"]
        print(
            f"CPU time per image (in-process): PIL loop {CPU_US['PIL loop']:.0f} us, "
            f"DALI cpu {CPU_US['DALI cpu']:.0f} us over {THREADS} threads -> at most {THREADS * cpu_ratio:.2f}x "
            f"the PIL loop on {THREADS} idle cores"
        )
        if gpu:
            ratio = results["train step, DALI gpu"] / results["train step, torch loader"]
            print(f"train step DALI gpu / torch loader: {ratio:.2f}x")


if __name__ == "__main__":
    main()
