"""What the reduced-scale JPEG decode (``jpeg_draft``) changes: pixels and a trained model's accuracy.

It re-encodes an evaluation split as large JPEGs (each crop upscaled ``--upscale`` times with bicubic, then JPEG at
``--quality``: the size of camera crops, where draft decoding takes effect), then decodes them both ways with the
torch loader: full scale (the reference's ``Image.open().convert()``, cllstr's default) and draft. It prints the mean
absolute pixel difference of the network inputs, the decode throughput of both, and the word accuracy / 1-NED of the
checkpoint on both, measured in the same run.

    python benchmarks/bench_jpeg_draft.py CHECKPOINT DATA_ROOT/evaluation/LAT
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from cllstr.checkpoint import load_model
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.loading.torch_backend import build_torch_loader
from cllstr.data.store.reader import LmdbReader
from cllstr.data.store.writer import LmdbWriter
from cllstr.scoring.evaluate import evaluate_loaders


def reencode(src: Path, dst: Path, upscale: int, quality: int, limit: int) -> int:
    reader = LmdbReader(src)
    n = min(len(reader), limit)
    with LmdbWriter(dst) as w:
        for i in range(n):
            rec = reader[i]
            img = Image.open(io.BytesIO(rec.image)).convert("RGB")
            img = img.resize((img.width * upscale, img.height * upscale), Image.Resampling.BICUBIC)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=quality)
            w.add(buf.getvalue(), rec.label)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("lmdb", type=Path, help="an evaluation LMDB (e.g. DATA/evaluation/LAT)")
    ap.add_argument("--upscale", type=int, default=4)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.checkpoint)
    img = loaded.image
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.lmdb"
        n = reencode(args.lmdb, big, args.upscale, args.quality, args.limit)
        spec = {draft: LoaderSpec(root=[big], batch_size=64, shuffle=False, img_h=img["img_h"], img_w=img["img_w"],
                                  rgb=img["rgb"], keep_ratio=img["keep_ratio"], jpeg_draft=draft, decode_threads=1)
                for draft in (False, True)}
        images = {d: torch.cat([b.images for b in build_torch_loader(s)]) for d, s in spec.items()}
        diff = (images[True] - images[False]).abs().mean().item() * 127.5  # in 0..255 pixel units
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for d in (False, True):
                t0 = time.perf_counter()
                for _b in build_torch_loader(spec[d]):
                    pass
                times[d].append(time.perf_counter() - t0)
        scores = {d: evaluate_loaders(loaded.model, loaded.charset, {"x": build_torch_loader(s)}, "cpu", None)
                  .languages["x"] for d, s in spec.items()}
    full, draft = scores[False], scores[True]
    print(f"{n} crops of {args.lmdb} upscaled x{args.upscale}, JPEG q{args.quality}; model {loaded.state['model_name']}"
          f" at {img['img_h']}x{img['img_w']}; 1 thread, median of {args.rounds} rounds")
    print(f"  mean |draft - full| of the network input: {diff:.2f} / 255")
    for d, name in ((False, "full-scale decode"), (True, "draft decode")):
        print(f"  {name:18s} {n / statistics.median(times[d]):8.0f} img/s   word accuracy "
              f"{100 * scores[d].accuracy:5.2f}%   1-NED {100 * scores[d].one_minus_ned:5.2f}")
    print(f"  draft vs full: x{statistics.median(times[False]) / statistics.median(times[True]):.2f} decode speed, "
          f"{100 * (draft.accuracy - full.accuracy):+.2f} points word accuracy")


if __name__ == "__main__":
    main()
