"""Export: ONNX (dynamic batch) through onnxruntime and TorchScript reproduce the torch model; predict --onnx."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cllstr.checkpoint import save_checkpoint
from cllstr.cli.main import app
from cllstr.deploy import OnnxModel, export_onnx, export_program, export_torchscript
from cllstr.models import create_model, list_models
from cllstr.recognizer import Recognizer

runner = CliRunner()
TOKENS = list("abcdefghij")
SMALL = {"out_channels": 64, "hidden_size": 32}  # four-stage models at a test-friendly width
FOUR_STAGE = {"four_stage", "trba", "rosetta", "star_net", "rare", "grcnn", "r2am"}


def _checkpoint(path: Path, name: str, rgb: bool = True, **kwargs: object) -> Path:
    torch.manual_seed(0)
    kw = {**(SMALL if name in FOUR_STAGE else {}), **kwargs, **({} if rgb else {"in_chans": 1})}
    model = create_model(name, len(TOKENS) + 1, **kw)
    with torch.no_grad():  # non-trivial BatchNorm statistics, an active TPS
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
        if getattr(model, "trans", None) is not None:
            model.trans.loc_fc2.weight.normal_(0, 1e-3)
    return save_checkpoint({"model_name": name, "model_kwargs": kw, "charset": {"tokens": TOKENS, "mode": "codepoint"},
                            "model": model.state_dict(),
                            "image": {"img_h": 32, "img_w": 100, "rgb": rgb, "keep_ratio": False}}, path)


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    # 1e-4, relative to the logits' scale when they exceed 1 (random-init ResNet logits reach the hundreds)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item())
    assert torch.equal(got.argmax(-1), want.argmax(-1))


@pytest.mark.parametrize("name", list_models())
def test_onnx_matches_torch_at_batch_1_and_17(name: str, tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt", name)
    export_onnx(ckpt, tmp_path / "m.onnx")
    ort_model = OnnxModel(tmp_path / "m.onnx", threads=1)
    rec = Recognizer.from_checkpoint(ckpt, device="cpu", precision="fp32")
    assert ort_model.prediction == rec.prediction
    for batch in (1, 17):
        torch.manual_seed(batch)
        x = torch.rand(batch, 3, 32, 100) * 2 - 1
        with torch.no_grad():
            _close(ort_model(x), rec.model(x))
    onnx_rec = ort_model.recognizer()
    assert [p.text for p in onnx_rec.predict(x)] == [p.text for p in rec.predict(x)]


@pytest.mark.parametrize("kwargs", [{}, {"tps_align_corners": True, "tps_grid": "exact"}])  # own / imported, exact
def test_onnx_full_size_tps_model_matches_torch_on_noise(kwargs: dict, tmp_path: Path) -> None:
    # full-width TPS-ResNet-BiLSTM-Attn on uniform noise, the input most sensitive to a sampling-grid difference: the
    # float64 TPS grid keeps ONNX Runtime's rectified image within 1e-4 of torch's (the reference's float32 grid
    # arithmetic, kept for imported models, is ~8e-4 off there) and the logits within 1e-4
    import onnxruntime

    ckpt = _checkpoint(tmp_path / "m.pt", "trba", out_channels=512, hidden_size=256, **kwargs)
    ort_model = OnnxModel(export_onnx(ckpt, tmp_path / "m.onnx"), threads=1)
    rec = Recognizer.from_checkpoint(ckpt, device="cpu", precision="fp32")
    tps = rec.model.trans.eval()  # bent by _checkpoint's random localisation head
    torch.onnx.export(tps, (torch.zeros(2, 3, 32, 100),), str(tmp_path / "tps.onnx"), input_names=["x"],
                      dynamic_axes={"x": {0: "b"}}, opset_version=17, dynamo=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "tps.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 17):
        x = torch.rand(batch, 3, 32, 100, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        with torch.no_grad():
            _close(torch.from_numpy(session.run(None, {"x": x.numpy()})[0]), tps(x))
            _close(ort_model(x), rec.model(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("name,kwargs", [("crnn", {}), ("trba", {"tps_align_corners": True, "attn_embed": 0})])
def test_torchscript_matches_torch(name: str, kwargs: dict, tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt", name, rgb=False, **kwargs)
    export_torchscript(ckpt, tmp_path / "m.ts")
    scripted = torch.jit.load(str(tmp_path / "m.ts"))
    rec = Recognizer.from_checkpoint(ckpt, device="cpu", precision="fp32")
    for batch in (1, 17):
        x = torch.rand(batch, 1, 32, 100) * 2 - 1
        with torch.no_grad():
            _close(scripted(x), rec.model(x))


@pytest.mark.parametrize("name", ["crnn", "svtr_tiny", "cnn_ctc", "rosetta"])
def test_torch_export_program_matches_torch_with_a_dynamic_batch(name: str, tmp_path: Path) -> None:
    import json

    ckpt = _checkpoint(tmp_path / "m.pt", name)
    extra = {"cllstr.json": ""}
    program = torch.export.load(str(export_program(ckpt, tmp_path / "m.pt2")), extra_files=extra)
    assert json.loads(extra["cllstr.json"])["charset"]["tokens"] == TOKENS
    rec = Recognizer.from_checkpoint(ckpt, device="cpu", precision="fp32")
    for batch in (1, 5):
        x = torch.rand(batch, 3, 32, 100) * 2 - 1
        with torch.no_grad():
            _close(program.module()(x), rec.model(x))


def test_export_and_predict_onnx_cli(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt", "r2am")
    res = runner.invoke(app, ["export", str(ckpt), "--onnx", str(tmp_path / "m.onnx"), "--torchscript",
                              str(tmp_path / "m.ts")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.ts").is_file()
    images = []
    for i in range(3):
        Image.new("RGB", (90, 30), (40 * i, 200, 100)).save(tmp_path / f"{i}.png")
        images.append(str(tmp_path / f"{i}.png"))
    via_onnx = runner.invoke(app, ["predict", "--onnx", str(tmp_path / "m.onnx"), *images])
    via_torch = runner.invoke(app, ["predict", "-m", str(ckpt), "--precision", "fp32", "--device", "cpu", *images])
    assert via_onnx.exit_code == 0 and via_torch.exit_code == 0, via_onnx.output + via_torch.output
    rows_onnx = [line.split("\t") for line in via_onnx.stdout.splitlines()]
    rows_torch = [line.split("\t") for line in via_torch.stdout.splitlines()]
    assert [r[:2] for r in rows_onnx] == [r[:2] for r in rows_torch] and len(rows_onnx) == 3
    assert all(abs(float(a[2]) - float(b[2])) < 1e-4 for a, b in zip(rows_onnx, rows_torch, strict=True))
    res = runner.invoke(app, ["predict", "--onnx", str(tmp_path / "m.onnx"), "--decoder", "beam", *images])
    assert res.exit_code == 2 and "needs a CTC model" in res.stderr


def test_export_and_predict_errors(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt", "crnn")
    res = runner.invoke(app, ["export", str(ckpt)])
    assert res.exit_code == 2 and "--onnx" in res.stderr
    res = runner.invoke(app, ["export", str(tmp_path / "nope.pt"), "--onnx", str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "not found" in res.stderr
    Image.new("RGB", (90, 30)).save(tmp_path / "a.png")
    res = runner.invoke(app, ["predict", "-m", str(ckpt), "--onnx", str(ckpt), str(tmp_path / "a.png")])
    assert res.exit_code == 2 and "one of" in res.stderr
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    res = runner.invoke(app, ["predict", "--onnx", str(tmp_path / "junk.onnx"), str(tmp_path / "a.png")])
    assert res.exit_code == 1 and "junk.onnx" in res.stderr and "ONNX" in res.stderr


def test_onnx_of_a_grouped_model_reports_the_script_head(tmp_path: Path) -> None:
    # the script head is a second ONNX output: predict --onnx gives the same text, script and probability as torch
    import json

    kw = {"backbone": "cnn_ctc", "backbone_kwargs": {"out_channels": 32}, "heads": 3, "hidden_size": 16}
    torch.manual_seed(3)
    model = create_model("grouped", len(TOKENS) + 1, **kw)
    with torch.no_grad():
        model.task_logits.normal_(0, 2.0)  # a non-uniform task-to-head assignment: words go to different heads
        for p in model.script_head.parameters():
            p.normal_(0, 3.0)
    ckpt = save_checkpoint({"model_name": "grouped", "model_kwargs": kw, "model": model.state_dict(),
                            "charset": {"tokens": TOKENS, "mode": "codepoint"},
                            "image": {"img_h": 32, "img_w": 100, "rgb": True, "keep_ratio": False}}, tmp_path / "m.pt")
    ort_model = OnnxModel(export_onnx(ckpt, tmp_path / "m.onnx"), threads=1)
    rec = Recognizer.from_checkpoint(ckpt, device="cpu", precision="fp32")
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(17, 3, 32, 100, generator=g) - 0.5) * 0.4 + torch.linspace(-0.7, 0.7, 17).view(17, 1, 1, 1)
    with torch.no_grad():
        logits, scripts = ort_model.forward_routed(x)
        want_logits, want_scripts = rec.model.forward_routed(x)
    _close(logits, want_logits)
    _close(scripts, want_scripts)
    got, want = ort_model.recognizer().predict(x), rec.predict(x)
    assert len({p.script for p in want}) > 1  # the test sees several scripts
    assert [(p.text, p.script) for p in got] == [(p.text, p.script) for p in want]
    assert all(abs(a.script_prob - b.script_prob) < 1e-5 for a, b in zip(got, want, strict=True))
    image = tmp_path / "a.png"
    Image.new("RGB", (90, 30), (10, 200, 60)).save(image)
    res = runner.invoke(app, ["predict", "--onnx", str(tmp_path / "m.onnx"), "--format", "json", str(image)])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)[0]
    assert row["script"] in {"ARA", "BEN", "CHI", "HIN", "JPN", "KOR", "LAT"} and 0 < row["script_prob"] <= 1
    assert not hasattr(OnnxModel(export_onnx(_checkpoint(tmp_path / "c.pt", "crnn"), tmp_path / "c.onnx")),
                       "forward_routed")  # a single-head export has no script output
