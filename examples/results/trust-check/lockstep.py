"""Lockstep check (issue #21, point 3): CLL-STR's own CRNN, loss and optimiser vs cllstr's ``Trainer.train_step``,
from the same weights on the same batches, step by step.

The reference's ``model.py``, ``utils.py`` (``CTCLabelConverter``) and ``dataset.py`` are imported from a fetched
checkout (``--ref``; run side by side, never copied). Its weight initialisation is applied as its ``train.py`` does,
and the weights are copied into cllstr's ``crnn`` with ``last_pad=0`` (the reference's T = 24). Every batch comes
from the reference's own loader (``concat_dataset`` + ``AlignCollate``). Each step runs the reference's
encode / ``CTCLoss`` / ``clip_grad_norm_`` / AdamW / OneCycle (``train.py``'s code path, restated here) and cllstr's
``Trainer.train_step`` (cllstr's label encoding, loss, optimiser, schedule and clipping from its ``TrainConfig``).
Both losses, gradient norms and the largest weight difference are printed.

A difference here means the training math differs. No difference means the two trainers differ only in what the
seed draws (initial weights, batch order) and in the data loader.

    PYTHONPATH=<reference deps> python lockstep.py --ref /work/ref/CLL-STR --data /work/runs/data/mlt02 --steps 100
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from types import SimpleNamespace

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="CLL-STR checkout (with dataset.py's _accumulate import patched)")
    ap.add_argument("--data", required=True, help="LMDB tree with training/<LANG>")
    ap.add_argument("--lang", default="LAT")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true", help="cllstr's default memory format (not bit-exact)")
    ap.add_argument("--data-check", type=int, default=512, help="records compared between the two loaders")
    args = ap.parse_args()

    sys.path.insert(0, args.ref)
    from dataset import AlignCollate, concat_dataset  # noqa: E402  (the reference's modules)
    from model import Model  # noqa: E402
    from torch.nn import init  # noqa: E402
    from utils import CTCLabelConverter  # noqa: E402

    from cllstr.text.charset import Charset
    from cllstr.train.config import TrainConfig
    from cllstr.train.engine import Trainer

    torch.set_num_threads(args.threads)
    charset_file = f"{args.ref}/charset/MLT19_charset.txt"
    opt = SimpleNamespace(
        Transformation="None", FeatureExtraction="VGG", SequenceModeling="BiLSTM", Prediction="CTC", num_fiducial=20,
        imgH=32, imgW=100, input_channel=3, output_channel=512, hidden_size=256, batch_max_length=25, PAD=False,
        Aug="None", data_filtering_off=False, data_usage="all", data_usage_LAT="all", data_usage_SynthMLT="all",
        rgb=True, sensitive=True, select_data=[args.lang], batch_size=args.batch, workers=0,
        manual_seed=args.seed)
    with open(charset_file, encoding="utf-8") as f:
        opt.character = f.read().splitlines()
    converter = CTCLabelConverter(opt)
    opt.num_class = len(converter.character)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    ref = Model(opt)
    for name, p in ref.named_parameters():  # train.py's initialisation
        try:
            if "bias" in name:
                init.constant_(p, 0.0)
            elif "weight" in name:
                init.kaiming_normal_(p)
        except ValueError:  # BatchNorm weights (1-D)
            if "weight" in name:
                p.data.fill_(1)

    charset = Charset.from_reference_file(charset_file)
    if charset.num_classes != opt.num_class:
        raise SystemExit(f"class tables differ: reference {opt.num_class}, cllstr {charset.num_classes}")
    out = tempfile.mkdtemp(prefix="lockstep-")
    cfg = TrainConfig(model="crnn", model_kwargs={"last_pad": 0}, out_dir=out, batch_size=args.batch,
                      iterations=args.steps, val_interval=0, seed=args.seed, device="cpu", precision="fp32",
                      channels_last=args.channels_last, threads=args.threads)
    cfg.optim.lr = args.lr
    trainer = Trainer(cfg, charset, train_loader=[], quiet=True)
    mine = trainer.model
    rs, ms = ref.state_dict(), mine.state_dict()
    if [v.shape for v in rs.values()] != [v.shape for v in ms.values()]:
        raise SystemExit("the two CRNNs' state dicts differ in shape")
    with torch.no_grad():
        for rv, mv in zip(rs.values(), ms.values(), strict=True):
            mv.copy_(rv)

    first = cllstr_records(args, cfg, charset)  # before the reference opens the LMDBs (one open per process)
    dataset, _ = concat_dataset(root=f"{args.data}/training", opt=opt, dataset_list=[args.lang], mode="train")
    compare_records(first, dataset, AlignCollate(opt))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, collate_fn=AlignCollate(opt))
    criterion = torch.nn.CTCLoss(zero_infinity=True)
    optimizer = torch.optim.AdamW(ref.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, cycle_momentum=False, div_factor=20,
                                                    final_div_factor=1000, total_steps=args.steps)
    ref.train()
    mine.train()
    worst = 0.0
    it = iter(loader)
    print("| step | reference loss | cllstr loss | reference grad norm | cllstr grad norm | max abs weight diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    for step in range(1, args.steps + 1):
        try:
            images, labels = next(it)
        except StopIteration:
            it = iter(loader)
            images, labels = next(it)
        index, length = converter.encode(labels, batch_max_length=opt.batch_max_length)
        preds = ref(images)
        sizes = torch.IntTensor([preds.size(1)] * images.size(0))
        loss_ref = criterion(preds.log_softmax(2).permute(1, 0, 2), index, sizes, length).detach()
        ref.zero_grad()
        loss_ref.requires_grad_(False)
        criterion(preds.log_softmax(2).permute(1, 0, 2), index, sizes, length).backward()
        gn_ref = float(torch.nn.utils.clip_grad_norm_(ref.parameters(), 5))
        optimizer.step()
        scheduler.step()

        loss_mine = trainer.train_step(SimpleNamespace(images=images, labels=list(labels), scripts=None))
        gn_mine = float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(p.grad) for p in mine.parameters() if p.grad is not None])))
        with torch.no_grad():
            diff = max(float((a - b).abs().max()) for a, b in zip(ref.parameters(), mine.parameters(), strict=True))
        worst = max(worst, diff)
        if step in (1, 2, 5) or step % 10 == 0 or step == args.steps:
            # cllstr's grad norm is taken after clipping (the reference's before): equal below 5, 5 above
            print(f"| {step} | {float(loss_ref):.5f} | {loss_mine:.5f} | {gn_ref:.4f} | {gn_mine:.4f} | {diff:.2e} |",
                  flush=True)
    print(f"\nlargest weight difference over {args.steps} steps: {worst:.3e}")
    return 0


def cllstr_records(args: argparse.Namespace, cfg: object, charset: object) -> tuple[torch.Tensor, list[str]]:
    """The first ``--data-check`` training records as cllstr's loader gives them (unshuffled)."""
    import gc

    from cllstr.data.store.reader import release_env
    from cllstr.train.data import build_train_loader

    cfg.data.root = args.data
    cfg.data.select_data = [args.lang]
    loader = build_train_loader(cfg.data, charset, args.batch, args.seed, shuffle=False)
    images, labels = [], []
    for batch in loader:
        if len(labels) >= args.data_check:
            break
        images.append(batch.images)
        labels.extend(batch.labels)
    del loader, batch
    gc.collect()
    release_env(f"{args.data}/training/{args.lang}")  # one open environment per store and process
    return torch.cat(images)[: args.data_check], labels[: args.data_check]


def compare_records(first: tuple[torch.Tensor, list[str]], dataset: object, collate: object) -> None:
    """Same labels, same pixels (up to float rounding: the reference divides by 255 and normalises, cllstr computes
    x / 127.5 - 1) for the first records of both loaders."""
    mine, labels = first
    n = min(len(labels), len(dataset))
    ref_images, ref_labels = collate([dataset[i] for i in range(n)])
    same_labels = sum(a == b for a, b in zip(ref_labels, labels[:n], strict=True))
    diff = (ref_images - mine[:n]).abs()
    print(f"data check, first {n} records: labels equal {same_labels}/{n}; pixels: max abs diff "
          f"{float(diff.max()):.2e}, mean {float(diff.mean()):.2e} (one 8-bit level is {2 / 255:.2e})")


if __name__ == "__main__":
    raise SystemExit(main())
