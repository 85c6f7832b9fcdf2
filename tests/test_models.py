"""Model registry sweep: every registered model builds, runs forward/backward, no NaN, every parameter gets a grad."""

from __future__ import annotations

import pytest
import torch

from cllstr.models import count_parameters, create_model, list_models
from cllstr.models.svtr import local_window_mask

NUM_CLASSES = 37
EXPECTED_T = {"crnn": 26, "cnn_ctc": 26, "svtr_tiny": 25, "svtr_small": 25, "svtr_base": 25, "four_stage": 26,
              "rosetta": 26, "star_net": 26, "grcnn": 26, "trba": 26, "rare": 26, "r2am": 26,
              "grouped": 26}


def test_registry_lists_every_family() -> None:
    assert set(EXPECTED_T) <= set(list_models())
    assert list_models("svtr_*") == ["svtr_base", "svtr_small", "svtr_tiny"]
    with pytest.raises(KeyError, match="known models"):
        create_model("nope", NUM_CLASSES)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("crnn", 1)


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_every_parameter_gets_grad(name: str) -> None:
    torch.manual_seed(0)
    # Stochastic depth could drop a whole residual branch for both samples; it is tested separately.
    kw = {"drop_path_rate": 0.0} if name.startswith("svtr") else {}
    model = create_model(name, NUM_CLASSES, **kw).train()
    if getattr(model, "trans", None) is not None:  # TPS: the zero-initialised last layer cuts the gradient upstream
        torch.nn.init.normal_(model.trans.loc_fc2.weight, std=1e-3)
    if getattr(model, "task_logits", None) is not None:  # grouped: a uniform W makes P_WM blind to the script head
        torch.nn.init.normal_(model.task_logits, std=1e-2)
    images = torch.randn(2, 3, 32, 100)
    logits = model(images)
    assert logits.shape == (2, EXPECTED_T[name], NUM_CLASSES)
    assert torch.isfinite(logits).all()
    (logits * torch.randn_like(logits)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", ["crnn", "svtr_tiny"])
def test_eval_batch_independent_and_bf16_close(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES).eval()
    images = torch.randn(3, 3, 32, 100)
    with torch.no_grad():
        full = model(images)
        single = model(images[1:2])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(images).float()
    torch.testing.assert_close(single, full[1:2], atol=1e-4, rtol=1e-4)
    assert (low - full).abs().max() < 0.1 * full.abs().max()


def test_parameter_counts_documented() -> None:
    # Counted with 37 classes; the documented counts in docs are for this configuration.
    counts = {n: count_parameters(create_model(n, NUM_CLASSES)) for n in ("crnn", "svtr_tiny", "cnn_ctc")}
    assert 8.3e6 < counts["crnn"] < 8.5e6
    assert 5.2e6 < counts["svtr_tiny"] < 5.4e6
    assert counts["cnn_ctc"] < counts["crnn"]


def test_grey_input_and_svtr_size_checks() -> None:
    model = create_model("crnn", NUM_CLASSES, in_chans=1)
    assert model(torch.randn(1, 1, 32, 100)).shape == (1, 26, NUM_CLASSES)
    with pytest.raises(ValueError, match="img_size"):
        create_model("svtr_tiny", NUM_CLASSES, img_size=(48, 100))
    wide = create_model("svtr_tiny", NUM_CLASSES, img_size=(32, 128))
    assert wide(torch.randn(1, 3, 32, 128)).shape == (1, 32, NUM_CLASSES)


def test_local_window_mask() -> None:
    mask = local_window_mask(8, 25, 7, 11)
    assert mask.shape == (200, 200) and mask.diagonal().all()
    # token (0, 0) sees rows 0..3 and columns 0..5 only
    assert int(mask[0].sum()) == 4 * 6
    # a centre token sees a full 7x11 window
    assert int(mask[4 * 25 + 12].sum()) == 7 * 11
    assert torch.equal(mask, mask.T)


def test_model_exports() -> None:
    model = create_model("svtr_tiny", NUM_CLASSES, dims=(16, 32, 32), depths=(1, 1, 1), heads=(2, 2, 2),
                         num_local=1, out_dim=32).eval()
    x = torch.randn(2, 3, 32, 100)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


def test_svtr_stochastic_depth_only_in_training() -> None:
    torch.manual_seed(0)
    model = create_model("svtr_tiny", NUM_CLASSES, drop_path_rate=0.5)
    x = torch.randn(4, 3, 32, 100)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
