"""Writing LMDB stores atomically and resumably (:class:`LmdbWriter`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import lmdb

from cllstr.data.store.format import (
    META_KEY,
    NUM_SAMPLES_KEY,
    TEMP_SUFFIX,
    image_key,
    imagepath_key,
    is_lmdb_dir,
    label_key,
    parse_meta,
    parse_num_samples,
    temp_path,
)
from cllstr.data.store.reader import release_env
from cllstr.text.normalize import normalize_label

__all__ = ["LmdbWriter"]

_MAX_MAP_SIZE = 1 << 40


class LmdbWriter:
    """Write an LMDB store in the published format, atomically.

    Args:
        path: Target directory; it appears only when :meth:`close` succeeds.
        map_size: Initial map size in bytes; doubled whenever a commit hits ``MapFullError``.
        commit_every: Records per transaction.
        resume: Continue an interrupted write (reuse ``<path>.lmdb.tmp`` and its committed records), or append to a
            finished store at ``path``.
        meta: JSON-serialisable metadata stored under the ``meta`` key (merged with previous meta when resuming).
        overwrite: Replace an existing store at ``path`` on close (otherwise an existing ``path`` is an error).
        normalize: NFC-normalise labels before storing them.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        map_size: int = 1 << 28,
        commit_every: int = 1000,
        resume: bool = False,
        meta: dict | None = None,
        overwrite: bool = False,
        normalize: bool = True,
    ) -> None:
        if commit_every < 1:
            raise ValueError(f"commit_every must be >= 1, got {commit_every}")
        self.path = Path(path)
        self.tmp = temp_path(self.path)
        self.commit_every = commit_every
        self.normalize = normalize
        self._overwrite = overwrite
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_records = 0
        self._closed = False
        self._label_chars = 0
        self._max_label_len = 0
        exists = self.path.exists()
        if exists and not is_lmdb_dir(self.path):
            raise FileExistsError(f"{self.path} exists and is not an LMDB directory")
        if exists and (resume or overwrite):
            release_env(self.path)  # py-lmdb refuses a second open of the same file in one process
        if resume and not self.tmp.exists() and exists:
            os.replace(self.path, self.tmp)  # append to a finished store: build it again in the temp dir
        elif exists and not overwrite and not resume:
            raise FileExistsError(f"LMDB {self.path} already exists (pass overwrite=True or resume=True)")
        if not resume and self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        size = max(map_size, os.path.getsize(self.tmp / "data.mdb") if (self.tmp / "data.mdb").exists() else 0)
        self._env = lmdb.open(str(self.tmp), map_size=size, subdir=True, meminit=False, sync=False)
        with self._env.begin() as txn:
            raw_n = txn.get(NUM_SAMPLES_KEY)
            old_meta = parse_meta(txn.get(META_KEY), str(self.tmp))
        self._committed = parse_num_samples(raw_n, str(self.tmp)) if raw_n is not None else 0
        if self._committed == 0 and resume:
            self._committed = self._count_records()
        stats = old_meta.get("stats", {})
        self._label_chars = int(stats.get("label_chars", 0))
        self._max_label_len = int(stats.get("max_label_len", 0))
        self.meta: dict[str, Any] = {**old_meta, **(meta or {})}
        json.dumps(self.meta)  # fail now, not at close, on metadata that cannot be stored

    def _count_records(self) -> int:
        """Highest contiguous index with both an image and a label (stores written by other tools mid-way)."""
        n = 0
        with self._env.begin() as txn:
            while txn.get(image_key(n + 1)) is not None and txn.get(label_key(n + 1)) is not None:
                n += 1
        return n

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def num_samples(self) -> int:
        """Records added so far (committed or pending)."""
        return self._committed + self._pending_records

    @property
    def num_committed(self) -> int:
        """Records safely on disk (what a resumed write starts after)."""
        return self._committed

    def add(self, image: bytes, label: str, image_path: str | None = None) -> int:
        """Append one record.

        Args:
            image: Encoded image bytes (PNG/JPEG/...), stored untouched.
            label: Label text (NFC-normalised unless ``normalize=False``).
            image_path: Optional source path stored under ``imagepath-%09d``.

        Returns:
            The 1-based index of the new record.
        """
        if self._closed:
            raise RuntimeError(f"LmdbWriter for {self.path} is closed")
        if not isinstance(image, (bytes, bytearray, memoryview)):
            raise TypeError(f"image must be bytes, got {type(image).__name__}")
        if self.normalize:
            label = normalize_label(label)
        idx = self.num_samples + 1
        self._pending.append((image_key(idx), bytes(image)))
        self._pending.append((label_key(idx), label.encode("utf-8")))
        if image_path is not None:
            self._pending.append((imagepath_key(idx), str(image_path).encode("utf-8")))
        self._pending_records += 1
        self._label_chars += len(label)
        self._max_label_len = max(self._max_label_len, len(label))
        if self._pending_records >= self.commit_every:
            self.commit()
        return idx

    def _meta_bytes(self, n: int) -> bytes:
        stats = dict(self.meta.get("stats", {}))
        stats.update(num_samples=n, label_chars=self._label_chars, max_label_len=self._max_label_len)
        if n:
            stats["mean_label_len"] = round(self._label_chars / n, 3)
        return json.dumps({**self.meta, "stats": stats}, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def commit(self) -> None:
        """Write the pending records (and the running ``num-samples``/``meta``) in one transaction."""
        n = self.num_samples
        items = [*self._pending, (NUM_SAMPLES_KEY, str(n).encode("ascii")), (META_KEY, self._meta_bytes(n))]
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    txn.cursor().putmulti(items)
                break
            except lmdb.MapFullError:
                size = self._env.info()["map_size"] * 2
                if size > _MAX_MAP_SIZE:
                    raise
                self._env.set_mapsize(size)
        self._pending.clear()
        self._pending_records = 0
        self._committed = n

    def abort(self) -> None:
        """Commit what was added and close, leaving the temp dir for ``resume=True`` (no rename)."""
        if self._closed:
            return
        try:
            self.commit()
        finally:
            self._env.close()
            self._closed = True

    def close(self) -> None:
        """Commit, write ``num-samples`` and ``meta``, and rename the finished store to ``path``."""
        if self._closed:
            return
        self.commit()
        self._env.sync(True)
        self._env.close()
        self._closed = True
        if self.path.exists():
            if not self._overwrite:
                raise FileExistsError(f"LMDB {self.path} appeared while writing; finished store left at {self.tmp}")
            release_env(self.path)
            old = self.path.with_name(self.path.name + TEMP_SUFFIX + ".old")
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            shutil.rmtree(old)
        else:
            os.replace(self.tmp, self.path)
