"""Reading LMDB stores: one read-only environment per store and process, shared by every :class:`LmdbReader`.

Environments open lazily (``readonly=True, lock=False, readahead=False``) and are re-opened in every new process, so
a reader is safe to hand to DataLoader workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lmdb

from cllstr.data.store.format import (
    META_KEY,
    NUM_SAMPLES_KEY,
    LmdbFormatError,
    Record,
    image_key,
    imagepath_key,
    is_lmdb_dir,
    label_key,
    parse_meta,
    parse_num_samples,
)

__all__ = ["LmdbReader", "release_env"]

_ENVS: dict[str, lmdb.Environment] = {}
_ENVS_PID = -1


def _shared_env(path: Path, max_readers: int) -> lmdb.Environment:
    """The one read-only environment of ``path`` in this process (LMDB refuses a second one)."""
    global _ENVS_PID
    if _ENVS_PID != os.getpid():
        # Environments inherited through fork must not be used in the child; closing the child's copy unmaps it
        # there (the parent's stays open) and lets py-lmdb open the path again.
        for inherited in _ENVS.values():
            inherited.close()
        _ENVS.clear()
        _ENVS_PID = os.getpid()
    key = os.path.realpath(path)
    env = _ENVS.get(key)
    if env is None:
        try:
            env = lmdb.open(
                key,
                readonly=True,
                lock=False,
                readahead=False,
                meminit=False,
                max_readers=max_readers,
                subdir=os.path.isdir(key),
            )
        except lmdb.Error as e:
            raise LmdbFormatError(f"cannot open LMDB {path}: {e}") from None
        _ENVS[key] = env
    return env


def release_env(path: str | Path) -> None:
    """Close this process's shared environment of ``path`` (e.g. before deleting or replacing the store)."""
    env = _ENVS.pop(os.path.realpath(path), None)
    if env is not None and _ENVS_PID == os.getpid():
        env.close()


class LmdbReader:
    """Read an LMDB store of the published format.

    The environment is opened on first use and re-opened in every new process (after fork or spawn), so one reader
    can be shared by DataLoader workers. Indexing is 0-based: ``r[0]`` is record 1.

    Args:
        path: LMDB directory (or a ``data.mdb`` file).
        max_readers: LMDB reader slots.
    """

    def __init__(self, path: str | Path, max_readers: int = 126) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"LMDB not found: {self.path}")
        if self.path.is_dir() and not is_lmdb_dir(self.path):
            raise LmdbFormatError(f"{self.path} is a directory without data.mdb (not an LMDB)")
        self.max_readers = max_readers
        self._key = os.path.realpath(self.path)
        self._env: lmdb.Environment | None = None
        self._txn: lmdb.Transaction | None = None
        self._pid = -1
        self._len: int | None = None
        self._meta: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_env=None, _txn=None, _pid=-1)
        return state

    def _open(self) -> lmdb.Transaction:
        if self._txn is None or self._pid != os.getpid() or _ENVS.get(self._key) is not self._env:
            # A handle inherited through fork must not be used, and one closed by release_env is gone.
            self._env = _shared_env(self.path, self.max_readers)
            self._txn = self._env.begin(write=False, buffers=False)
            self._pid = os.getpid()
        return self._txn

    def close(self) -> None:
        """Drop this reader's transaction (the process-wide environment stays open for other readers)."""
        if self._txn is not None and self._pid == os.getpid():
            self._txn.abort()
        self._env = self._txn = None
        self._pid = -1

    def __len__(self) -> int:
        if self._len is None:
            self._len = parse_num_samples(self._open().get(NUM_SAMPLES_KEY), str(self.path))
        return self._len

    @property
    def meta(self) -> dict[str, Any]:
        """The ``meta`` JSON object, or ``{}`` for stores written by other tools."""
        if self._meta is None:
            self._meta = parse_meta(self._open().get(META_KEY), str(self.path))
        return self._meta

    def get_raw(self, key: bytes) -> bytes | None:
        """The raw value of ``key``, or None when it is absent (for validators and format tools)."""
        return self._open().get(key)

    def _get(self, key: bytes) -> bytes:
        value = self._open().get(key)
        if value is None:
            raise KeyError(f"{self.path}: key {key.decode('ascii')!r} is missing (num-samples={len(self)})")
        return value

    def _resolve(self, i: int) -> int:
        n = len(self)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"record {i} out of range for {self.path} ({n} records)")
        return j + 1

    def label(self, i: int) -> str:
        """The label of record ``i`` (0-based) without reading its image."""
        key = label_key(self._resolve(i))
        raw = self._get(key)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise LmdbFormatError(f"{self.path}: key {key.decode()!r} is not UTF-8: {e}") from None

    def image(self, i: int) -> bytes:
        """The encoded image bytes of record ``i`` (0-based)."""
        return self._get(image_key(self._resolve(i)))

    def __getitem__(self, i: int) -> Record:
        idx = self._resolve(i)
        label = self.label(i)
        image = self._get(image_key(idx))
        raw_path = self._open().get(imagepath_key(idx))
        path = raw_path.decode("utf-8", errors="replace") if raw_path is not None else None
        return Record(index=idx, image=image, label=label, image_path=path)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def labels(self) -> list[str]:
        """All labels in record order (reads no image)."""
        return [self.label(i) for i in range(len(self))]
