"""Side-by-side parity of `cllstr import` with the reference code itself (CLL-STR's / DTRB's ``model.py``).

The reference models are built from a fetched checkout (``--ref``: ku21fan/CLL-STR or
clovaai/deep-text-recognition-benchmark; nothing of it is part of cllstr), given random weights, non-trivial
BatchNorm statistics and an active TPS, saved as the reference's ``train.py`` saves them (``DataParallel`` state
dict), imported with :func:`cllstr.interop.import_reference`, and run on the same images: real crops from an LMDB
(``--lmdb``, preprocessed as the reference does: RGB, bicubic resize to 32x100, ``(x / 255 - 0.5) / 0.5``) and uniform
noise (the worst case for a resampling grid). Prints the max abs logit difference, the logits' scale and whether the
greedy decodes are identical, per architecture; and the same for the imported model exported to ONNX and run by
ONNX Runtime, against torch.

    python benchmarks/parity_import.py --ref /path/to/CLL-STR --lmdb /path/to/evaluation/LAT
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from cllstr.checkpoint import load_model, save_checkpoint
from cllstr.data.store.reader import LmdbReader
from cllstr.deploy import OnnxModel, export_onnx
from cllstr.interop import class_table, import_reference

ARCHS = ("TPS-ResNet-BiLSTM-Attn", "TPS-ResNet-BiLSTM-CTC", "None-VGG-BiLSTM-CTC", "TPS-SVTR-None-CTC")
GRIDS = {"reference": ARCHS, "exact": tuple(a for a in ARCHS if a.startswith("TPS"))}  # cllstr import --tps-grid


def reference_model(ref: Path, arch: str, num_class: int) -> torch.nn.Module:
    """The reference ``Model`` for ``arch`` with random weights and BatchNorm statistics and a perturbed TPS head."""
    sys.path.insert(0, str(ref))
    try:
        import timm  # noqa: F401  (the reference SVTR imports timm's trunc_normal_ only)
    except ImportError:
        shim = types.ModuleType("timm.models.layers")
        shim.trunc_normal_ = torch.nn.init.trunc_normal_
        sys.modules.update({"timm": types.ModuleType("timm"), "timm.models": types.ModuleType("timm.models"),
                            "timm.models.layers": shim})
    from model import Model  # the reference checkout's model.py

    trans, feat, seq, pred = arch.split("-")
    opt = SimpleNamespace(Transformation=trans, FeatureExtraction=feat, SequenceModeling=seq, Prediction=pred,
                          num_fiducial=20, imgH=32, imgW=100, input_channel=3,
                          output_channel=192 if feat == "SVTR" else 512, hidden_size=256, num_class=num_class,
                          batch_max_length=25)
    model = Model(opt)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "localization_fc2.weight" in name:
                p.normal_(0, 1e-3)
            elif p.dim() > 1 and "localization_fc2" not in name:
                torch.nn.init.kaiming_normal_(p)
            elif "localization_fc2" not in name and "bias" in name:
                p.normal_(0, 0.01)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def images(lmdb_path: Path | None, n: int) -> dict[str, torch.Tensor]:
    out = {"noise": torch.rand(n, 3, 32, 100, generator=torch.Generator().manual_seed(1)) * 2 - 1}
    if lmdb_path is not None:
        reader = LmdbReader(lmdb_path)
        crops = []
        for i in range(min(n, len(reader))):
            im = Image.open(io.BytesIO(reader.image(i))).convert("RGB").resize((100, 32), Image.BICUBIC)
            crops.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1))
        out["real crops"] = (torch.stack(crops) - 0.5) / 0.5
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, required=True, help="a CLL-STR checkout (its model.py and modules/)")
    ap.add_argument("--lmdb", type=Path, default=None, help="an LMDB of real crops")
    ap.add_argument("-n", type=int, default=32)
    args = ap.parse_args()
    chars = [c for c in (args.ref / "charset" / "MLT19_charset.txt").read_text(encoding="utf-8").splitlines() if c]
    torch.set_grad_enabled(False)
    print("| arch | images | max abs logit diff vs reference | logit scale | greedy decodes equal | ONNX Runtime vs "
          "torch, max abs diff / max(1, scale) | ONNX greedy equal |\n|---|---|---|---|---|---|---|")
    for grid, arch in [(g, a) for g, archs in GRIDS.items() for a in archs]:
        pred = arch.split("-")[-1].lower()
        tokens, perm, sos = class_table("cll-str", pred, chars)
        ref = reference_model(args.ref, arch, len(perm))
        with tempfile.TemporaryDirectory() as tmp:
            pth = Path(tmp) / "ref.pth"
            torch.save(torch.nn.DataParallel(ref).state_dict(), pth)
            ckpt = save_checkpoint(import_reference(pth, "cll-str", arch, chars, tps_grid=grid).checkpoint,
                                   Path(tmp) / "m.pt")
            ours = load_model(ckpt).model.eval()
            onnx = OnnxModel(export_onnx(ckpt, Path(tmp) / "m.onnx"), threads=1)
        for label, x in images(args.lmdb, args.n).items():
            if pred == "attn":
                go = torch.full((x.shape[0],), 3, dtype=torch.long)  # [SOS] per image, as the reference's test.py
                want = ref(x, go, is_train=False)
            else:
                want = ref(x)
            full = ours(x)
            via_onnx = onnx(x)
            rel = ((via_onnx - full).abs().max() / full.abs().max().clamp_min(1.0)).item()
            got = full[..., :len(perm)]
            want = want[..., perm]  # cllstr class c is reference class perm[c]
            diff = (got - want).abs().max().item()
            same = torch.equal(got.argmax(-1), want.argmax(-1))
            onnx_same = torch.equal(via_onnx.argmax(-1), full.argmax(-1))
            name = f"{arch} (--tps-grid exact)" if grid == "exact" else arch
            print(f"| {name} | {label} ({x.shape[0]}) | {diff:.2e} | {want.abs().max().item():.2f} | {same} | "
                  f"{rel:.1e} | {onnx_same} |")


if __name__ == "__main__":
    main()
