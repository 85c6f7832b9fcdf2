"""Training building blocks: CTC feasibility and loss, config loading/overrides, atomic checkpoints, cascade init."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cllstr.checkpoint import load_checkpoint, save_checkpoint
from cllstr.models import create_model
from cllstr.text.charset import Charset
from cllstr.text.ctc import encode_targets, required_frames
from cllstr.train.cascade import freeze_bn_stats, init_from_checkpoint
from cllstr.train.config import TrainConfig, apply_overrides, load_config
from cllstr.train.ctc import CTCLoss
from cllstr.train.rng import capture_rng, restore_rng


def test_required_frames_counts_repeats() -> None:
    assert required_frames([]) == 0
    assert required_frames([1, 2, 3]) == 3
    assert required_frames([1, 1, 2, 2, 2]) == 5 + 3


def test_encode_targets_reverses_arabic_and_skips_unknown() -> None:
    cs = Charset(list("abcسلام"))
    enc = encode_targets(cs, ["abc", "سلام", "a?b"], ["LAT", "ARA", "LAT"])
    ids = enc.targets.tolist()
    assert enc.lengths.tolist() == [3, 4, 2]
    assert cs.decode(ids[3:7]) == "مالس"  # visual order
    assert cs.decode(ids[7:]) == "ab" and enc.unknown == 1
    # without scripts the direction is guessed from the letters
    assert encode_targets(cs, ["سلام"]).targets.tolist() == ids[3:7]


def test_ctc_loss_counts_infeasible_and_zeroes_them() -> None:
    cs = Charset(list("ab"))
    enc = encode_targets(cs, ["ab", "aaaa"])  # "aaaa" needs 7 frames
    logits = torch.randn(2, 5, cs.num_classes, requires_grad=True)
    crit = CTCLoss()
    loss = crit(logits, enc)
    assert crit.infeasible == 1 and crit.seen == 2
    assert torch.isfinite(loss)
    ref = torch.nn.functional.ctc_loss(logits.log_softmax(-1).transpose(0, 1)[:, :1], torch.tensor([1, 2]),
                                       torch.tensor([5]), torch.tensor([2]))
    torch.testing.assert_close(loss, ref / 2)  # feasible sample's mean loss, averaged with a zero
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_ctc_loss_accepts_bf16_logits() -> None:
    cs = Charset(list("ab"))
    logits = torch.randn(2, 6, cs.num_classes).bfloat16()
    loss = CTCLoss()(logits, encode_targets(cs, ["ab", "ba"]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_config_yaml_toml_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("model: crnn\noptim:\n  lr: 5.0e-4\ndata:\n  caps: {LAT: 100}\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert cfg.model == "crnn" and cfg.optim.lr == 5e-4 and cfg.data.caps == {"LAT": 100}
    (tmp_path / "b.toml").write_text('batch_size = 64\n[optim]\nbetas = [0.8, 0.9]\n')
    cfg = load_config(tmp_path / "b.toml")
    assert cfg.batch_size == 64 and cfg.optim.betas == (0.8, 0.9)
    cfg = apply_overrides(cfg, ["optim.lr=2e-3", "threads=2", "data.val_select=[LAT, KOR]"])
    assert cfg.optim.lr == 2e-3 and cfg.threads == 2 and cfg.data.val_select == ["LAT", "KOR"]
    assert TrainConfig().optim.weight_decay == 0.01 and TrainConfig().optim.grad_clip == 5.0
    (tmp_path / "bad.yaml").write_text("optim:\n  lrr: 1\n")
    with pytest.raises(ValueError, match="optim.lrr"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(TypeError, match="batch_size"):
        apply_overrides(cfg, ["batch_size=many"])
    with pytest.raises(KeyError, match="nosuch"):
        apply_overrides(cfg, ["nosuch=1"])


def test_overrides_reach_into_mapping_fields() -> None:
    """``model_kwargs`` and ``data.caps`` are free-form mappings: any key may be set; dataclass keys stay checked."""
    cfg = apply_overrides(TrainConfig(), ["model_kwargs.drop_path_rate=0", "data.caps.LAT=100", "data.caps.KOR=5"])
    assert cfg.model_kwargs == {"drop_path_rate": 0} and cfg.data.caps == {"LAT": 100, "KOR": 5}
    assert TrainConfig().model_kwargs == {}  # the default is not shared
    with pytest.raises(KeyError, match="optim.nosuch"):
        apply_overrides(cfg, ["optim.nosuch=1"])
    with pytest.raises(KeyError, match="unknown config section 'nosuch'"):
        apply_overrides(cfg, ["nosuch.x=1"])
    with pytest.raises(KeyError, match="'data.root' is a value"):
        apply_overrides(cfg, ["data.root.x=1"])


def test_checkpoint_atomic_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "ck" / "last.pt"
    save_checkpoint({"model_name": "crnn", "model": {"w": torch.ones(2)}, "charset": {"tokens": ["a"]}}, path)
    assert load_checkpoint(path)["model"]["w"].sum() == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"model_name": "x", "model": Boom(), "charset": {}}, path)
    assert load_checkpoint(path)["model_name"] == "crnn"  # the old checkpoint survived
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cllstr checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_capture_restore() -> None:
    state = capture_rng()
    a = (torch.rand(3), __import__("random").random())
    restore_rng(state)
    b = (torch.rand(3), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def _ckpt(model: torch.nn.Module, tokens: list[str], path: Path) -> None:
    save_checkpoint({"model_name": "crnn", "model": model.state_dict(), "charset": {"tokens": tokens}}, path)


def test_cascade_remaps_classifier_by_token_and_keeps_bn(tmp_path: Path) -> None:
    torch.manual_seed(0)
    old = create_model("cnn_ctc", 4, out_channels=32)  # tokens a b c
    bn = next(m for m in old.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.fill_(0.5)
    _ckpt(old, ["a", "b", "c"], tmp_path / "old.pt")
    new = create_model("cnn_ctc", 4, out_channels=32)  # tokens c x a
    report = init_from_checkpoint(new, ["c", "x", "a"], tmp_path / "old.pt", freeze=True)
    w_old, w_new = old.head.weight, new.head.weight
    assert torch.equal(w_new[0], w_old[0])  # blank
    assert torch.equal(w_new[1], w_old[3]) and torch.equal(w_new[3], w_old[1])  # c and a moved
    assert not torch.equal(w_new[2], w_old[2])  # x is new
    assert report.tokens_shared == 2 and report.tokens_new == 1
    new_bn = next(m for m in new.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(new_bn.running_mean, bn.running_mean)
    trainable = [n for n, p in new.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
    new.train()
    freeze_bn_stats(new)
    assert not new_bn.training


def test_cascade_skips_mismatched_shapes(tmp_path: Path) -> None:
    old = create_model("cnn_ctc", 3, out_channels=32)
    _ckpt(old, ["a", "b"], tmp_path / "old.pt")
    new = create_model("cnn_ctc", 3, out_channels=64)
    report = init_from_checkpoint(new, ["a", "b"], tmp_path / "old.pt")
    assert "features.body.0.weight" in report.skipped


def test_cascade_into_and_out_of_a_grouped_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    single = create_model("cnn_ctc", 4, out_channels=32)
    _ckpt(single, ["a", "b", "c"], tmp_path / "single.pt")
    grouped = create_model("grouped", 4, backbone="cnn_ctc", backbone_kwargs={"out_channels": 32}, heads=2)
    fresh_heads = {k: v.clone() for k, v in grouped.state_dict().items() if not k.startswith("encoder.")}
    report = init_from_checkpoint(grouped, ["a", "b", "c"], tmp_path / "single.pt")
    for name, tensor in single.state_dict().items():  # the backbone lands in the shared encoder
        if not name.startswith("head."):
            assert torch.equal(grouped.state_dict()[f"encoder.{name}"], tensor), name
    assert all(torch.equal(grouped.state_dict()[k], v) for k, v in fresh_heads.items())  # heads start fresh
    assert not any(k.startswith("heads.") for k in report.copied)
    # and back: a grouped run's encoder initialises a single-head model; its classifier starts fresh
    torch.save({**torch.load(tmp_path / "single.pt", weights_only=False), "model_name": "grouped",
                "model": grouped.state_dict()}, tmp_path / "grouped.pt")
    back = create_model("cnn_ctc", 4, out_channels=32)
    head = back.head.weight.clone()
    report = init_from_checkpoint(back, ["a", "b", "c"], tmp_path / "grouped.pt")
    assert torch.equal(back.features.body[0].weight, single.features.body[0].weight)
    assert torch.equal(back.head.weight, head) and "head.weight" in report.skipped


def test_reference_charset_trains_unknown_characters_as_unk(tmp_path: Path) -> None:
    """With the reference class table ([PAD] [UNK] space first), characters outside it become [UNK] targets, as the
    reference converter encodes them, instead of vanishing from the target; decoded text drops the placeholders."""
    from cllstr.text.ctc import ids_to_text
    from cllstr.train.config import DataConfig
    from cllstr.train.data import build_charset

    path = tmp_path / "chars.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    ref = build_charset(DataConfig(charset=str(path), charset_reference=True))
    assert ref.tokens == ["[PAD]", "[UNK]", " ", "a", "b", "c"]
    enc = encode_targets(ref, ["a7b", "c"])
    unk = ref.tokens.index("[UNK]") + 1
    assert enc.targets.tolist() == [ref.encode("a")[0], unk, ref.encode("b")[0], ref.encode("c")[0]]
    assert enc.lengths.tolist() == [3, 1] and enc.unknown == 1
    assert ids_to_text(enc.targets[:3].tolist(), ref) == "ab"
    plain = build_charset(DataConfig(charset=str(path)))
    enc = encode_targets(plain, ["a7b"])
    assert enc.lengths.tolist() == [2] and enc.unknown == 1
    with pytest.raises(ValueError, match="needs a charset file"):
        build_charset(DataConfig(charset_reference=True))
