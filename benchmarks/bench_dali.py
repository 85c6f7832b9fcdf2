"""Loader throughput: DALI (CPU, and "mixed" GPU when there is one) vs the torch loader vs a Pillow loop, same run.

All loaders read the same LMDB of JPEG word crops and produce ``(B, 1, 32, 100)`` grey float batches in ``[-1, 1]``
with a bicubic fixed resize (batch 128, shuffled). The baseline is a plain Pillow loop: read, decode, ``convert("L")``,
bicubic resize and normalise, the samples of a batch spread over a thread pool (Pillow releases the GIL while it
decodes and resizes).

Fair by construction: every loader runs in this one process on the same number of threads (``--threads``, printed):
the Pillow loop's pool, the torch loader's decode threads (``workers=0``), DALI's ``num_threads``, and torch's intra-op
threads. Before timing, one unshuffled pass of each is compared with the Pillow loop's images: the torch loader must
equal them (within 1e-6); DALI decodes with its own JPEG decoder and resize, so it must agree within a mean absolute
difference of 0.5/255 and a maximum of 32/255 (both printed). Timed rounds run one epoch of each loader, in rotating
order; each round gives a ratio against the Pillow loop and the script prints the median (at least 3 rounds). With
CUDA, DALI "mixed" (GPU decode) and a CRNN training step (forward + CTC loss + backward + SGD) fed by the torch loader
and by DALI GPU are added, timed the same way.

    python benchmarks/bench_dali.py                           # 2048 synthetic crops, 2 threads, 5 rounds
    python benchmarks/bench_dali.py --samples 8192 --rounds 5 --threads 4
    python benchmarks/bench_dali.py --lmdb PATH
    CLLSTR_DALI_PLUGIN=0 python benchmarks/bench_dali.py      # DALI's fn.resize instead of cllstr's plugin
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from cllstr.data.loading.torch_backend import build_dataloader
from cllstr.data.store.reader import LmdbReader
from cllstr.data.store.writer import LmdbWriter

BATCH = 128
IMG_H, IMG_W = 32, 100
DALI_MEAN_TOL, DALI_MAX_TOL = 0.5, 32.0  # in 1/255 steps: DALI's JPEG decoder and resize vs Pillow's


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


def _pil_one(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data)).convert("L").resize((IMG_W, IMG_H), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


class PilLoop:
    """The plain baseline: read, decode, grey, bicubic resize and normalise, ``threads`` samples at a time."""

    def __init__(self, path: Path, threads: int, shuffle: bool = True, seed: int = 0) -> None:
        self.reader = LmdbReader(path)
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)

    def __iter__(self) -> Iterable[torch.Tensor]:
        n = len(self.reader)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, BATCH):
            data = [self.reader.image(int(i)) for i in order[start : start + BATCH]]
            arrays = list(self.pool.map(_pil_one, data)) if self.pool else [_pil_one(d) for d in data]
            yield torch.from_numpy(np.stack(arrays)[:, None]).float().div_(127.5).sub_(1.0)

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown()


def _images(batch: object) -> torch.Tensor:
    return batch if isinstance(batch, torch.Tensor) else batch.images


def images_of(loader: Iterable[object]) -> torch.Tensor:
    """All images of one pass, in order, on the CPU."""
    return torch.cat([_images(b).cpu() for b in loader])


def one_epoch(make_epoch: Callable[[], Iterable[object]], sync: bool) -> tuple[int, float]:
    """Images and wall seconds of one epoch."""
    count, start = 0, time.perf_counter()
    for batch in make_epoch():
        count += _images(batch).shape[0]
    if sync:
        torch.cuda.synchronize()
    return count, time.perf_counter() - start


def compare(epochs: dict[str, Callable[[], Iterable[object]]], rounds: int, base: str, sync: bool = False):
    """Images/s of each entry over ``rounds`` rounds in rotating order (after one warm-up epoch each) and the
    median per-round ratio against ``base``."""
    names = list(epochs)
    for name in names:
        one_epoch(epochs[name], sync)
    totals = {name: np.zeros(2) for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        ips = {}
        for name in names[r % len(names) :] + names[: r % len(names)]:
            n, sec = one_epoch(epochs[name], sync)
            totals[name] += (n, sec)
            ips[name] = n / sec
        for name in names:
            ratios[name].append(ips[name] / ips[base])
    return {name: (totals[name][0] / totals[name][1], statistics.median(ratios[name])) for name in names}


def train_epoch(loader: Iterable[object], device: str) -> Callable[[], Iterable[torch.Tensor]]:
    """An epoch factory: a CRNN training step (forward, CTC loss, backward, SGD) on each batch of ``loader``."""
    from cllstr.models import create_model

    torch.manual_seed(0)
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

    return epoch


def check_same(name: str, got: torch.Tensor, want: torch.Tensor, mean_tol: float, max_tol: float) -> str:
    """Exit unless ``got`` matches ``want`` within the tolerances (1/255 steps); a one-line summary otherwise."""
    if got.shape != want.shape:
        raise SystemExit(f"{name}: batches of shape {tuple(got.shape)}, the Pillow loop's are {tuple(want.shape)}")
    diff = (got - want).abs() * 127.5
    mean, worst = diff.mean().item(), diff.max().item()
    if mean > mean_tol or worst > max_tol:
        raise SystemExit(f"{name} differs from the Pillow loop: mean {mean:.3f}/255 (tolerance {mean_tol}), "
                         f"max {worst:.1f}/255 (tolerance {max_tol})")
    return f"{name} vs Pillow: mean diff {mean:.3f}/255, max {worst:.1f}/255"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmdb", type=Path, help="an existing LMDB (default: a synthetic one)")
    parser.add_argument("--samples", type=int, default=2048, help="size of the synthetic LMDB")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (one epoch of each loader per round)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every loader (and torch's)")
    parser.add_argument("--dali-workers", type=int, default=0, help="DALI external-source worker processes")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the ratio is a median)")

    from cllstr.data.loading.dali import HAS_DALI, plugin_status

    if not HAS_DALI:
        raise SystemExit("NVIDIA DALI is not installed: pip install nvidia-dali-cuda130")
    from cllstr.data.loading.dali.backend import build_dali_loader
    from cllstr.data.loading.spec import LoaderSpec

    threads = args.threads
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.lmdb or make_lmdb(Path(tmp) / "bench.lmdb", args.samples)
        n = len(LmdbReader(path))
        status = plugin_status()
        resize = "fn.cllstr.text_resize (cllstr plugin)" if status == "loaded" else f"fn.resize (plugin {status})"
        procs = f"1 process + {args.dali_workers} DALI reader processes" if args.dali_workers else "1 process"
        print(f"LMDB {path}: {n} images, batch {BATCH}, {IMG_H}x{IMG_W} grey | DALI cpu resize: {resize}")
        print(f"threads: {threads} everywhere (Pillow pool {threads}, torch loader decode_threads {threads} with "
              f"workers=0, DALI num_threads {threads}, torch.get_num_threads() {torch.get_num_threads()}); {procs}")

        def dali(device: str, shuffle: bool = True):
            return build_dali_loader(LoaderSpec(root=path, batch_size=BATCH, device=device, num_threads=threads,
                                     workers=args.dali_workers, shuffle=shuffle))

        def torch_loader(shuffle: bool = True):
            return build_dataloader(path, batch_size=BATCH, workers=0, decode_threads=threads, shuffle=shuffle)

        pil_ref = PilLoop(path, threads, shuffle=False)
        want = images_of(pil_ref)
        pil_ref.close()
        checked = [check_same("torch loader", images_of(torch_loader(shuffle=False)), want, 1e-6 * 127.5, 1e-6 * 127.5)]
        loader = dali("cpu", shuffle=False)
        checked.append(check_same("DALI cpu", images_of(loader), want, DALI_MEAN_TOL, DALI_MAX_TOL))
        loader.close()
        gpu = torch.cuda.is_available()
        if gpu:
            loader = dali("gpu", shuffle=False)
            checked.append(check_same("DALI gpu", images_of(loader), want, DALI_MEAN_TOL, DALI_MAX_TOL))
            loader.close()
        print("outputs: " + "; ".join(checked), flush=True)

        pil, tl, dali_cpu = PilLoop(path, threads), torch_loader(), dali("cpu")
        epochs = {"Pillow loop": lambda: pil, "torch loader": lambda: tl, "DALI cpu": lambda: dali_cpu}
        res = compare(epochs, args.rounds, "Pillow loop")
        dali_cpu.close()
        print(f"{'loader':<28}{'images/s':>12}{'x Pillow loop':>15}   (threads {threads}, medians of {args.rounds} "
              f"rounds)")
        for name, (ips, ratio) in res.items():
            print(f"{name:<28}{ips:>12.0f}{ratio:>15.2f}")
        if gpu:
            dali_gpu = dali("gpu")
            res = compare({"Pillow loop": lambda: pil, "DALI gpu (mixed)": lambda: dali_gpu}, args.rounds,
                          "Pillow loop", sync=True)
            print(f"{'DALI gpu (mixed)':<28}{res['DALI gpu (mixed)'][0]:>12.0f}{res['DALI gpu (mixed)'][1]:>15.2f}")
            res = compare({"torch loader": train_epoch(tl, "cuda"), "DALI gpu": train_epoch(dali_gpu, "cuda")},
                          args.rounds, "torch loader", sync=True)
            print(f"train step fed by the torch loader {res['torch loader'][0]:.0f} img/s | by DALI gpu "
                  f"{res['DALI gpu'][0]:.0f} img/s, x{res['DALI gpu'][1]:.2f} (threads {threads}, medians of "
                  f"{args.rounds} rounds)")
            dali_gpu.close()
        pil.close()


if __name__ == "__main__":
    main()
