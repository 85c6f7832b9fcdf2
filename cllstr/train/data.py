"""Data setup of a training run on top of the data layer: charset, training loader, per-language eval loaders.

The training loader is ``cllstr.data.loader.build_dataloader(root, select_data, caps=..., charset=...)`` on the
``training`` split; validation and evaluation use one loader per language from ``<root>/<split>/<LANG>``, the
languages being those of the select-data spec (``SynthMLT_KOR`` counts as ``KOR``), as the reference does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from cllstr.data.charsets import charset_from_lmdbs
from cllstr.data.loader import build_dataloader
from cllstr.data.loaders import make_loader
from cllstr.data.mixing import mix_from_select_data, parse_select_data, split_root, validation_names
from cllstr.text.charset import Charset
from cllstr.train.config import DataConfig

__all__ = ["build_charset", "build_train_loader", "eval_languages", "build_eval_loaders"]


def build_charset(cfg: DataConfig) -> Charset:
    """The charset file ``cfg.charset`` when given, else every token of the selected training LMDBs' labels."""
    if cfg.charset:
        return Charset.from_file(cfg.charset, mode=cfg.charset_mode)
    spec = mix_from_select_data(cfg.root, cfg.select_data, split="training")
    paths = [p for _, ps in spec.resolve() for p in ps]
    charset, _ = charset_from_lmdbs(paths, mode=cfg.charset_mode)
    if len(charset) == 0:
        raise ValueError(f"no label characters found in the training data {[str(p) for p in paths]}")
    return charset


def build_train_loader(cfg: DataConfig, charset: Charset, batch_size: int, seed: int,
                       shuffle: bool = True) -> DataLoader:
    """The training loader of kind ``cfg.loader`` (labels longer than ``cfg.max_label_length`` tokens are dropped)."""
    return make_loader(
        cfg.loader, cfg.root, cfg.select_data, batch_size=batch_size, img_h=cfg.img_h, img_w=cfg.img_w,
        keep_ratio=cfg.keep_ratio, rgb=cfg.rgb, augment=cfg.augment, charset=charset, workers=cfg.workers,
        shuffle=shuffle, seed=seed, caps=cfg.caps or None, batch_ratio=cfg.batch_ratio,
        split="training", max_len=cfg.max_label_length,
        drop_last=False,  # as the reference; a dataset smaller than one batch still trains
    )


def eval_languages(cfg: DataConfig, split: str) -> list[str]:
    """Languages to validate/evaluate on: ``cfg.val_select`` or those of the select-data spec present on disk."""
    if cfg.val_select:
        return list(cfg.val_select)
    names = parse_select_data(cfg.select_data)
    root = split_root(cfg.root, split)
    if names == ["/"]:
        return sorted(d.name for d in root.iterdir() if d.is_dir())
    return [n for n in validation_names(names) if (root / n).is_dir()]


def build_eval_loaders(cfg: DataConfig, split: str, batch_size: int,
                       languages: list[str] | None = None) -> dict[str, Any]:
    """One unshuffled loader per language of ``<root>/<split>/<LANG>``; a missing folder is an error."""
    root = split_root(cfg.root, split)
    langs = languages if languages is not None else eval_languages(cfg, split)
    loaders = {}
    for lang in langs:
        path = Path(root) / lang
        if not path.is_dir():
            raise FileNotFoundError(f"{split} data for {lang!r} not found: {path}")
        loaders[lang] = build_dataloader(
            [path], None, batch_size=batch_size, img_h=cfg.img_h, img_w=cfg.img_w, keep_ratio=cfg.keep_ratio,
            rgb=cfg.rgb, shuffle=False, workers=0, split=split,
        )
    return loaders
