"""Training engine: end-to-end tiny runs on a synthetic LMDB root, exact resume, logs, best checkpoint."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from cllstr.checkpoint import load_checkpoint
from cllstr.data.store.writer import LmdbWriter
from cllstr.text.charset import Charset
from cllstr.train.config import TrainConfig, apply_overrides
from cllstr.train.engine import Trainer, train

WORDS = {
    "LAT": ["cat", "dog", "tree", "Hello", "sun", "moon", "stop", "open", "book", "RED"],
    "ARA": ["سلام", "كتاب", "باب", "قمر", "شمس"],
}


def png_of(text: str, seed: int) -> bytes:
    """A small PNG of ``text`` (default bitmap font) with a random gray background."""
    rng = random.Random(seed)
    img = Image.new("RGB", (80, 24), tuple(rng.randint(150, 255) for _ in range(3)))
    ImageDraw.Draw(img).text((4, 6), text, fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_data_root(root: Path, langs: tuple[str, ...] = ("LAT",), n_train: int = 24, n_val: int = 8) -> Path:
    """``root/{training,validation,evaluation}/<LANG>`` LMDBs of rendered words."""
    for split, n in (("training", n_train), ("validation", n_val), ("evaluation", n_val)):
        for lang in langs:
            words = WORDS[lang]
            with LmdbWriter(root / split / lang) as w:
                for i in range(n):
                    word = words[i % len(words)]
                    w.add(png_of(word, i), word)
    return root


def tiny_config(root: Path, out: Path, **over: object) -> TrainConfig:
    cfg = TrainConfig(model="cnn_ctc", model_kwargs={"out_channels": 32}, out_dir=str(out), batch_size=8,
                      iterations=6, val_interval=3, save_interval=0, log_interval=2, threads=1)
    cfg.data.root = str(root)
    cfg.data.select_data = "lang_L"
    for k, v in over.items():
        cfg = apply_overrides(cfg, [f"{k}={json.dumps(v)}"])
    return cfg


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data"), ("LAT", "ARA"))


def test_train_writes_logs_and_checkpoints(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_root, tmp_path / "run")
    trainer, summary = train(cfg, quiet=True)
    assert summary["iterations"] == 6
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "best.pt").is_file()
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("train") == 3 and kinds.count("val") == 2
    assert all(r["loss"] == r["loss"] for r in rows if r["kind"] == "train")  # not NaN
    assert "LAT_1ned" in rows[-1]
    assert (tmp_path / "run" / "train.csv").read_text().startswith("kind,")
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    for key in ("optimizer", "scheduler", "scaler", "rng", "data", "iteration", "config"):
        assert key in ckpt
    assert ckpt["iteration"] == 6
    assert ckpt["charset"]["tokens"] == list(trainer.charset.tokens)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize(("precision", "augment"), [("fp32", False), ("bf16", False), ("fp32", True)])
def test_resume_is_exact(data_root: Path, tmp_path: Path, precision: str, augment: bool) -> None:
    # 24 training samples, batch 8 -> 3 batches per epoch: the stop at 4 lies inside the second epoch.
    over = {"iterations": 8, "precision": precision, "model": "svtr_tiny", "data.augment": augment,
            "model_kwargs": {"dims": [16, 32, 32], "depths": [1, 1, 1], "heads": [2, 2, 2], "num_local": 1,
                             "out_dim": 32},
            "optim.weight_decay": 0.05}
    full, _ = train(tiny_config(data_root, tmp_path / "a", **over), quiet=True)
    expected = _weights(full)
    cfg_b = tiny_config(data_root, tmp_path / "b", **over)
    from cllstr.train.data import build_charset, build_eval_loaders, build_train_loader

    charset = build_charset(cfg_b.data)
    first = Trainer(cfg_b, charset, build_train_loader(cfg_b.data, charset, 8, cfg_b.seed),
                    build_eval_loaders(cfg_b.data, "validation", 8), quiet=True)
    first.fit(stop_at=4)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["iteration"] == 4
    resumed, summary = train(cfg_b, resume=True, quiet=True)
    assert summary["iterations"] == 8
    got = _weights(resumed)
    assert got.keys() == expected.keys()
    for k in expected:
        assert torch.equal(got[k], expected[k]), k


def test_resume_refuses_other_charset(data_root: Path, tmp_path: Path) -> None:
    cfg = tiny_config(data_root, tmp_path / "run", iterations=2)
    trainer, _ = train(cfg, quiet=True)
    other = Trainer(cfg, Charset(["a", "b"]), trainer.stream.loader, quiet=True)
    with pytest.raises(ValueError, match="charset differs"):
        other.load_state_dict(load_checkpoint(tmp_path / "run" / "last.pt"))


def test_batch_ratio_sets_the_share_of_every_batch(data_root: Path, tmp_path: Path) -> None:
    """``data.batch_ratio`` (``cllstr train --batch-ratio``) gives each source its share of every batch."""
    from cllstr.train.data import build_charset, build_train_loader

    cfg = tiny_config(data_root, tmp_path, **{"data.select_data": "lang_AL", "data.batch_ratio": "0.75-0.25"})
    loader = build_train_loader(cfg.data, build_charset(cfg.data), 8, cfg.seed)
    for batch in loader:
        assert batch.scripts.count("ARA") == 6 and batch.scripts.count("LAT") == 2
    cfg.data.batch_ratio = "1-1-1"
    with pytest.raises(ValueError, match="3 values for 2 sources"):
        build_train_loader(cfg.data, build_charset(cfg.data), 8, cfg.seed)
