"""``cllstr prune``: per-head classifier pruning of a grouped model keeps the predictions of words routed to a head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cllstr.checkpoint import load_checkpoint, save_checkpoint
from cllstr.cli.main import app
from cllstr.models import create_model
from cllstr.models.grouped import PRUNED_LOGIT
from cllstr.recognizer import Recognizer
from cllstr.scripts import SCRIPT_ORDER
from cllstr.text.charset import Charset
from cllstr.train.prune import format_report, head_keep, prune_checkpoint, prune_model, token_scripts

# blank=0, then: digits / punctuation (neutral), Latin, Arabic, Korean, han (CHI and JPN), kana (JPN)
TOKENS = ["0", "1", "-", "a", "b", "c", "ب", "ت", "가", "나", "中", "国", "あ", "い"]
CHARSET = Charset(TOKENS)
NEUTRAL = [1, 2, 3]
LAT, ARA, KOR, HAN, KANA = [4, 5, 6], [7, 8], [9, 10], [11, 12], [13, 14]
# heads: 0 = {LAT}, 1 = {ARA, KOR}, 2 = {BEN, CHI, HIN, JPN}
HEAD_OF = {"ARA": 1, "BEN": 2, "CHI": 2, "HIN": 2, "JPN": 2, "KOR": 1, "LAT": 0}
EXPECTED_KEEP = [[0, *NEUTRAL, *LAT], [0, *NEUTRAL, *ARA, *KOR], [0, *NEUTRAL, *HAN, *KANA]]


def _model(hidden_size: int = 16, fixed: bool = False) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    kwargs: dict = {"backbone": "cnn_ctc", "backbone_kwargs": {"out_channels": 32}, "heads": 3,
                    "hidden_size": hidden_size}
    if fixed:
        kwargs["groups"] = [[SCRIPT_ORDER.index(n) for n in SCRIPT_ORDER if HEAD_OF[n] == j] for j in range(3)]
    model = create_model("grouped", CHARSET.num_classes, **kwargs).eval()
    with torch.no_grad():
        if not fixed:  # W by hand: a clear argmax per script
            model.task_logits.zero_()
            for i, name in enumerate(SCRIPT_ORDER):
                model.task_logits[i, HEAD_OF[name]] = 5.0
    return model, kwargs


def _route_all_to(model: torch.nn.Module, script: str, prune_bias: list[int]) -> None:
    """Every word goes to ``script``'s head, whose original classifier never prefers a class in ``prune_bias``."""
    with torch.no_grad():
        model.script_head.weight.zero_()
        model.script_head.bias.fill_(-10.0)
        model.script_head.bias[SCRIPT_ORDER.index(script)] = 10.0
        model.classifier(HEAD_OF[script]).bias[prune_bias] -= 50.0


def test_token_scripts_and_keep() -> None:
    assert token_scripts("7") == frozenset() and token_scripts("-") == frozenset()
    assert token_scripts("a") == {"LAT"} and token_scripts("中") == {"CHI", "JPN"}
    assert token_scripts("가") == {"KOR"}
    assert head_keep(CHARSET, {"LAT"}) == EXPECTED_KEEP[0]
    assert head_keep(CHARSET, set()) == [0, *NEUTRAL]


@pytest.mark.parametrize(("hidden_size", "fixed"), [(16, False), (0, False), (16, True)])
def test_pruning_drops_parameters_and_keeps_routed_predictions(hidden_size: int, fixed: bool) -> None:
    model, kwargs = _model(hidden_size, fixed)
    others = [c for c in range(CHARSET.num_classes) if c not in EXPECTED_KEEP[0]]
    _route_all_to(model, "LAT", others)
    pruned, new_kwargs, report = prune_model(model, kwargs, CHARSET)
    assert new_kwargs["keep"] == EXPECTED_KEEP and "keep" not in kwargs
    assert [r.scripts for r in report] == [("LAT",), ("ARA", "KOR"), ("BEN", "CHI", "HIN", "JPN")]
    for j, r in enumerate(report):
        assert r.classes_before == CHARSET.num_classes and r.classes_after == len(EXPECTED_KEEP[j])
        assert r.params_after < r.params_before
        assert r.params_after == sum(p.numel() for p in pruned.heads[j].parameters())
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    assert "head" in format_report(report).splitlines()[0]

    x = torch.randn(5, 3, 32, 100)
    with torch.no_grad():
        want = model(x)
        got = pruned(x)
        assert pruned.route(pruned.forward_routed(x)[1]).eq(0).all()
    kept = torch.tensor(EXPECTED_KEEP[0])
    torch.testing.assert_close(got[..., kept], want[..., kept])
    assert (got[..., others] == PRUNED_LOGIT).all()
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    a = Recognizer(model, CHARSET, device="cpu", precision="fp32").predict_tensor(x)
    b = Recognizer(pruned, CHARSET, device="cpu", precision="fp32").predict_tensor(x)
    assert [p.text for p in a] == [p.text for p in b] and all(p.script == "LAT" for p in b)


def test_every_head_is_exact_on_its_kept_classes_in_all_modes() -> None:
    model, kwargs = _model()
    pruned, _, _ = prune_model(model, kwargs, CHARSET)
    x = torch.randn(3, 3, 32, 100)
    with torch.no_grad():
        full = model(x, return_all=True).head_logits
        small = pruned(x, return_all=True).head_logits
        for j, keep in enumerate(EXPECTED_KEEP):
            torch.testing.assert_close(small[j][..., keep], full[j][..., keep])
        traced = torch.jit.trace(pruned, x)  # the export path gathers the routed rows from every head
        torch.testing.assert_close(traced(x), pruned(x))
    pruned.train()
    logits = pruned(x)
    assert logits.shape == (3, 26, CHARSET.num_classes) and torch.isfinite(logits).all()
    logits.float().log_softmax(-1).sum().backward()
    assert pruned.classifier(0).weight.grad is not None


def _checkpoint(path: Path, model: torch.nn.Module, kwargs: dict, name: str = "grouped") -> Path:
    state = {"model_name": name, "model_kwargs": kwargs, "charset": {"tokens": TOKENS, "mode": "codepoint"},
             "model": model.state_dict(), "image": {"img_h": 32, "img_w": 100, "rgb": True}}
    return save_checkpoint(state, path)


def test_pruned_checkpoint_loads_unchanged_and_prunes_idempotently(tmp_path: Path) -> None:
    model, kwargs = _model()
    _route_all_to(model, "KOR", [c for c in range(CHARSET.num_classes) if c not in EXPECTED_KEEP[1]])
    src = _checkpoint(tmp_path / "best.pt", model, kwargs)
    report = prune_checkpoint(src, tmp_path / "pruned.pt")
    state = load_checkpoint(tmp_path / "pruned.pt")
    assert state["model_kwargs"]["keep"] == EXPECTED_KEEP and len(state["pruned"]["heads"]) == 3
    x = torch.randn(4, 3, 32, 100)
    before = Recognizer.from_checkpoint(src, device="cpu", precision="fp32").predict_tensor(x)
    after = Recognizer.from_checkpoint(tmp_path / "pruned.pt", device="cpu", precision="fp32").predict_tensor(x)
    assert [p.text for p in before] == [p.text for p in after]
    again = prune_checkpoint(tmp_path / "pruned.pt", tmp_path / "again.pt")
    assert [r.params_after for r in again] == [r.params_after for r in report]
    assert all(r.params_before == r.params_after for r in again)
    assert load_checkpoint(tmp_path / "again.pt")["model_kwargs"]["keep"] == EXPECTED_KEEP


def test_cli_prune_and_its_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    model, kwargs = _model()
    src = _checkpoint(tmp_path / "best.pt", model, kwargs)
    ok = runner.invoke(app, ["prune", str(src), "-o", str(tmp_path / "pruned.pt")])
    assert ok.exit_code == 0, ok.output
    assert "params before" in ok.output and "wrote" in ok.output and (tmp_path / "pruned.pt").is_file()

    single = create_model("cnn_ctc", CHARSET.num_classes, out_channels=32)
    other = _checkpoint(tmp_path / "single.pt", single, {"out_channels": 32}, "cnn_ctc")
    for args in ([str(other), "-o", str(tmp_path / "x.pt")], [str(tmp_path / "missing.pt"), "-o", "x.pt"]):
        res = runner.invoke(app, ["prune", *args])
        assert res.exit_code == 1, res.output
        assert res.output.startswith("error: ") and len(res.output.strip().splitlines()) == 1
        assert "grouped" in res.output or "not found" in res.output
    for args in ([str(src)], [str(src), "-o", str(src)], [str(src), "-o", str(tmp_path)], [str(src), "--bad"]):
        res = runner.invoke(app, ["prune", *args])
        assert res.exit_code == 2, (args, res.output)
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("keep", [[[0, 1]], [[1, 2], None, None], [[0, 3, 2], None, None], [[0, 99], None, None]])
def test_bad_keep_is_refused(keep: list) -> None:
    with pytest.raises(ValueError, match="keep"):
        create_model("grouped", CHARSET.num_classes, backbone="cnn_ctc", backbone_kwargs={"out_channels": 32},
                     heads=3, hidden_size=0, keep=keep)
