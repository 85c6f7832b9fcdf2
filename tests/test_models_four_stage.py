"""The four-stage framework: every combination builds, trains a step and decodes; TPS identity; attention paths."""

from __future__ import annotations

import itertools

import pytest
import torch

from cllstr.models import create_model, list_models, prediction_kind
from cllstr.models.four_stage import FEATURES, PREDICTIONS, SEQUENCES, TRANSFORMS
from cllstr.models.tps import TPS

K = 13
COMBOS = list(itertools.product(TRANSFORMS, FEATURES, SEQUENCES, PREDICTIONS))
NAMED = {"trba": ("tps", "resnet", "bilstm", "attn"), "rosetta": ("none", "resnet", "none", "ctc"),
         "star_net": ("tps", "resnet", "bilstm", "ctc"), "rare": ("tps", "vgg", "bilstm", "attn"),
         "grcnn": ("none", "rcnn", "bilstm", "ctc"), "r2am": ("none", "rcnn", "none", "attn")}


def _nudge_tps(model: torch.nn.Module) -> None:
    # The localisation output layer starts at zero weight, which cuts the gradient to the localisation net by design.
    if getattr(model, "trans", None) is not None:
        torch.nn.init.normal_(model.trans.loc_fc2.weight, std=1e-3)


@pytest.mark.parametrize("trans,feat,seq,pred", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_every_combination_trains_a_step(trans: str, feat: str, seq: str, pred: str) -> None:
    torch.manual_seed(0)
    model = create_model("four_stage", K, trans=trans, feat=feat, seq=seq, pred=pred, max_length=6).train()
    assert prediction_kind(model) == pred
    _nudge_tps(model)
    images = torch.randn(2, 3, 32, 100)
    if pred == "attn":
        inputs = torch.tensor([[K, 3, 4, 5], [K, 7, 0, 0]])
        logits = model(images, inputs)
        assert logits.shape == (2, 4, K)
    else:
        logits = model(images)
        assert logits.shape == (2, 25 if feat == "svtr" else 26, K)
    assert torch.isfinite(logits).all()
    (logits * torch.randn_like(logits)).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or p.grad.abs().sum() == 0]
    assert not no_grad, no_grad
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert out.shape == ((2, 7, K) if pred == "attn" else (2, 25 if feat == "svtr" else 26, K))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_combinations(name: str) -> None:
    model = create_model(name, K)
    assert model.stages == dict(zip(("trans", "feat", "seq", "pred"), NAMED[name], strict=True))
    assert name in list_models()
    assert model.model_kwargs == {}
    with pytest.raises(ValueError, match="feat must be one of"):
        create_model("four_stage", K, feat="alexnet")


def test_tps_identity_leaves_image_unchanged() -> None:
    torch.manual_seed(0)
    tps = TPS(20, (32, 100), 3, init="identity").eval()
    images = torch.rand(3, 3, 32, 100)
    with torch.no_grad():
        out = tps(images)
    torch.testing.assert_close(out, images, atol=2e-4, rtol=0)
    # the reference initialisation is not the identity: it bends the image
    rare = TPS(20, (32, 100), 3, init="rare").eval()
    with torch.no_grad():
        assert (rare(images) - images).abs().max() > 0.05


def test_tps_resamples_other_sizes_to_its_output() -> None:
    tps = TPS(20, (32, 100), 1, init="identity").eval()
    with torch.no_grad():
        assert tps(torch.rand(2, 1, 48, 160)).shape == (2, 1, 32, 100)


@pytest.mark.parametrize("cell,embed", [("lstm", 256), ("lstm", 0), ("gru", 32)])
def test_attention_teacher_forcing_with_own_predictions_matches_greedy(cell: str, embed: int) -> None:
    torch.manual_seed(0)
    model = create_model("four_stage", K, feat="vgg", seq="bilstm", pred="attn", max_length=8, attn_cell=cell,
                         attn_embed=embed).eval()
    images = torch.randn(4, 3, 32, 100)
    with torch.no_grad():
        greedy = model(images)
        assert greedy.shape == (4, 9, K)
        preds = greedy.argmax(-1)
        inputs = torch.cat([torch.full((4, 1), model.decoder.sos_id), preds[:, :-1]], 1)
        forced = model(images, inputs)
        torch.testing.assert_close(forced, greedy, atol=1e-5, rtol=1e-5)
        # other inputs change the scores (the check above can fail)
        other = model(images, (inputs + 1) % K)
        assert (other - greedy).abs().max() > 1e-4


def test_attention_sos_bounds() -> None:
    with pytest.raises(ValueError, match="sos_id"):
        create_model("four_stage", K, pred="attn", attn_sos=0)
    model = create_model("four_stage", K, pred="attn", feat="vgg", attn_sos=3)
    assert model.decoder.num_inputs == K and model.decoder.embed.num_embeddings == K
