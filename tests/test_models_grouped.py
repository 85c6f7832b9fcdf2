"""The grouped multi-head recogniser: structured training output, routing at inference, fixed groupings."""

from __future__ import annotations

import pytest
import torch

from cllstr.models import create_model, prediction_kind
from cllstr.models.grouped import GroupedOutput

SMALL = {"backbone": "cnn_ctc", "backbone_kwargs": {"out_channels": 32}, "heads": 3, "hidden_size": 16}


def test_return_all_gives_every_head_and_the_scripts() -> None:
    torch.manual_seed(0)
    model = create_model("grouped", 11, **SMALL).train()
    out = model(torch.randn(4, 3, 32, 100), return_all=True)
    assert isinstance(out, GroupedOutput)
    assert out.head_logits.shape == (3, 4, 26, 11) and out.script_logits.shape == (4, 7)
    assert prediction_kind(model) == "ctc" and model.objective == "grouped"
    torch.testing.assert_close(model.head_probs(), torch.full((7, 3), 1 / 3))


def test_inference_routes_each_word_to_the_argmax_head() -> None:
    torch.manual_seed(4)  # a draw whose words go to two different heads (asserted below)
    model = create_model("grouped", 11, **SMALL).eval()
    with torch.no_grad():
        model.task_logits.normal_(0, 3.0)
        model.script_head.weight.normal_(0, 10.0)
        x = torch.randn(9, 3, 32, 100) * torch.linspace(0.1, 4.0, 9).view(-1, 1, 1, 1)
        out = model(x, return_all=True)
        want = (out.script_logits.softmax(-1) @ model.task_logits.softmax(-1)).argmax(-1)
        assert torch.equal(model.route(out.script_logits), want)
        assert len(set(want.tolist())) > 1  # the check below covers several heads
        routed = model(x)
        assert routed.shape == (9, 26, 11)
        expected = out.head_logits[want, torch.arange(9)]
        torch.testing.assert_close(routed, expected)
        both = model.forward_routed(x)
        torch.testing.assert_close(both[0], expected)
        torch.testing.assert_close(both[1], out.script_logits)
        traced = torch.jit.trace(model, (x,))  # the export path: every head runs, the rows are gathered
        torch.testing.assert_close(traced(x), expected)
        assert model(x[:0]).shape == (0, 26, 11)


def test_fixed_groups_are_a_constant_one_hot() -> None:
    model = create_model("grouped", 11, **{**SMALL, "heads": 2, "groups": [[0, 5], [1, 2, 3, 4, 6]]})
    assert model.fixed and not hasattr(model, "task_logits")
    assert model.head_probs()[:, 0].tolist() == [1, 0, 0, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="exactly one head"):
        create_model("grouped", 11, **{**SMALL, "heads": 2, "groups": [[0, 5], [1, 2, 3, 4]]})
    with pytest.raises(ValueError, match="heads must be >= 1"):
        create_model("grouped", 11, **{**SMALL, "heads": 0})
    with pytest.raises(ValueError, match="not a CTC model"):
        create_model("grouped", 11, backbone="trba")
