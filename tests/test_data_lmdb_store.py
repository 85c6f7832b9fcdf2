"""LMDB store: byte compatibility with the published format, atomic/resumable writes, robust reads."""

from __future__ import annotations

import io
import json
import multiprocessing
import pickle

import lmdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cllstr.data.store.format import LmdbFormatError, Record, temp_path
from cllstr.data.store.reader import LmdbReader, release_env
from cllstr.data.store.writer import LmdbWriter


def png(seed: int, w: int = 24, h: int = 10) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write_reference_style(path, samples, num_samples=None, with_paths=True):
    """An independent writer doing what the public create_lmdb_dataset.py does, with raw lmdb calls."""
    env = lmdb.open(str(path), map_size=1 << 26)
    cache = {}
    for cnt, (image, label) in enumerate(samples, 1):
        cache[b"image-%09d" % cnt] = image
        cache[b"label-%09d" % cnt] = label.encode()
        if with_paths:
            cache[b"imagepath-%09d" % cnt] = f"imgs/{cnt}.png".encode()
    if num_samples is not False:
        cache[b"num-samples"] = str(len(samples) if num_samples is None else num_samples).encode()
    with env.begin(write=True) as txn:
        for k, v in cache.items():
            txn.put(k, v)
    env.close()


SAMPLES = [(png(i), lab) for i, lab in enumerate(["hello", "한국어", "क्ष\tमा", "مرحبا", "日本語"])]


def test_reader_reads_reference_written_store(tmp_path):
    path = tmp_path / "ref"
    write_reference_style(path, SAMPLES)
    r = LmdbReader(path)
    assert len(r) == 5
    assert r.meta == {}
    for i, (image, label) in enumerate(SAMPLES):
        rec = r[i]
        assert rec == Record(index=i + 1, image=image, label=label, image_path=f"imgs/{i + 1}.png")
    assert r[-1].index == 5
    assert r.labels()[2] == "क्ष\tमा"
    with pytest.raises(IndexError, match="out of range"):
        r[5]


def test_writer_output_is_the_published_format(tmp_path):
    path = tmp_path / "out"
    with LmdbWriter(path, meta={"script": "KOR", "source": "unit"}, commit_every=2) as w:
        for i, (image, label) in enumerate(SAMPLES):
            assert w.add(image, label, image_path=f"p/{i}.png" if i % 2 == 0 else None) == i + 1
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        keys = {bytes(k) for k, _ in txn.cursor()}
        assert txn.get(b"num-samples") == b"5"
        for i, (image, label) in enumerate(SAMPLES, 1):
            assert txn.get(b"image-%09d" % i) == image
            assert txn.get(b"label-%09d" % i) == label.encode("utf-8")
        assert txn.get(b"imagepath-000000001") == b"p/0.png"
        assert txn.get(b"imagepath-000000002") is None
        meta = json.loads(txn.get(b"meta"))
    env.close()
    expected = {b"num-samples", b"meta"} | {b"image-%09d" % i for i in range(1, 6)}
    expected |= {b"label-%09d" % i for i in range(1, 6)}
    expected |= {b"imagepath-%09d" % i for i in (1, 3, 5)}
    assert keys == expected
    assert meta["script"] == "KOR" and meta["stats"]["num_samples"] == 5
    assert not temp_path(path).exists()


def test_writer_normalizes_labels_to_nfc(tmp_path):
    with LmdbWriter(tmp_path / "s") as w:
        w.add(png(0), "e\u0301")
    assert LmdbReader(tmp_path / "s")[0].label == "\u00e9"


def test_store_appears_only_on_close_and_resumes(tmp_path):
    path = tmp_path / "store"
    w = LmdbWriter(path, commit_every=3)
    for i in range(7):
        w.add(png(i), f"w{i}")
    assert not path.exists() and temp_path(path).exists()
    assert w.num_committed == 6 and w.num_samples == 7
    w.abort()  # an interrupted run: committed records stay in the temp dir
    assert not path.exists()
    w2 = LmdbWriter(path, resume=True, commit_every=3)
    assert w2.num_committed == 7
    for i in range(7, 10):
        w2.add(png(i), f"w{i}")
    w2.close()
    r = LmdbReader(path)
    assert [rec.label for rec in r] == [f"w{i}" for i in range(10)]
    assert r.meta["stats"]["num_samples"] == 10


def test_exception_inside_context_leaves_resumable_temp(tmp_path):
    path = tmp_path / "s"
    with pytest.raises(RuntimeError, match="boom"):
        with LmdbWriter(path, commit_every=100) as w:
            w.add(png(0), "a")
            raise RuntimeError("boom")
    assert not path.exists()
    with LmdbWriter(path, resume=True) as w:
        assert w.num_samples == 1
        w.add(png(1), "b")
    assert LmdbReader(path).labels() == ["a", "b"]


def test_existing_store_needs_overwrite_or_resume(tmp_path):
    path = tmp_path / "s"
    with LmdbWriter(path) as w:
        w.add(png(0), "old")
    with pytest.raises(FileExistsError, match="already exists"):
        LmdbWriter(path)
    release_env(path)
    with LmdbWriter(path, overwrite=True) as w:
        w.add(png(1), "new")
    release_env(path)
    assert LmdbReader(path).labels() == ["new"]
    with LmdbWriter(path, resume=True) as w:
        w.add(png(2), "appended")
    release_env(path)
    assert LmdbReader(path).labels() == ["new", "appended"]


def test_map_grows_when_full(tmp_path):
    big = bytes(200_000)
    with LmdbWriter(tmp_path / "s", map_size=1 << 16, commit_every=4) as w:
        for i in range(12):
            w.add(big, str(i))
    r = LmdbReader(tmp_path / "s")
    assert len(r) == 12 and r[11].image == big


def test_resume_store_written_by_other_tool_without_num_samples(tmp_path):
    path = tmp_path / "s"
    write_reference_style(temp_path(path), SAMPLES[:3], num_samples=False)
    with LmdbWriter(path, resume=True) as w:
        assert w.num_committed == 3
        w.add(SAMPLES[3][0], SAMPLES[3][1])
    assert len(LmdbReader(path)) == 4


def _child_labels(reader, q):
    q.put(reader.labels())


def test_reader_is_lazy_picklable_and_fork_safe(tmp_path):
    path = tmp_path / "s"
    write_reference_style(path, SAMPLES)
    r = LmdbReader(path)
    assert r._env is None  # nothing opened before first use
    assert r[0].label == "hello"
    clone = pickle.loads(pickle.dumps(r))
    assert clone._env is None and clone[1].label == "한국어"
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_labels, args=(r, q))
    p.start()
    child = q.get(timeout=30)
    p.join(30)
    assert p.exitcode == 0 and child == [lab for _, lab in SAMPLES]
    assert r[4].label == "日本語"  # the parent's handle still works after the child closed its copy


def test_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        LmdbReader(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LmdbFormatError, match="without data.mdb"):
        LmdbReader(tmp_path / "plain")
    path = tmp_path / "nonum"
    write_reference_style(path, SAMPLES, num_samples=False)
    with pytest.raises(LmdbFormatError, match="'num-samples' is missing"):
        len(LmdbReader(path))
    path = tmp_path / "toomany"
    write_reference_style(path, SAMPLES, num_samples=7)
    r = LmdbReader(path)
    assert len(r) == 7
    with pytest.raises(KeyError, match="label-000000006"):
        r[5]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.one_of(st.integers(-3, 9).map(lambda n: str(n).encode()), st.binary(max_size=6), st.none()),
    cut=st.integers(0, 40),
    drop=st.sets(st.integers(1, 4), max_size=3),
    garbage_label=st.booleans(),
)
def test_reader_fuzz_broken_stores(tmp_path_factory, count, cut, drop, garbage_label):
    """Truncated values, missing keys and wrong counts only ever raise the documented errors."""
    path = tmp_path_factory.mktemp("fuzz") / "s"
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(1, 5):
            if i not in drop:
                txn.put(b"image-%09d" % i, png(i)[:cut])
                txn.put(b"label-%09d" % i, b"\xff\xfe" if garbage_label and i == 2 else f"l{i}".encode())
        if count is not None:
            txn.put(b"num-samples", count)
    env.close()
    r = LmdbReader(path)
    try:
        n = len(r)
    except LmdbFormatError:
        assert count is None or not count.strip().lstrip(b"-").isdigit() or int(count) < 0
        return
    assert n == int(count)
    for i in range(n):
        try:
            rec = r[i]
        except KeyError as e:
            assert "missing" in str(e)
            assert i + 1 in drop or i + 1 > 4
        except LmdbFormatError as e:
            assert "not UTF-8" in str(e) and i == 1
        else:
            assert rec.image == png(i + 1)[:cut] and rec.label == f"l{i + 1}"
    release_env(path)
