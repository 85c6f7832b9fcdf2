"""Small public functions that no end-to-end test reaches in-process (found with the coverage audit of issue #13).

Functions that only run in child processes (the study worker's ``main``, torchrun ranks), inside DALI's traced
pipeline definition, or on a GPU (``Batch.pin_memory``) are exercised there, not here.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cllstr.atomic import atomic_write_bytes
from cllstr.cli.main import app, run
from cllstr.data.loading.batch import Batch
from cllstr.data.mixture.sampler import RatioBatchSampler, ShardedBatchSampler
from cllstr.study.progress import RunState, StudyProgress, last_train_record
from cllstr.text.charset import Charset
from cllstr.text.ctc import encode_targets
from cllstr.text.lexicon import Lexicon
from cllstr.train.ctc import CTCLoss
from cllstr.train.distributed import DistContext
from cllstr.train.engine import TrainingInterrupted, unwrap
from cllstr.train.monitor import RunMonitor
from cllstr.train.objective import Objective


def test_atomic_write_bytes_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "blob.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"\x00second")
    assert path.read_bytes() == b"\x00second" and [p.name for p in path.parent.iterdir()] == ["blob.bin"]


def test_console_entry_point_and_study_presets(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["cllstr", "--version"])
    with pytest.raises(SystemExit) as e:
        run()
    assert e.value.code in (0, None) and "cllstr" in capsys.readouterr().out
    res = CliRunner().invoke(app, ["study", "presets"])
    assert res.exit_code == 0 and "cll-joint" in res.output and "lowres-seqmodel" in res.output


def test_batch_to_keeps_labels_and_moves_images() -> None:
    batch = Batch(torch.ones(2, 1, 4, 5), ["a", "b"], ["LAT", "LAT"], 1)
    moved = batch.to("cpu")
    assert moved.labels == batch.labels and moved.num_skipped == 1 and torch.equal(moved.images, batch.images)
    assert len(moved) == 2


def test_mixture_counts_unknown_characters(tmp_path: Path) -> None:
    from cllstr.data.loading.spec import LoaderSpec
    from cllstr.data.loading.torch_backend import build_dataset
    from cllstr.data.store.writer import LmdbWriter

    buf = io.BytesIO()
    Image.new("RGB", (30, 20), "white").save(buf, "PNG")
    with LmdbWriter(tmp_path / "a") as w:
        for label in ("abc", "abz", "zzq"):
            w.add(buf.getvalue(), label)
    ds, _ = build_dataset(LoaderSpec(root=[tmp_path / "a"]), Charset(list("abc")))
    assert dict(ds.unknown_chars) == {"z": 3, "q": 1} and len(ds) == 3  # counted, not dropped


def test_sharded_sampler_forwards_the_epoch() -> None:
    inner = RatioBatchSampler(np.array([0] * 8 + [1] * 8), [0.5, 0.5], 4, num_batches=2, seed=1)
    sharded = ShardedBatchSampler(inner, rank=1, world_size=2)
    sharded.set_epoch(5)
    assert inner.epoch == 5 and len(sharded) == 2
    batches = list(sharded)
    inner.set_epoch(5)
    assert batches == [b[1::2] for b in inner]
    with pytest.raises(ValueError, match="rank"):
        ShardedBatchSampler(inner, rank=2, world_size=2)


def test_even_shares_cut_the_short_batch_to_a_multiple_of_the_world() -> None:
    from torch.utils.data import BatchSampler, SequentialSampler

    for n, world, want in [(21, 2, [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]),  # 21 = 8 + 8 + 5 -> 4 of 5 kept
                           (17, 2, [[0, 2, 4, 6], [8, 10, 12, 14]]),  # the last batch of 1 is skipped by every rank
                           (16, 2, [[0, 2, 4, 6], [8, 10, 12, 14]])]:
        inner = BatchSampler(SequentialSampler(range(n)), 8, drop_last=False)
        even = ShardedBatchSampler(inner, rank=0, world_size=world, even=True)
        assert list(even) == want and len(even) == len(want)
        other = list(ShardedBatchSampler(inner, rank=1, world_size=world, even=True))
        assert [len(b) for b in other] == [len(b) for b in want]  # the same share sizes on every rank: no rank idles
    keep = ShardedBatchSampler(BatchSampler(SequentialSampler(range(17)), 8, drop_last=False), 1, 2)
    assert list(keep) == [[1, 3, 5, 7], [9, 11, 13, 15], []] and len(keep) == 3  # evaluation keeps every sample


def test_study_progress_view(tmp_path: Path) -> None:
    done, running = tmp_path / "a", tmp_path / "b"
    running.mkdir()
    rows = [{"kind": "val", "iteration": 5}, {"kind": "train", "iteration": 10, "loss": 1.5}]
    (running / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{partial", encoding="utf-8")
    assert last_train_record(running)["iteration"] == 10 and last_train_record(done) is None
    runs = [RunState("A", done, 100, state="done", seconds=50.0),
            RunState("B", running, 100, state="running", started=time.monotonic() - 20)]
    view = StudyProgress("s", runs, parallel=1)
    assert view.counts() == {"done": 1, "skipped": 0, "failed": 0, "running": 1, "pending": 0}
    assert view.seconds_per_iteration() == pytest.approx(0.5)
    eta = view.eta()
    assert eta is not None and eta > 0
    assert view.line().startswith("s: 1/2 runs done, 1 running, 0 failed, ETA ")


def test_lexicon_trie_size() -> None:
    lex = Lexicon(["ab", "abc", "b"], Charset(list("abc")))
    assert lex.num_nodes == 5  # root, a, ab, abc, b


def test_loss_counters_reset() -> None:
    from cllstr.train.attn import AttnLoss

    loss = CTCLoss()
    enc = encode_targets(Charset(list("ab")), ["ab", "aa"])
    loss(torch.randn(2, 2, 3), enc)  # T=2: "aa" needs 3 frames, infeasible
    assert loss.seen == 2 and loss.infeasible == 1
    loss.reset()
    assert loss.seen == loss.infeasible == 0
    attn = AttnLoss()
    attn.seen, attn.infeasible = 3, 1
    attn.reset()
    assert attn.seen == attn.infeasible == 0


def test_single_process_dist_context_is_the_identity() -> None:
    ctx = DistContext()
    assert not ctx.enabled and ctx.is_main
    assert ctx.all_sum([1.5, 2.0]) == [1.5, 2.0] and ctx.gather({"x": 1}) == [{"x": 1}]
    ctx.barrier()


def test_trainer_helpers(tmp_path: Path, capsys) -> None:
    e = TrainingInterrupted(7, tmp_path / "last.pt")
    assert e.iteration == 7 and "iteration 7" in str(e) and str(tmp_path / "last.pt") in str(e)
    model = torch.nn.Linear(2, 2)
    assert unwrap(model) is model and unwrap(torch.compile(model)) is model
    mon = RunMonitor(tmp_path, 10)
    mon.warn("low disk")
    mon.close()
    assert "warning" in capsys.readouterr().err
    quiet = RunMonitor(tmp_path / "rank1", 10, write=False)
    quiet.record("train", {"iteration": 1})
    quiet.close()
    assert not (tmp_path / "rank1").exists()  # non-zero ranks write nothing


def test_objective_base_contract() -> None:
    obj = Objective(CTCLoss())
    assert obj.state_dict() == {} and obj.load_state_dict({}) is None
    with pytest.raises(NotImplementedError):
        obj.encode(Charset(["a"]), ["a"], None)


def test_image_backgrounds_and_faces_covering(tmp_path: Path) -> None:
    from cllstr.synth.appearance import ImageBackgrounds
    from cllstr.synth.fonts import faces_covering

    with pytest.raises(FileNotFoundError, match="not a directory"):
        ImageBackgrounds(tmp_path / "none")
    (tmp_path / "bg").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        ImageBackgrounds(tmp_path / "bg")
    Image.fromarray(np.full((60, 200, 3), (10, 200, 30), np.uint8)).save(tmp_path / "bg" / "green.png")
    crop = ImageBackgrounds(tmp_path / "bg")(np.random.default_rng(0), 32, 100, (0, 0, 0))
    assert crop.shape == (32, 100, 3) and (crop.reshape(-1, 3) == (10, 200, 30)).all()
    assert faces_covering("abc", []) == []


@pytest.mark.cuda
def test_batch_pin_memory_on_a_gpu_machine() -> None:
    batch = Batch(torch.ones(2, 1, 4, 5), ["a", "b"], ["LAT", "LAT"], 0)
    pinned = batch.pin_memory()
    assert pinned.images.is_pinned() and pinned.labels == batch.labels
    assert torch.equal(pinned.to("cuda", non_blocking=True).images.cpu(), batch.images)
