"""Model registry sweep: every registered model builds, runs forward/backward, no NaN, every parameter gets a grad."""

from __future__ import annotations

import pytest
import torch

from cllstr.models import count_parameters, create_model, list_models, model_info, prediction_kind
from cllstr.models.svtr import local_window_mask

NUM_CLASSES = 37
FAMILIES = {"crnn", "cnn_ctc", "svtr_tiny", "svtr_small", "svtr_base", "four_stage", "rosetta", "star_net", "grcnn",
            "trba", "rare", "r2am", "grouped"}


def test_registry_lists_every_family() -> None:
    assert FAMILIES <= set(list_models())
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
    assert logits.shape == (2, model_info(name).seq_len, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    (logits * torch.randn_like(logits)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", list_models())
def test_registry_metadata_matches_the_model(name: str) -> None:
    info = model_info(name)
    model = create_model(name, NUM_CLASSES)
    assert prediction_kind(model) == info.prediction
    modules = dict(model.named_modules())
    for cls_name in info.classifier:  # class rows first: K outputs, an embedding K inputs plus its start token
        rows = modules[cls_name].weight.shape[0]
        assert rows == NUM_CLASSES or (cls_name.endswith("embed") and rows == NUM_CLASSES + 1), (cls_name, rows)
    assert info.input_kwargs(*info.input_size, info.in_chans) == {}
    # the declared input keywords build the model for another input: grey, 32x128
    kw = info.input_kwargs(32, 128, 1)
    assert kw.get("in_chans") == 1 and (("img_size" in kw) == info.sized)
    if name == "grouped":
        kw = {"backbone_kwargs": kw}
    grey = create_model(name, NUM_CLASSES, **kw).eval()
    with torch.no_grad():
        out = grey(torch.randn(1, 1, 32, 128))
    assert out.shape[0] == 1 and out.shape[-1] == NUM_CLASSES and out.shape[1] >= info.seq_len


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
