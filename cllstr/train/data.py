"""Data setup of a training run on top of the data layer: charset, training loader, per-language eval loaders.

The training loader is ``make_loader(LoaderSpec.from_config(cfg, ...), charset)`` on the ``training`` split (every
:class:`~cllstr.data.loading.spec.LoaderSpec` field that :class:`DataConfig` shares comes from the config); validation
and evaluation use one loader per language from ``<root>/<split>/<LANG>``, the languages being those of the select-data
spec (``SynthMLT_KOR`` counts as ``KOR``), as the reference does.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

from cllstr.data.loading.eval_sets import language_loaders
from cllstr.data.loading.loader import make_loader
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.mixture.spec import mix_from_select_data
from cllstr.data.store.charsets import charset_from_lmdbs
from cllstr.text.charset import Charset
from cllstr.train.config import DataConfig

__all__ = ["build_charset", "build_train_loader", "build_eval_loaders"]


def build_charset(cfg: DataConfig) -> Charset:
    """The charset file ``cfg.charset`` when given (a reference class table with ``cfg.charset_reference``), else
    every token of the selected training LMDBs' labels."""
    if cfg.charset and cfg.charset_reference:
        return Charset.from_reference_file(cfg.charset)
    if cfg.charset:
        return Charset.from_file(cfg.charset, mode=cfg.charset_mode)
    if cfg.charset_reference:
        raise ValueError("data.charset_reference (--reference-charset) needs a charset file (--charset)")
    spec = mix_from_select_data(cfg.root, cfg.select_data, split="training")
    paths = [p for _, ps in spec.resolve() for p in ps]
    charset, _ = charset_from_lmdbs(paths, mode=cfg.charset_mode)
    if len(charset) == 0:
        raise ValueError(f"no label characters found in the training data {[str(p) for p in paths]}")
    return charset


def build_train_loader(cfg: DataConfig, charset: Charset, batch_size: int, seed: int,
                       shuffle: bool = True, rank: int = 0, world_size: int = 1) -> DataLoader:
    """The training loader of kind ``cfg.loader`` (labels longer than ``cfg.max_label_length`` tokens are dropped);
    with ``world_size > 1``, this rank's share of each global batch of ``batch_size``."""
    spec = LoaderSpec.from_config(cfg, batch_size=batch_size, seed=seed, shuffle=shuffle, split="training",
                                  caps=cfg.caps or None, rank=rank, world_size=world_size,
                                  drop_last=False)  # as the reference; a dataset smaller than one batch still trains
    return make_loader(spec, charset)


def build_eval_loaders(cfg: DataConfig, split: str, batch_size: int, languages: list[str] | None = None,
                       max_samples: int | None = None, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """One unshuffled loader per validation/evaluation language of a run: ``languages``, else ``cfg.val_select``,
    else the languages of ``cfg.select_data`` present under ``<root>/<split>`` (a missing folder is an error); the
    first ``max_samples`` records of each, and with ``world_size > 1`` this rank's strided share of every batch."""
    spec = LoaderSpec(root=cfg.root, select_data=cfg.select_data, split=split, batch_size=batch_size, img_h=cfg.img_h,
                      img_w=cfg.img_w, keep_ratio=cfg.keep_ratio, rgb=cfg.rgb, rank=rank, world_size=world_size,
                      even_shares=False)
    if languages is None and cfg.val_select:
        languages = list(cfg.val_select)
    return language_loaders(spec, languages, max_samples)
