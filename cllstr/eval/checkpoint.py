"""Evaluate a trained checkpoint on the per-language LMDBs of a data root (``<root>/<split>/<LANG>``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cllstr.eval.decode import DecoderConfig
from cllstr.eval.evaluate import BatchHook, EvalReport, evaluate_loaders
from cllstr.scripts import SCRIPT_ORDER

__all__ = ["split_languages", "evaluate_checkpoint"]


def split_languages(data_root: str | Path, split: str) -> list[str]:
    """The language folders of ``<data_root>/<split>``, in the paper's column order first, then the others sorted."""
    from cllstr.data.mixture.select_data import split_root

    root = split_root(data_root, split)
    present = sorted(d.name for d in Path(root).iterdir() if d.is_dir())
    names = [n for n in SCRIPT_ORDER if n in present] + [n for n in present if n not in SCRIPT_ORDER]
    if not names:
        raise ValueError(f"no language folders under {root}")
    return names


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str = "evaluation",
    languages: Sequence[str] | None = None,
    batch_size: int = 256,
    max_samples: int | None = None,
    gt_in_charset: bool = False,
    device: str = "auto",
    precision: str = "auto",
    on_batch: BatchHook | None = None,
    decoder: DecoderConfig | None = None,
) -> EvalReport:
    """Word accuracy, 1-NED and CER of ``checkpoint`` per language of ``<data_root>/<split>``.

    Args:
        checkpoint: A cllstr checkpoint (``best.pt`` / ``last.pt``); model, charset and input format come from it.
        data_root: Root with the reference layout ``{training,validation,evaluation}/<LANG>``.
        split: Split folder to evaluate.
        languages: Language folders to evaluate (default: every folder of the split).
        batch_size: Images per forward pass.
        max_samples: At most this many samples per language.
        gt_in_charset: The reference protocol: ground-truth characters outside the charset are dropped.
        device: ``auto``, ``cpu``, ``cuda``...
        precision: ``auto``, ``bf16``, ``fp16`` or ``fp32``.
        on_batch: Per-batch hook, as for :func:`~cllstr.eval.evaluate.evaluate_loaders` (e.g. a gallery).
        decoder: How logits become text (default: greedy CTC).

    Raises:
        FileNotFoundError / ValueError: a missing checkpoint, split or language folder; the message names it.
    """
    from cllstr.recognizer import Recognizer
    from cllstr.train.config import DataConfig
    from cllstr.train.data import build_eval_loaders

    rec = Recognizer.from_checkpoint(checkpoint, device=device, precision=precision)
    names = list(languages) if languages else split_languages(data_root, split)
    cfg = DataConfig(root=str(data_root), img_h=rec.img_h, img_w=rec.img_w, rgb=rec.rgb, keep_ratio=rec.keep_ratio)
    loaders = build_eval_loaders(cfg, split, batch_size, names)
    return evaluate_loaders(rec.model, rec.charset, loaders, rec.device, rec.amp_dtype, gt_in_charset=gt_in_charset,
                            max_samples=max_samples, on_batch=on_batch, decoder=decoder)
