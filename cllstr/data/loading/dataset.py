"""Torch datasets over LMDB stores: one :class:`LmdbDataset` per LMDB and a :class:`MixtureDataset` of several.

A sample is a :data:`~cllstr.data.loading.batch.Sample` ``(uint8 array (H, W, C), label, script)``, or None for a
record whose image does not decode; it is skipped and counted in a counter shared with the workers (the reference
instead trains on a black image labelled ``[dummy_label]``). Labels are read once at construction when a length or
charset filter is asked for (the filters are the :class:`~cllstr.data.loading.spec.LoaderSpec`'s); filtered records
and out-of-charset characters are counted, never dropped silently. ``__getitems__`` (what the DataLoader calls for a
whole batch) reads the batch's records in order and decodes them on ``decode_threads`` threads into one
:class:`~cllstr.data.loading.batch.Batch`; ``ds[i]`` goes through the same path with one record.
"""

from __future__ import annotations

import collections
import functools
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from cllstr.data.loading.batch import Batch, Sample, make_batch
from cllstr.data.loading.decode import ImageTransform, transform_batch
from cllstr.data.loading.spec import LoaderSpec
from cllstr.data.mixture.select_data import script_of_name, select_indices
from cllstr.data.store.format import LmdbFormatError
from cllstr.data.store.reader import LmdbReader
from cllstr.scripts import guess_script
from cllstr.text.charset import Charset, tokenize
from cllstr.text.normalize import from_reference_label, normalize_label

__all__ = ["LABEL_READERS", "RECORD_ERRORS", "LmdbDataset", "MixtureDataset"]

log = logging.getLogger(__name__)

#: A record that cannot be read at all (a label that is not UTF-8, a missing ``label-``/``image-`` key): the loader
#: skips it and counts it like an undecodable image; a label filter counts it as ``unreadable``.
RECORD_ERRORS = (LmdbFormatError, KeyError)

#: How stored labels become training labels: ``join`` undoes the reference's tab-joined tokens (keeping Arabic
#: presentation forms, so the reference charset still applies), ``logical`` also maps presentation forms to base
#: letters, ``raw`` keeps the stored text as is.
LABEL_READERS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "join": lambda s: from_reference_label(s, unshape=False),
    "logical": lambda s: from_reference_label(s, unshape=True),
    "nfc": normalize_label,
}

_guess_script = functools.lru_cache(maxsize=1 << 16)(guess_script)


class LmdbDataset(Dataset):
    """One LMDB store as a map-style dataset.

    Args:
        path: LMDB directory.
        transform: Bytes → ``uint8`` array; defaults to a 32x100 grey fixed resize.
        name: Source name (for logs and per-script reporting).
        script: Script of every record; else ``meta["script"]``, the name's script, or a guess per label.
        spec: The label filters and reader: ``labels`` (a key of :data:`LABEL_READERS`), ``max_label_length``
            (reference ``--batch_max_length``), ``min_label_length``, ``drop_unknown`` (deep-text-recognition-benchmark
            behaviour).
        charset: Count out-of-charset characters (and drop such records with ``spec.drop_unknown``); also measures
            label lengths in its tokens.
        drop_empty: Drop records with an empty label.
        decode_threads: Threads that decode one batch in ``__getitems__`` (same output for any number).
    """

    def __init__(
        self,
        path: str | Path,
        transform: ImageTransform | None = None,
        *,
        name: str | None = None,
        script: str | None = None,
        spec: LoaderSpec | None = None,
        charset: Charset | None = None,
        drop_empty: bool = True,
        decode_threads: int = 1,
    ) -> None:
        spec = spec or LoaderSpec()
        if spec.labels not in LABEL_READERS:
            raise ValueError(f"unknown label reader {spec.labels!r}; known: {', '.join(LABEL_READERS)}")
        self.path = Path(path)
        self.reader = LmdbReader(self.path)
        self.transform = transform or ImageTransform()
        self.name = name or self.path.name
        self.script = script or self.reader.meta.get("script") or script_of_name(self.name)
        self._read_label = LABEL_READERS[spec.labels]
        self.decode_threads = _check_threads(decode_threads)
        self.num_filtered: collections.Counter[str] = collections.Counter()
        self.unknown_chars: collections.Counter[str] = collections.Counter()
        self._corrupt = multiprocessing.get_context().Value("q", 0)
        n = len(self.reader)
        if spec.max_label_length is None and spec.min_label_length <= 1 and charset is None and not drop_empty:
            self.indices = np.arange(n, dtype=np.int64)
        else:
            self.indices = self._filter(n, spec, charset, drop_empty)

    def _filter(self, n: int, spec: LoaderSpec, charset: Charset | None, drop_empty: bool) -> np.ndarray:
        keep = []
        max_len = spec.max_label_length
        mode = charset.mode if charset is not None else "grapheme"
        for i in range(n):
            try:
                label = self._read_label(self.reader.label(i))
            except RECORD_ERRORS:
                self.num_filtered["unreadable"] += 1
                continue
            if drop_empty and not label:
                self.num_filtered["empty"] += 1
                continue
            if max_len is not None or spec.min_label_length > 1:
                length = len(charset.split(label)) if charset is not None else len(tokenize(label, mode))
                if max_len is not None and length > max_len:
                    self.num_filtered["too_long"] += 1
                    continue
                if length < spec.min_label_length:
                    self.num_filtered["too_short"] += 1
                    continue
            if charset is not None:
                bad = charset.unknown_chars(label)
                if bad:
                    self.unknown_chars.update(bad)
                    if spec.drop_unknown:
                        self.num_filtered["unknown_char"] += 1
                        continue
            keep.append(i)
        if self.num_filtered:
            log.info("%s: filtered %s of %d records", self.path, dict(self.num_filtered), n)
        return np.asarray(keep, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_corrupt(self) -> int:
        """Records skipped so far because their image did not decode (summed over all worker processes)."""
        return int(self._corrupt.value)

    def label(self, i: int) -> str:
        """Training label of sample ``i`` (reads no image)."""
        return self._read_label(self.reader.label(int(self.indices[i])))

    def _record(self, i: int) -> tuple[int, bytes, str, str]:
        """``(record index, encoded image, label, script)`` of sample ``i``."""
        rec = self.reader[int(self.indices[i])]
        label = self._read_label(rec.label)
        return rec.index, rec.image, label, self.script or _guess_script(label) or ""

    def _skip(self, index: int, error: Exception) -> None:
        with self._corrupt.get_lock():
            self._corrupt.value += 1
        log.warning("%s: skipping corrupt record %d: %s", self.path, index, error)

    def _read(self, i: int) -> tuple[int, bytes, str, str] | None:
        """:meth:`_record`, or None (skipped and counted) for an unreadable record."""
        try:
            return self._record(i)
        except RECORD_ERRORS as e:
            self._skip(int(self.indices[i]) + 1, e)
            return None

    def __getitem__(self, i: int) -> Sample | None:
        return _load_samples([(self, int(i))], 1)[1][0]

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        return _load_batch([(self, int(i)) for i in indices], self.decode_threads, self.transform)


class MixtureDataset(Dataset):
    """Concatenation of sources, each a list of :class:`LmdbDataset` with kept indices (after caps).

    Args:
        sources: ``(name, datasets)`` pairs; a source with several LMDBs (a folder of stores) is capped as a whole.
        caps: Per-source caps (None: all), same order as ``sources``.
        cap_modes: ``"first"`` or ``"random"`` per source.
        total_cap: Cap of the concatenation, applied after the per-source caps.
        total_cap_mode: ``"first"`` or ``"random"``.
        seed: Seed of random caps.
        decode_threads: Threads that decode one batch in ``__getitems__`` (same output for any number).
    """

    def __init__(
        self,
        sources: Sequence[tuple[str, Sequence[LmdbDataset]]],
        caps: Sequence[int | None] | None = None,
        cap_modes: Sequence[str] | None = None,
        total_cap: int | None = None,
        total_cap_mode: str = "first",
        seed: int = 0,
        decode_threads: int = 1,
    ) -> None:
        self.decode_threads = _check_threads(decode_threads)
        if not sources:
            raise ValueError("a mixture needs at least one source")
        caps = list(caps) if caps is not None else [None] * len(sources)
        cap_modes = list(cap_modes) if cap_modes is not None else ["first"] * len(sources)
        self.names = [name for name, _ in sources]
        self.datasets: list[LmdbDataset] = []
        ds_ids, locals_, src_ids = [], [], []
        for s, (name, dsets) in enumerate(sources):
            first = len(self.datasets)
            self.datasets.extend(dsets)
            lengths = [len(d) for d in dsets]
            kept = select_indices(sum(lengths), caps[s], cap_modes[s], seed, key=name)
            bounds = np.cumsum([0, *lengths])
            which = np.searchsorted(bounds, kept, side="right") - 1
            ds_ids.append(which + first)
            locals_.append(kept - bounds[which])
            src_ids.append(np.full(len(kept), s, dtype=np.int64))
            if caps[s] is not None and caps[s] > sum(lengths):
                log.warning("source %s: cap %d exceeds its %d records; using all", name, caps[s], sum(lengths))
        ds_id, local, src = (np.concatenate(a).astype(np.int64) for a in (ds_ids, locals_, src_ids))
        keep = select_indices(len(ds_id), total_cap, total_cap_mode, seed, key="total")
        self._ds_id, self._local, self.source_ids = ds_id[keep], local[keep], src[keep]

    def __len__(self) -> int:
        return len(self._ds_id)

    def source_sizes(self) -> dict[str, int]:
        """Samples per source after caps."""
        counts = np.bincount(self.source_ids, minlength=len(self.names))
        return {n: int(c) for n, c in zip(self.names, counts, strict=True)}

    @property
    def num_corrupt(self) -> int:
        """Corrupt records skipped so far, over all sources and workers."""
        return sum(d.num_corrupt for d in self.datasets)

    @property
    def unknown_chars(self) -> collections.Counter[str]:
        """Out-of-charset characters counted when the datasets were built."""
        total: collections.Counter[str] = collections.Counter()
        for d in self.datasets:
            total.update(d.unknown_chars)
        return total

    def __getitem__(self, i: int) -> Sample | None:
        return self.datasets[self._ds_id[i]][int(self._local[i])]

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        items = [(self.datasets[d], int(j)) for d, j in zip(self._ds_id[idx], self._local[idx], strict=True)]
        return _load_batch(items, self.decode_threads, self.datasets[0].transform)


def _check_threads(threads: int) -> int:
    if threads < 1:
        raise ValueError(f"decode_threads must be at least 1, got {threads}")
    return threads


def _load_samples(
    items: Sequence[tuple[LmdbDataset, int]], threads: int
) -> tuple[np.ndarray, list[Sample | None]]:
    """Samples ``dataset[i]`` of ``items``, read in order and decoded on ``threads`` threads into one array.

    Returns:
        ``images``: ``(B, H, W, C)`` ``uint8``, and the ``B`` samples whose images are its rows (None: skipped).
    """
    shapes = {(d.transform.img_h, d.transform.img_w, d.transform.channels) for d, _ in items}
    if len(shapes) > 1:
        raise ValueError(f"the datasets of one batch must share the image size and channels, got {sorted(shapes)}")
    records = [d._read(i) for d, i in items]
    bufs = [r[1] if r is not None else b"" for r in records]
    images, errors = transform_batch(bufs, [d.transform for d, _ in items], threads)
    samples: list[Sample | None] = []
    for (d, _), record, img, err in zip(items, records, images, errors, strict=True):
        if record is None:  # already skipped and counted
            samples.append(None)
        elif err is None:
            samples.append((img, record[2], record[3]))
        else:
            d._skip(record[0], err)
            samples.append(None)
    return images, samples


def _load_batch(items: Sequence[tuple[LmdbDataset, int]], threads: int, transform: ImageTransform) -> Batch:
    """The :class:`Batch` of ``items`` (see :func:`_load_samples`); ``transform`` gives an empty batch's shape."""
    images, samples = _load_samples(items, threads)
    return make_batch(images, samples, (transform.channels, transform.img_h, transform.img_w))
