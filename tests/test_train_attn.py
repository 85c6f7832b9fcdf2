"""Attention models in training, evaluation and prediction: targets, loss, a short run, decode, cascade."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cllstr.checkpoint import load_checkpoint
from cllstr.decoding.ctc import DecoderConfig
from cllstr.decoding.heads import decode_attn_logits, decode_head
from cllstr.models import create_model
from cllstr.recognizer import Recognizer
from cllstr.text.charset import Charset
from cllstr.train.attn import IGNORE, AttnLoss, encode_attn_targets
from cllstr.train.cascade import init_from_checkpoint
from cllstr.train.engine import Trainer, train
from cllstr.train.objective import AttnObjective, CTCObjective, make_objective
from tests.test_train_engine import make_data_root, tiny_config

TINY_TRBA = {"out_channels": 32, "hidden_size": 32, "attn_embed": 16, "max_length": 8}


def test_targets_layout_rtl_and_over_long() -> None:
    cs = Charset(list("abc") + ["س", "ل", "ا", "م"])
    enc = encode_attn_targets(cs, ["ab", "", "abcabcabc", "سلام", "a?"], ["LAT", "LAT", "LAT", "ARA", "LAT"],
                              max_length=8, sos_id=99)
    assert enc.inputs.shape == enc.targets.shape == (5, 9)
    assert enc.inputs[:, 0].tolist() == [99] * 5
    assert enc.inputs[0, :3].tolist() == [99, 1, 2] and enc.targets[0, :3].tolist() == [1, 2, 0]
    assert (enc.targets[0, 3:] == IGNORE).all()
    assert enc.targets[1, 0] == 0 and (enc.targets[1, 1:] == IGNORE).all()
    assert enc.too_long == [False, False, True, False, False]
    assert (enc.targets[2] == IGNORE).all()
    assert enc.targets[3, :5].tolist() == [7, 6, 5, 4, 0]  # visual order: reversed
    assert enc.targets[4, :2].tolist() == [1, 0] and enc.unknown == 1
    assert enc.lengths.tolist() == [2, 0, 9, 4, 1]


def test_loss_is_token_cross_entropy_and_counts_over_long() -> None:
    cs = Charset(list("abc"))
    enc = encode_attn_targets(cs, ["ab", "cccc"], max_length=3, sos_id=4)
    logits = torch.randn(2, enc.targets.shape[1], cs.num_classes, requires_grad=True)
    loss_fn = AttnLoss()
    loss = loss_fn(logits, enc)
    expected = F.cross_entropy(logits[0, :3], torch.tensor([1, 2, 0]))
    torch.testing.assert_close(loss, expected)
    assert (loss_fn.infeasible, loss_fn.seen) == (1, 2)
    only_long = encode_attn_targets(cs, ["cccc"], max_length=3, sos_id=4)
    zero = loss_fn(torch.randn(1, 4, cs.num_classes, requires_grad=True), only_long)
    assert zero.item() == 0.0 and zero.requires_grad


def test_objective_follows_the_model_head() -> None:
    assert isinstance(make_objective(create_model("crnn", 5)), CTCObjective)
    obj = make_objective(create_model("trba", 5, **TINY_TRBA))
    assert isinstance(obj, AttnObjective) and obj.max_length == 8 and obj.sos_id == 5


def test_attention_model_overfits_a_batch() -> None:
    torch.manual_seed(0)
    cs = Charset(list("abcdeh"))
    model = create_model("four_stage", cs.num_classes, feat="vgg", seq="bilstm", pred="attn", out_channels=32,
                         hidden_size=32, attn_embed=16, max_length=6)
    obj = make_objective(model)
    labels = ["abc", "ded", "hab", "e"]
    images = torch.randn(4, 3, 32, 100)
    enc = obj.encode(cs, labels, None)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        model.train()
        loss = obj.loss(obj.run(model, images, enc), enc)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    with torch.no_grad():
        texts, confs = decode_head(model(images), cs, None, "attn")
    assert texts == labels
    assert all(0.0 < c <= 1.0 for c in confs)


def test_decode_attn_stops_at_end_token_and_rejects_beam() -> None:
    cs = Charset(list("abc"))
    logits = torch.full((2, 4, 4), -10.0)
    for b, seq in enumerate([[1, 2, 0, 3], [3, 3, 3, 3]]):
        for t, c in enumerate(seq):
            logits[b, t, c] = 10.0
    texts, confs = decode_attn_logits(logits, cs)
    assert texts == ["ab", "cccc"]
    assert confs[0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="needs a CTC model"):
        decode_head(logits, cs, DecoderConfig("beam"), "attn")


def test_trba_trains_evaluates_predicts_and_cascades(tmp_path: Path) -> None:
    root = make_data_root(tmp_path / "data", ("LAT", "ARA"))
    cfg = tiny_config(root, tmp_path / "run", model="trba", model_kwargs=TINY_TRBA)
    cfg.data.select_data = "lang_AL"
    trainer, summary = train(cfg, quiet=True)
    assert isinstance(trainer, Trainer) and summary["iterations"] == 6
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["model_name"] == "trba"
    rec = Recognizer.from_checkpoint(tmp_path / "run" / "best.pt", device="cpu")
    assert rec.prediction == "attn"
    preds = rec.predict(torch.zeros(3, 3, 32, 100))
    assert len(preds) == 3 and all(0.0 <= p.confidence <= 1.0 for p in preds)
    with pytest.raises(ValueError, match="needs a CTC model"):
        Recognizer.from_checkpoint(tmp_path / "run" / "best.pt", device="cpu", decoder="beam")
    # cascade into a new charset: the classifier is remapped by token, the rest copied
    other = create_model("trba", 40, **TINY_TRBA)
    report = init_from_checkpoint(other, [chr(ord("a") + i) for i in range(39)], tmp_path / "run" / "best.pt")
    assert "head.weight" in report.copied and "trans.loc_fc2.bias" in report.copied
    assert "decoder.embed.weight" in report.copied
    old_tokens = ckpt["charset"]["tokens"]
    old_embed, new_embed = ckpt["model"]["decoder.embed.weight"], other.decoder.embed.weight.detach()
    shared = [t for t in old_tokens if "a" <= t <= "z"]
    assert len(shared) >= 3
    for tok in shared:  # new class of token chr(ord("a") + i) is i + 1
        torch.testing.assert_close(new_embed[ord(tok) - ord("a") + 1], old_embed[old_tokens.index(tok) + 1])
    torch.testing.assert_close(new_embed[0], old_embed[0])  # the end token
    torch.testing.assert_close(new_embed[-1], old_embed[-1])  # the start token (an input-only row)
