"""Evaluation sets: one unshuffled torch loader per language folder ``<root>/<split>/<LANG>``, as the reference has.

Which languages: those named (``languages``), else the languages of a select-data spec present on disk
(``SynthMLT_KOR`` counts as ``KOR``; :func:`eval_languages`), else every language folder of the split in the paper's
column order (:func:`split_languages`). Only the image format of the spec applies: evaluation never filters, mixes
or augments. Two things may apply on top: ``max_samples`` keeps the first records of each language (validation during
training), and ``spec.rank`` / ``spec.world_size`` give one distributed rank its strided share of every (global,
sequential) batch, so that the ranks together see exactly the batches of one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import DataLoader

from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.loading.torch_backend import build_torch_loader
from cllstr.data.mixture.select_data import parse_select_data, split_root, validation_names
from cllstr.data.mixture.spec import MixSpec, SourceSpec
from cllstr.scripts import SCRIPT_ORDER

__all__ = ["eval_languages", "language_loaders", "split_languages"]


def split_languages(root: str | Path, split: str) -> list[str]:
    """The language folders of ``<root>/<split>``, in the paper's column order first, then the others sorted."""
    base = split_root(root, split)
    present = sorted(d.name for d in Path(base).iterdir() if d.is_dir())
    names = [n for n in SCRIPT_ORDER if n in present] + [n for n in present if n not in SCRIPT_ORDER]
    if not names:
        raise ValueError(f"no language folders under {base}")
    return names


def eval_languages(root: str | Path, select_data: str | Sequence[str], split: str) -> list[str]:
    """The languages of ``select_data`` that have a folder under ``<root>/<split>`` (all folders for ``"/"``)."""
    names = parse_select_data(select_data)
    base = split_root(root, split)
    if names == ["/"]:
        return sorted(d.name for d in base.iterdir() if d.is_dir())
    return [n for n in validation_names(names) if (base / n).is_dir()]


def language_loaders(spec: LoaderSpec, languages: Sequence[str] | None = None,
                     max_samples: int | None = None) -> dict[str, DataLoader]:
    """One unshuffled loader per language of ``<spec.root>/<spec.split>/<LANG>``; a missing folder is an error.

    Args:
        spec: ``root`` (a data root), ``split``, ``batch_size`` and the image format (``img_h``, ``img_w``, ``rgb``,
            ``keep_ratio``, ``interpolation``, ``labels``); with ``languages=None``, ``select_data`` names them (or,
            when it is None too, every language folder of the split); ``rank`` / ``world_size``: this rank's share.
        languages: Language folders to load.
        max_samples: Keep the first this many records of each language (None: all).
    """
    if languages is None:
        languages = (eval_languages(spec.root, spec.select_data, spec.split) if spec.select_data is not None
                     else split_languages(spec.root, spec.split))
    base = split_root(spec.root, spec.split)
    loaders = {}
    for lang in languages:
        path = Path(base) / lang
        if not path.is_dir():
            raise FileNotFoundError(f"{spec.split} data for {lang!r} not found: {path}")
        root = ([path] if max_samples is None else
                MixSpec(sources=[SourceSpec(name=lang, path=str(path.resolve()))], total_cap=max_samples))
        one = LoaderSpec(root=root, split=spec.split, batch_size=spec.batch_size, img_h=spec.img_h, img_w=spec.img_w,
                         keep_ratio=spec.keep_ratio, rgb=spec.rgb, interpolation=spec.interpolation,
                         labels=spec.labels, shuffle=False, workers=0, rank=spec.rank, world_size=spec.world_size,
                         even_shares=False)
        loaders[lang] = build_torch_loader(one)
    return loaders
