"""Distributed data-parallel training with real engines: torchrun + gloo, 2 CPU processes.

The bar of the design (``cllstr.train.distributed``): N ranks with a global batch B train exactly what one process
with batch B trains (same losses, same weights, up to float reduction order); a run killed on any rank resumes from
``last.pt``, also with another number of ranks; checkpoints of either kind load in the other.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cllstr.checkpoint import load_checkpoint, load_model
from cllstr.data.loading.torch_backend import build_dataloader
from cllstr.train.config import config_to_dict
from cllstr.train.engine import train
from tests.test_train_engine import make_data_root, tiny_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("ddp-data"), ("LAT",), n_train=64, n_val=8)


def _config(data_root: Path, out: Path, **over: object):
    base = dict(batch_size=16, iterations=6, val_interval=3, save_interval=2, log_interval=1, precision="fp32",
                channels_last=False)
    return tiny_config(data_root, out, **{**base, **over})


def _launch(cfg, nproc: int, resume: bool = False) -> subprocess.Popen:
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(cfg.out_dir) / "config.json"
    path.write_text(json.dumps(config_to_dict(cfg)))
    cmd = [sys.executable, "-m", "cllstr.cli.main", "train", "--config", str(path), "--quiet",
           "--nproc-per-node", str(nproc), *(["--resume"] if resume else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _run(cfg, nproc: int, resume: bool = False) -> str:
    proc = _launch(cfg, nproc, resume)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


def _losses(run_dir: Path) -> list[float]:
    with open(run_dir / "train.csv", encoding="utf-8") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _losses_by_iteration(run_dir: Path) -> dict[int, float]:
    """The loss logged at each iteration; a resumed run appends, and its row wins over the killed run's."""
    with open(run_dir / "train.csv", encoding="utf-8") as f:
        return {int(r["iteration"]): float(r["loss"]) for r in csv.DictReader(f)}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "last.pt")["model"]


def _assert_same_weights(a: Path, b: Path, atol: float = 2e-5, rtol: float = 1e-4) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=atol, rtol=rtol, msg=k)


def test_ranks_split_each_global_batch_disjointly(data_root: Path) -> None:
    kw = dict(batch_size=16, seed=3, shuffle=True)
    whole = [b.labels for b in build_dataloader([data_root / "training" / "LAT"], **kw)]
    shares = [[b.labels for b in build_dataloader([data_root / "training" / "LAT"], world_size=2, rank=r, **kw)]
              for r in (0, 1)]
    assert len(whole) == len(shares[0]) == len(shares[1]) == 4
    for step, labels in enumerate(whole):
        assert sorted(shares[0][step] + shares[1][step]) == sorted(labels)
        assert len(shares[0][step]) == len(shares[1][step]) == 8


def test_two_ranks_compute_the_single_process_step(data_root: Path, tmp_path: Path) -> None:
    """One optimiser step: the same loss and the same weights (the model has BatchNorm: global statistics)."""
    single = _config(data_root, tmp_path / "single", iterations=1, val_interval=0)
    train(single, quiet=True)
    _run(_config(data_root, tmp_path / "ddp", iterations=1, val_interval=0, sync_bn=True), 2)
    torch.testing.assert_close(torch.tensor(_losses(tmp_path / "ddp")), torch.tensor(_losses(tmp_path / "single")),
                               atol=1e-5, rtol=1e-6)
    _assert_same_weights(tmp_path / "single", tmp_path / "ddp", atol=1e-6, rtol=0.0)


def test_two_ranks_train_like_one_process(data_root: Path, tmp_path: Path) -> None:
    """Six steps over two epochs, with validation: the same losses and weights up to float reduction order."""
    train(_config(data_root, tmp_path / "single"), quiet=True)
    _run(_config(data_root, tmp_path / "ddp", sync_bn=True), 2)
    one, two = _losses(tmp_path / "single"), _losses(tmp_path / "ddp")
    assert len(one) == len(two) == 6
    torch.testing.assert_close(torch.tensor(two), torch.tensor(one), atol=1e-5, rtol=1e-5)
    _assert_same_weights(tmp_path / "single", tmp_path / "ddp", atol=1e-5, rtol=0.0)
    # rank 0 alone wrote the logs (every rank validated its share); a DDP checkpoint loads in a single process
    assert len(list(csv.DictReader(open(tmp_path / "ddp" / "val.csv", encoding="utf-8")))) == 2
    assert load_model(tmp_path / "ddp" / "last.pt").model.training is False
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(state["rng_ranks"]) == 2 and state["iteration"] == 6
    assert state["data"]["epoch"] == load_checkpoint(tmp_path / "single" / "last.pt")["data"]["epoch"] == 1


def test_a_short_last_batch_keeps_the_ranks_in_step(tmp_path: Path) -> None:
    """17 samples in global batches of 16 over 2 ranks: the last batch (1 sample) is skipped by both ranks, so every
    step is the same global batch on both (before, the rank with an empty share went on to the next epoch's batch,
    and the ranks' epochs drifted apart); a single process trains the 1-sample batch as well."""
    root = make_data_root(tmp_path / "data", ("LAT",), n_train=17, n_val=4)
    over = dict(iterations=4, val_interval=0, save_interval=0, sync_bn=True)
    _run(_config(root, tmp_path / "ddp", **over), 2)
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert state["iteration"] == 4 and state["data"]["epoch"] == 3  # one 16-sample step per epoch
    single = _config(root, tmp_path / "single", **{**over, "batch_size": 16})
    train(single, quiet=True)
    assert load_checkpoint(tmp_path / "single" / "last.pt")["data"]["epoch"] == 1  # 16 + 1, 16 + 1: 2 epochs
    with pytest.raises(ValueError, match="must divide by world_size"):
        build_dataloader([root / "training" / "LAT"], batch_size=15, world_size=2, rank=0)


def _descendant_with_rank(root_pid: int, rank: int) -> int | None:
    """The pid of the torchrun worker with ``RANK=rank`` under ``root_pid``."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    todo, seen = [root_pid], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo.extend(children.get(pid, []))
    for pid in seen:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
    return None


@pytest.mark.parametrize("resume_with", [2, 1])
def test_kill_a_rank_then_resume_with_any_world_size(data_root: Path, tmp_path: Path, resume_with: int) -> None:
    over = dict(iterations=40, val_interval=0, save_interval=2, log_interval=1, sync_bn=True,
                model_kwargs={"out_channels": 64})
    reference = _config(data_root, tmp_path / "reference", **over)
    _run(reference, 2)
    cfg = _config(data_root, tmp_path / "killed", **over)
    proc = _launch(cfg, 2)
    last, deadline, victim = Path(cfg.out_dir) / "last.pt", time.monotonic() + 300, None
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file():
            victim = _descendant_with_rank(proc.pid, 1)
            if victim is not None:
                os.kill(victim, signal.SIGKILL)
                break
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=300)
    assert victim is not None and proc.returncode != 0, f"rank 1 was not killed mid-run:\n{out}"
    stopped_at = load_checkpoint(last)["iteration"]
    assert 0 < stopped_at < 40
    _run(cfg, resume_with, resume=True)
    done, ref = load_checkpoint(last), load_checkpoint(Path(reference.out_dir) / "last.pt")
    assert done["iteration"] == 40 and done["data"]["epoch"] == ref["data"]["epoch"]
    assert done["data"]["position"] == ref["data"]["position"]
    if resume_with == 2:  # the same ranks, the same reduction order: the resumed run is the uninterrupted one
        _assert_same_weights(tmp_path / "reference", tmp_path / "killed", atol=1e-6)
    else:
        # one process from the 2-rank state at ``stopped_at``, on the same global batches: each step is the 2-rank
        # step up to float reduction order (BatchNorm statistics, gradient sums). AdamW turns that 1e-7 noise into
        # lr-sized updates wherever a gradient is near zero, so trajectories separate chaotically over tens of
        # steps (measured: an uninterrupted 1-process run ends 1e-7 to 1e-2 from the 2-rank run, depending on the
        # CPU), and the final weights cannot be compared tightly. The steps right after the resume can: a wrong
        # batch, schedule or optimiser state shows there at once.
        want, got = _losses_by_iteration(tmp_path / "reference"), _losses_by_iteration(tmp_path / "killed")
        assert sorted(got) == sorted(want) == list(range(1, 41))
        for it in range(stopped_at + 1, min(stopped_at + 4, 41)):
            assert got[it] == pytest.approx(want[it], rel=1e-4, abs=1e-5), f"iteration {it}"
        for it in want:
            assert got[it] == pytest.approx(want[it], rel=0.05), f"iteration {it}"


def test_sync_batchnorm_is_batchnorm_outside_a_distributed_step() -> None:
    from cllstr.train.distributed import SyncBatchNorm, convert_sync_batchnorm

    torch.manual_seed(0)

    def net() -> torch.nn.Sequential:
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())

    plain, model = net(), net()
    model.load_state_dict(plain.state_dict())
    bn = model[1]
    convert_sync_batchnorm(model)
    assert isinstance(model[1], SyncBatchNorm) and model.state_dict().keys() == plain.state_dict().keys()
    assert model[1].weight is bn.weight and model[1].running_var is bn.running_var  # shared with the optimizer's
    x = torch.randn(5, 3, 9, 11)
    torch.testing.assert_close(model(x), plain(x))
    torch.testing.assert_close(model[1].running_var, plain[1].running_var)


def sharded_evaluation(root: str, rank: int = 0, world_size: int = 1, reducer: object = None,
                       old_loop_cap: bool = False) -> dict:
    """Validation scores and script-ID confusion of a fixed grouped model over the first 9 of 13 samples per
    language in batches of 4 (the last global batch has 1 sample: ranks 1 and 2 of 3 get an empty share).
    ``old_loop_cap``: uncapped loaders and the evaluation loop's ``max_samples`` (the single-process path before
    sharding)."""
    from cllstr.models import create_model
    from cllstr.scoring.evaluate import evaluate_loaders
    from cllstr.scoring.script_id import evaluate_script_id
    from cllstr.train.config import DataConfig
    from cllstr.train.data import build_charset, build_eval_loaders

    cfg = DataConfig(root=root, select_data="lang_AL")
    charset = build_charset(cfg)
    torch.manual_seed(0)
    model = create_model("grouped", charset.num_classes, backbone="cnn_ctc", backbone_kwargs={"out_channels": 16},
                         heads=2, hidden_size=16).eval()
    with torch.no_grad():
        model.task_logits.normal_(0, 2.0)
    cap = 9
    loaders = build_eval_loaders(cfg, "validation", 4, max_samples=None if old_loop_cap else cap, rank=rank,
                                 world_size=world_size)
    loop_cap = cap if old_loop_cap else None
    report = evaluate_loaders(model, charset, loaders, max_samples=loop_cap, reducer=reducer, num_examples=6)
    script = evaluate_script_id(model, loaders, max_samples=loop_cap, reducer=reducer)
    return {"report": report.to_dict() | {"seconds": 0}, "confusion": script.confusion}


_SHARDED_SCRIPT = """
import json, sys
import torch
from cllstr.train.distributed import init_distributed
from tests.test_train_distributed import sharded_evaluation
dist = init_distributed("cpu")
out = sharded_evaluation(sys.argv[1], dist.rank, dist.world_size, dist)
json.dump(out, open(sys.argv[2] + f".{dist.rank}", "w"))
torch.distributed.destroy_process_group()
"""


def test_sharded_validation_gives_the_single_process_scores(tmp_path: Path) -> None:
    """Every rank scores its share, the sums are reduced: 3 ranks give exactly what one process gives (scores,
    examples in order, script-ID confusion), on every rank, also with empty shares; and the capped loaders give what
    the evaluation loop's own cap gave."""
    root = make_data_root(tmp_path / "data", ("LAT", "ARA"), n_train=8, n_val=13)
    single = sharded_evaluation(str(root))
    assert single == sharded_evaluation(str(root), old_loop_cap=True)
    assert single["report"]["languages"]["LAT"]["samples"] == 9 and sum(map(sum, single["confusion"])) == 18
    (tmp_path / "run.py").write_text(_SHARDED_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "3",
                          str(tmp_path / "run.py"), str(root), str(tmp_path / "out.json")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    for rank in range(3):
        got = json.loads((tmp_path / f"out.json.{rank}").read_text())
        assert got["confusion"] == single["confusion"]
        assert got["report"]["examples"] == single["report"]["examples"]
        for lang, scores in single["report"]["languages"].items():
            assert got["report"]["languages"][lang] == pytest.approx(scores, rel=1e-12, abs=1e-12)
        assert got["report"]["weighted"] == pytest.approx(single["report"]["weighted"], rel=1e-12, abs=1e-12)


def test_sync_batchnorm_function_is_batchnorm_in_one_process() -> None:
    """The one-collective forward/backward (identity reduce): outputs, statistics and float64 gradients equal
    BatchNorm's in training mode, on data whose mean is far from 0 (the variance must not cancel)."""
    from cllstr.train.distributed import SyncBatchNorm, SyncBatchNormFunction

    torch.manual_seed(0)
    x = (torch.randn(5, 3, 4, 7, dtype=torch.float64) * 3 + 40).requires_grad_()
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    def identity(t: torch.Tensor) -> torch.Tensor:
        return t

    y, mean, var, count = SyncBatchNormFunction.apply(x, w, b, 1e-5, identity)
    want = torch.nn.functional.batch_norm(x, None, None, w, b, True, 0.0, 1e-5)
    torch.testing.assert_close(y, want, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(mean, x.mean((0, 2, 3)))
    torch.testing.assert_close(var, x.var((0, 2, 3), unbiased=False))
    assert float(count) == 5 * 4 * 7
    assert torch.autograd.gradcheck(lambda x, w, b: SyncBatchNormFunction.apply(x, w, b, 1e-5, identity)[0],
                                    (x, w, b))
    # the module's training step: running statistics as BatchNorm's (unbiased variance), in float32
    sync, plain = SyncBatchNorm(3), torch.nn.BatchNorm2d(3)
    xf = x.detach().float()
    out = sync.sync_forward(xf, identity)
    torch.testing.assert_close(out, plain(xf), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sync.running_mean, plain.running_mean)
    torch.testing.assert_close(sync.running_var, plain.running_var, atol=1e-3, rtol=1e-4)
