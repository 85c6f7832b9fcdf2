"""Loader throughput: cllstr's LMDB loader vs a reference-style PIL + ``ToTensor`` loader, measured in the same run.

Both read the same LMDB of JPEG word crops (sizes like MLT19 crops) and produce ``(B, 3, 32, 100)`` float batches in
``[-1, 1]`` with a bicubic fixed resize, batch 128, shuffled. The baseline mirrors the reference ``LmdbDataset`` +
``AlignCollate``: PIL decode and ``convert("RGB")`` per sample, then in the collate a per-image resize, ``ToTensor``
(torchvision's ``to_tensor`` steps), ``sub_(0.5).div_(0.5)`` and ``torch.cat``.

Fair by construction: every loading process of both loaders runs one decode thread and one torch thread (printed),
with the same number of worker processes; before timing, one unshuffled pass of each checks that cllstr's batches
equal the reference's (within 1e-6). cllstr's ``jpeg_draft`` speed option (reduced-scale JPEG decoding) is timed as
a third loader; its pixels differ, and the script prints by how much (mean and max absolute difference, in 1/255).
The loaders run in alternating order, one epoch each per round; each round gives a ratio and the script prints
their median (at least 3 rounds).

    python benchmarks/bench_loader.py                 # prints images/s and the ratios for 0 and 2 workers
    python benchmarks/bench_loader.py --num 4096 --epochs 5
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import lmdb
import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader, Dataset

from cllstr.data.loading.torch_backend import build_dataloader
from cllstr.data.store.writer import LmdbWriter

WORDS = ["street", "coffee", "station", "pharmacy", "market", "open", "exit", "hotel", "bakery", "parking"]


def make_store(path: Path, num: int, min_h: int = 24, max_h: int = 96, seed: int = 0) -> None:
    """JPEG crops ``min_h``-``max_h`` px high, 1.5-5x as wide, dark text on a noisy light background.

    The meta key names the script, as ``cllstr data create --script`` and the synthetic engine write it.
    """
    rng = np.random.default_rng(seed)
    with LmdbWriter(path, commit_every=512, meta={"script": "LAT"}) as w:
        for i in range(num):
            h = int(rng.integers(min_h, max_h + 1))
            width = int(h * rng.uniform(1.5, 5.0))
            bg = rng.integers(150, 256, (h, width, 3), dtype=np.uint8)
            img = Image.fromarray(bg)
            word = WORDS[i % len(WORDS)]
            ImageDraw.Draw(img).text((4, h // 4), word, fill=tuple(int(c) for c in rng.integers(0, 90, 3)))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            w.add(buf.getvalue(), word)


class ReferenceLmdb(Dataset):
    """The reference dataset: one env opened in ``__init__``, PIL decode + RGB convert per sample."""

    def __init__(self, root: Path) -> None:
        self.env = lmdb.open(str(root), max_readers=32, readonly=True, lock=False, readahead=False, meminit=False)
        self.txn = self.env.begin(write=False)
        self.n = int(self.txn.get(b"num-samples"))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        index += 1
        label = self.txn.get(b"label-%09d" % index).decode("utf-8")
        buf = io.BytesIO(self.txn.get(b"image-%09d" % index))
        return Image.open(buf).convert("RGB"), label


def to_tensor(pic: Image.Image) -> torch.Tensor:
    """torchvision ``transforms.functional.to_tensor`` for 8-bit PIL images."""
    img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
    img = img.view(pic.size[1], pic.size[0], len(pic.getbands())).permute((2, 0, 1)).contiguous()
    return img.to(dtype=torch.float32).div(255)


def reference_collate(batch):
    """The reference ``AlignCollate`` with ``ResizeNormalize((100, 32))``."""
    images, labels = zip(*batch, strict=True)
    tensors = []
    for image in images:
        t = to_tensor(image.resize((100, 32), Image.Resampling.BICUBIC))
        t.sub_(0.5).div_(0.5)
        tensors.append(t)
    return torch.cat([t.unsqueeze(0) for t in tensors], 0), labels


def one_epoch(loader) -> tuple[int, float, float]:
    """Images, wall seconds and this process's CPU seconds (all its threads) of one pass over ``loader``."""
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    for batch in loader:
        n += len(batch[1]) if isinstance(batch, tuple) else len(batch)
    return n, time.perf_counter() - start, time.process_time() - cpu


def images_of(loader) -> torch.Tensor:
    """All images of one pass, in order."""
    return torch.cat([b[0] if isinstance(b, tuple) else b.images for b in loader])


def compare(loaders: dict[str, object], epochs: int) -> dict[str, dict[str, float]]:
    """Images/s of each loader over ``epochs`` rounds in rotating order (after a warm-up pass each, which starts
    persistent workers), the median per-round ratio to ``ref``, and the ratio of CPU time per image in this process
    (the whole cost with 0 workers: it shows efficiency apart from how many cores were free)."""
    names = list(loaders)
    for loader in loaders.values():
        one_epoch(loader)
    totals = {name: np.zeros(3) for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for r in range(epochs):
        ips = {}
        for name in names[r % len(names) :] + names[: r % len(names)]:
            n, sec, cpu = one_epoch(loaders[name])
            totals[name] += (n, sec, cpu)
            ips[name] = n / sec
        for name in names:
            ratios[name].append(ips[name] / ips["ref"])
    n_ref, _, c_ref = totals["ref"]
    return {
        name: {
            "ips": totals[name][0] / totals[name][1],
            "ratio": statistics.median(ratios[name]),
            "cpu_ratio": (c_ref / n_ref) / (totals[name][2] / totals[name][0]),
        }
        for name in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2048, help="records in the benchmark LMDB")
    parser.add_argument("--epochs", type=int, default=4, help="timed rounds (one pass of each loader per round)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--min-h", type=int, default=24, help="smallest crop height (px)")
    parser.add_argument("--max-h", type=int, default=96, help="largest crop height (px)")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (the ratio is a median)")
    torch.set_num_threads(1)  # the baseline's threads; worker processes of both loaders get 1 too (DataLoader)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench"
        make_store(path, args.num, args.min_h, args.max_h)
        # py-lmdb allows one environment per file and process, so the baseline reads an identical copy.
        ref_path = Path(tmp) / "bench_ref"
        shutil.copytree(path, ref_path)

        def reference(workers: int, shuffle: bool = True) -> DataLoader:
            extra = {"persistent_workers": True} if workers else {}
            return DataLoader(
                ReferenceLmdb(ref_path), batch_size=args.batch_size, shuffle=shuffle, num_workers=workers,
                collate_fn=reference_collate, pin_memory=False, generator=torch.Generator().manual_seed(0), **extra,
            )

        def cllstr(workers: int, shuffle: bool = True, draft: bool = False) -> DataLoader:
            return build_dataloader([path], batch_size=args.batch_size, rgb=True, workers=workers, seed=0,
                                    shuffle=shuffle, decode_threads=1, jpeg_draft=draft)

        want = images_of(reference(0, shuffle=False))
        got = images_of(cllstr(0, shuffle=False))
        if got.shape != want.shape or (got - want).abs().max() > 1e-6:
            raise SystemExit(f"cllstr's batches differ from the reference's: {(got - want).abs().max():.3g}")
        draft_diff = (images_of(cllstr(0, shuffle=False, draft=True)) - want).abs() * 127.5  # in 1/255 steps
        print(f"threads: 1 decode thread and 1 torch thread per loading process, both loaders | outputs: cllstr equals "
              f"the reference (max diff {(got - want).abs().max():.1g}); jpeg_draft differs by {draft_diff.mean():.2f}"
              f"/255 on average, {draft_diff.max():.0f}/255 at most", flush=True)
        for workers in args.workers:
            loaders = {"ref": reference(workers), "cllstr": cllstr(workers), "draft": cllstr(workers, draft=True)}
            res = compare(loaders, args.epochs)
            cpu = {k: f", CPU/image {v['cpu_ratio']:.2f}x" if workers == 0 else "" for k, v in res.items()}
            print(
                f"workers={workers}: reference {res['ref']['ips']:7.0f} img/s | cllstr {res['cllstr']['ips']:7.0f} "
                f"img/s, x{res['cllstr']['ratio']:.2f}{cpu['cllstr']} | cllstr jpeg_draft {res['draft']['ips']:7.0f} "
                f"img/s, x{res['draft']['ratio']:.2f}{cpu['draft']} (medians of {args.epochs} rounds)", flush=True,
            )
            del loaders


if __name__ == "__main__":
    main()
