"""Data setup of a training run on top of the data layer: charset, training loader, per-language eval loaders.

The training loader is ``make_loader(LoaderSpec.from_config(cfg, ...), charset)`` on the ``training`` split (every
:class:`~cllstr.data.loading.spec.LoaderSpec` field that :class:`DataConfig` shares comes from the config); validation
and evaluation use one loader per language from ``<root>/<split>/<LANG>``, the languages being those of the select-data
spec (``SynthMLT_KOR`` counts as ``KOR``), as the reference does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from cllstr.data.loading.loader import make_loader
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.loading.torch_backend import build_torch_loader
from cllstr.data.mixture.select_data import parse_select_data, split_root, validation_names
from cllstr.data.mixture.spec import mix_from_select_data
from cllstr.data.store.charsets import charset_from_lmdbs
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
    spec = LoaderSpec.from_config(cfg, batch_size=batch_size, seed=seed, shuffle=shuffle, split="training",
                                  caps=cfg.caps or None,
                                  drop_last=False)  # as the reference; a dataset smaller than one batch still trains
    return make_loader(spec, charset)


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
        spec = LoaderSpec(root=[path], batch_size=batch_size, img_h=cfg.img_h, img_w=cfg.img_w,
                          keep_ratio=cfg.keep_ratio, rgb=cfg.rgb, shuffle=False, workers=0, split=split)
        loaders[lang] = build_torch_loader(spec)
    return loaders
