"""Evaluate a checkpoint on the per-language LMDBs of a data root (``<root>/<split>/<LANG>``): the one function
behind ``cllstr eval``, the study worker and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cllstr.checkpoint import LoadedModel, load_model
from cllstr.data.loading.eval_sets import language_loaders
from cllstr.data.loading.spec import LoaderSpec
from cllstr.decoding.ctc import DecoderConfig
from cllstr.device import resolve_amp_dtype, resolve_device
from cllstr.scoring.evaluate import BatchHook, EvalReport, evaluate_loaders
from cllstr.scoring.script_id import ScriptIdReport, evaluate_script_id, has_script_head

__all__ = ["CheckpointData", "checkpoint_data", "evaluate_checkpoint", "script_id_checkpoint"]


@dataclass
class CheckpointData:
    """A loaded checkpoint on its device, with one evaluation loader per language."""

    loaded: LoadedModel
    device: torch.device
    amp_dtype: torch.dtype | None
    loaders: dict[str, Any]


def checkpoint_data(checkpoint: str | Path, data_root: str | Path, split: str = "evaluation",
                    languages: Sequence[str] | None = None, batch_size: int = 256, device: str = "auto",
                    precision: str = "auto", channels_last: bool = False) -> CheckpointData:
    """Load ``checkpoint`` onto ``device`` and build its evaluation loaders in the checkpoint's input format.

    Args: as for :func:`evaluate_checkpoint`.
    """
    loaded = load_model(checkpoint)
    dev = resolve_device(str(device))
    loaded.model.to(dev)
    if channels_last:  # as the trainer holds it, so that a run's evaluation computes what its validation did
        loaded.model.to(memory_format=torch.channels_last)
    img = loaded.image
    spec = LoaderSpec(root=data_root, split=split, batch_size=batch_size, img_h=img["img_h"], img_w=img["img_w"],
                      rgb=img["rgb"], keep_ratio=img["keep_ratio"])
    loaders = language_loaders(spec, list(languages) if languages else None)
    return CheckpointData(loaded, dev, resolve_amp_dtype(precision, dev), loaders)


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
    channels_last: bool = False,
) -> EvalReport:
    """Word accuracy, 1-NED and CER of ``checkpoint`` per language of ``<data_root>/<split>``.

    Args:
        checkpoint: A cllstr checkpoint (``best.pt`` / ``last.pt``); model, charset and input format come from it.
        data_root: Root with the reference layout ``{training,validation,evaluation}/<LANG>``.
        split: Split folder to evaluate.
        languages: Language folders to evaluate (default: every folder of the split, in the paper's order).
        batch_size: Images per forward pass.
        max_samples: At most this many samples per language.
        gt_in_charset: The reference protocol: ground-truth characters outside the charset are dropped.
        device: ``auto``, ``cpu``, ``cuda``...
        precision: ``auto``, ``bf16``, ``fp16`` or ``fp32``.
        on_batch: Per-batch hook, as for :func:`~cllstr.scoring.evaluate.evaluate_loaders` (e.g. a gallery).
        decoder: How logits become text (default: greedy CTC).
        channels_last: Feed the model channels-last images (as a run trained with ``channels_last`` does).

    Raises:
        FileNotFoundError / ValueError: a missing checkpoint, split or language folder; the message names it.
    """
    data = checkpoint_data(checkpoint, data_root, split, languages, batch_size, device, precision, channels_last)
    return evaluate_loaders(data.loaded.model, data.loaded.charset, data.loaders, data.device, data.amp_dtype,
                            channels_last, gt_in_charset=gt_in_charset, max_samples=max_samples, on_batch=on_batch,
                            decoder=decoder)


def script_id_checkpoint(checkpoint: str | Path, data_root: str | Path, split: str = "evaluation",
                         languages: Sequence[str] | None = None, batch_size: int = 256, max_samples: int | None = None,
                         device: str = "auto", precision: str = "auto") -> ScriptIdReport | None:
    """Script-identification report of ``checkpoint`` on ``<data_root>/<split>``; None when it has no script head.
    Arguments as for :func:`cllstr.eval.checkpoint.evaluate_checkpoint`."""
    data = checkpoint_data(checkpoint, data_root, split, languages, batch_size, device, precision)
    if not has_script_head(data.loaded.model):
        return None
    return evaluate_script_id(data.loaded.model, data.loaders, data.device, data.amp_dtype, max_samples=max_samples)
