"""Import of reference checkpoints (CLL-STR, deep-text-recognition-benchmark): key layout, class tables,
preprocessing, and bad files.

The reference state dicts are written here by hand from cllstr models: the renaming to the reference layout (the
``module.`` prefix of DataParallel, ``FeatureExtraction.ConvNet``, ``Prediction.attention_cell``...) and the
reference class order are spelt out below, independently of :mod:`cllstr.interop`, so a wrong mapping or a wrong
class permutation changes the imported model's scores and fails the round trip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cllstr.checkpoint import load_checkpoint, load_model
from cllstr.cli.main import app
from cllstr.interop import import_reference
from cllstr.models import create_model
from cllstr.recognizer import Recognizer
from cllstr.train.cascade import init_from_checkpoint

runner = CliRunner()
CHARS = list("abcdefgh") + ["कि", "ب"]  # one multi-code-point token, as in the MLT19 table

# cllstr name -> reference name, applied in order (the reference layout of model.py / modules/*.py)
TO_REF = [
    (r"^trans\.loc\.", "Transformation.LocalizationNetwork.conv."),
    (r"^trans\.loc_fc1\.", "Transformation.LocalizationNetwork.localization_fc1.0."),
    (r"^trans\.loc_fc2\.", "Transformation.LocalizationNetwork.localization_fc2."),
    (r"^sequence\.", "SequenceModeling."),
    (r"^decoder\.embed\.", "Prediction.char_embeddings."),
    (r"^decoder\.", "Prediction.attention_cell."),
]
SVTR_TO_REF = [
    (r"^patch_embed\.", "FeatureExtraction.ConvNet.patch_embed.proj."),
    (r"^pos_embed$", "FeatureExtraction.ConvNet.pos_embed"),
    (r"^stages\.(\d)\.", lambda m: f"FeatureExtraction.ConvNet.blocks{int(m.group(1)) + 1}."),
    (r"^merges\.(\d)\.", lambda m: f"FeatureExtraction.ConvNet.sub_sample{int(m.group(1)) + 1}."),
    (r"\.mlp\.0\.", ".mlp.fc1."), (r"\.mlp\.2\.", ".mlp.fc2."), (r"^head\.", "Prediction."),
]
RCNN_TO_REF = [(r"\.gate_u\.", ".wgf_u."), (r"\.gate_x\.", ".wgr_x."), (r"\.conv_u\.", ".wf_u."),
               (r"\.conv_x\.", ".wr_x."), (r"\.bn_init\.", ".BN_x_init."), (r"\.steps\.", ".GRCL."),
               (r"\.bn_gate_u\.", ".BN_gfu."), (r"\.bn_gate_x\.", ".BN_grx."), (r"\.bn_u\.", ".BN_fu."),
               (r"\.bn_x\.", ".BN_rx."), (r"\.bn_gated\.", ".BN_Gx.")]


def _randomise(model: torch.nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)


def to_reference(model: torch.nn.Module, ref_classes: list[str], our_classes: list[str]) -> dict[str, torch.Tensor]:
    """The state dict the reference would save for ``model``: its key layout, its class order, ``module.``."""
    order = torch.tensor([our_classes.index(name) for name in ref_classes])  # reference row -> cllstr class
    stages = model.stages if hasattr(model, "prediction") else {"feat": "svtr" if hasattr(model, "merges") else "vgg"}
    attn = stages.get("pred") == "attn"
    out = {}
    for name, t in model.state_dict().items():
        if name in ("head.weight", "head.bias", "decoder.embed.weight"):
            t = t.index_select(0, order)
        if name == "decoder.rnn.weight_ih" and model.decoder.embed is None:
            width = t.shape[1] - len(our_classes)
            t = torch.cat([t[:, :width], t[:, width:].index_select(1, order)], 1)
        if stages["feat"] == "svtr" and hasattr(model, "prediction"):  # SVTR inside a four-stage model
            rules = [(r"^features\.svtr\.", "")] + SVTR_TO_REF[:-1] + list(TO_REF)
        elif stages["feat"] == "svtr":
            rules = list(SVTR_TO_REF)
        else:
            rules = list(TO_REF)
        if stages["feat"] == "resnet":
            rules.append((r"^features\.", "FeatureExtraction.ConvNet."))
        elif stages["feat"] != "svtr":
            rules.append((r"^features\.body\.", "FeatureExtraction.ConvNet."))
        if stages["feat"] == "rcnn":
            rules += RCNN_TO_REF
        rules.append((r"^head\.", "Prediction.generator." if attn else "Prediction."))
        for pattern, repl in rules:
            name = re.sub(pattern, repl, name)
        out["module." + name] = t.clone()
    return out


def _images(n: int = 3, c: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(n, c, 32, 100) * 2 - 1


def test_dtrb_trba_round_trip_onehot_and_class_order(tmp_path: Path) -> None:
    kw = dict(trans="tps", feat="resnet", seq="bilstm", pred="attn", in_chans=1, out_channels=64, hidden_size=32,
              num_fiducial=20, tps_align_corners=True, attn_embed=0, attn_sos=1, max_length=25)
    chars = list("0123456789abcdefghijklmnopqrstuvwxyz")
    source = create_model("four_stage", len(chars) + 2, **kw).eval()
    _randomise(source)
    ours = ["[s]", "[GO]"] + chars  # cllstr: class 0 is the end token
    sd = to_reference(source, ["[GO]", "[s]"] + chars, ours)
    sd["module.Transformation.GridGenerator.inv_delta_C"] = torch.zeros(23, 23)  # DTRB saves these buffers
    sd["module.Transformation.GridGenerator.P_hat"] = torch.zeros(3200, 23)
    assert "module.Prediction.attention_cell.rnn.weight_ih" in sd
    assert "module.FeatureExtraction.ConvNet.conv0_1.weight" in sd
    torch.save(sd, tmp_path / "trba.pth")
    res = runner.invoke(app, ["import", str(tmp_path / "trba.pth"), "--from", "dtrb", "--arch",
                              "TPS-ResNet-BiLSTM-Attn", "-o", str(tmp_path / "trba.pt")])
    assert res.exit_code == 0, res.output
    assert "one-hot" in res.output and "align_corners" in res.output
    ckpt = load_checkpoint(tmp_path / "trba.pt")
    assert ckpt["charset"]["tokens"] == ["[GO]"] + chars
    assert ckpt["image"] == {"img_h": 32, "img_w": 100, "rgb": False, "keep_ratio": False}
    assert ckpt["model_kwargs"]["attn_sos"] == 1 and ckpt["reference"]["source"] == "dtrb"
    rec = Recognizer.from_checkpoint(tmp_path / "trba.pt", device="cpu", precision="fp32")
    x = _images(3, 1)
    with torch.no_grad():
        torch.testing.assert_close(rec.model(x), source(x), atol=0, rtol=0)
    assert len(rec.predict(x)) == 3
    # --tps-grid exact: the float64 grid, recorded among the differences; close to the reference's float32 grid
    res = runner.invoke(app, ["import", str(tmp_path / "trba.pth"), "--from", "dtrb", "--arch",
                              "TPS-ResNet-BiLSTM-Attn", "-o", str(tmp_path / "exact.pt"), "--tps-grid", "exact"])
    assert res.exit_code == 0 and "float64" in res.output, res.output
    exact = load_model(tmp_path / "exact.pt").model
    assert exact.trans.grid == "exact" and rec.model.trans.grid == "reference"
    with torch.no_grad():
        assert (exact.trans(x) - rec.model.trans(x)).abs().max().item() < 1e-2
    res = runner.invoke(app, ["import", str(tmp_path / "trba.pth"), "--from", "dtrb", "--arch",
                              "TPS-ResNet-BiLSTM-Attn", "-o", str(tmp_path / "bad.pt"), "--tps-grid", "fast"])
    assert res.exit_code == 2 and "--tps-grid" in res.output and not (tmp_path / "bad.pt").exists()


def test_cll_str_crnn_and_svtr_tables_and_unused_keys(tmp_path: Path) -> None:
    charset_file = tmp_path / "charset.txt"
    charset_file.write_text("".join(c + "\n" for c in CHARS), encoding="utf-8")
    ours = ["<blank>", "[PAD]", "[UNK]", " "] + CHARS
    crnn = create_model("crnn", len(ours), last_pad=0).eval()
    _randomise(crnn)
    torch.save(to_reference(crnn, ours, ours), tmp_path / "crnn.pth")
    res = runner.invoke(app, ["import", str(tmp_path / "crnn.pth"), "--from", "cll-str", "--arch", "CRNN",
                              "--charset", str(charset_file), "-o", str(tmp_path / "crnn.pt")])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(tmp_path / "crnn.pt")
    assert ckpt["charset"] == {"tokens": ours[1:], "mode": "grapheme"}
    assert ckpt["model_kwargs"]["last_pad"] == 0
    rec = Recognizer.from_checkpoint(tmp_path / "crnn.pt", device="cpu", precision="fp32")
    x = _images()
    with torch.no_grad():
        out = rec.model(x)
        assert out.shape == (3, 24, len(ours))
        torch.testing.assert_close(out, crnn(x), atol=0, rtol=0)

    svtr = create_model("svtr_tiny", len(ours), merge_eps=1e-5).eval()
    _randomise(svtr)
    sd = to_reference(svtr, ours, ours)
    for unused in ("last_conv.weight", "linear.weight", "linear.bias", "norm.weight", "norm.bias"):
        sd["module.FeatureExtraction.ConvNet." + unused] = torch.zeros(1)
    torch.save(sd, tmp_path / "svtr.pth")
    result = import_reference(tmp_path / "svtr.pth", "cll-str", "SVTR", CHARS)
    assert len(result.dropped) == 5 and result.checkpoint["model_kwargs"]["merge_eps"] == 1e-5
    model = create_model("svtr_tiny", len(ours), **result.checkpoint["model_kwargs"]).eval()
    model.load_state_dict(result.checkpoint["model"])
    assert model.merges[0].norm.eps == 1e-5
    with torch.no_grad():
        torch.testing.assert_close(model(x), svtr(x), atol=0, rtol=0)
    # the imported checkpoint seeds cascade learning like any cllstr checkpoint
    target = create_model("crnn", 6)
    report = init_from_checkpoint(target, ["a", "b", "x", "[UNK]", " "], tmp_path / "crnn.pt")
    assert report.tokens_shared == 4 and "head.weight" in report.copied


def test_cll_str_attention_embedding_order(tmp_path: Path) -> None:
    chars = list("abcd")
    ours = ["[EOS]", "[PAD]", "[UNK]", " ", "[SOS]"] + chars
    model = create_model("four_stage", len(ours), trans="none", feat="rcnn", seq="none", pred="attn",
                         out_channels=64, hidden_size=32, attn_sos=4).eval()
    _randomise(model)
    sd = to_reference(model, ["[PAD]", "[UNK]", " ", "[SOS]", "[EOS]"] + chars, ours)
    assert "module.FeatureExtraction.ConvNet.3.GRCL.4.BN_Gx.running_var" in sd
    torch.save(sd, tmp_path / "r2am.pth")
    result = import_reference(tmp_path / "r2am.pth", "cll-str", "None-RCNN-None-Attn", chars)
    imported = create_model("four_stage", len(ours), **result.checkpoint["model_kwargs"]).eval()
    imported.load_state_dict(result.checkpoint["model"])
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(imported(x), model(x), atol=0, rtol=0)


@pytest.fixture
def crnn_pth(tmp_path: Path) -> Path:
    chars = list("0123456789abcdefghijklmnopqrstuvwxyz")
    ours = ["<blank>"] + chars
    model = create_model("crnn", len(ours), last_pad=0, in_chans=1)
    path = tmp_path / "dtrb_crnn.pth"
    torch.save(to_reference(model, ours, ours), path)
    return path


def _import(*args: str) -> object:
    return runner.invoke(app, ["import", *args])


def test_bad_files_and_arguments(tmp_path: Path, crnn_pth: Path) -> None:
    out = str(tmp_path / "o.pt")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    res = _import(str(junk), "--from", "dtrb", "--arch", "CRNN", "-o", out)
    assert res.exit_code == 1 and "not a PyTorch checkpoint" in res.stderr
    res = _import(str(crnn_pth), "--from", "dtrb", "--arch", "None-VGG-BiLSTM-CTC", "-o", out)
    assert res.exit_code == 0, res.output
    res = _import(str(crnn_pth), "--from", "dtrb", "--arch", "None-ResNet-BiLSTM-CTC", "-o", out)
    assert res.exit_code == 1 and "does not fit --arch None-ResNet-BiLSTM-CTC" in res.stderr
    res = _import(str(crnn_pth), "--from", "dtrb", "--arch", "TPS-VGG-BiLSTM-CTC", "-o", out)
    assert res.exit_code == 1 and "no Transformation" in res.stderr
    res = _import(str(crnn_pth), "--from", "dtrb", "--arch", "None-VGG-BiLSTM-Attn", "-o", out)
    assert res.exit_code == 1 and "attention_cell" in res.stderr
    sd = torch.load(crnn_pth)
    del sd["module.SequenceModeling.1.linear.bias"]
    torch.save(sd, tmp_path / "missing.pth")
    res = _import(str(tmp_path / "missing.pth"), "--from", "dtrb", "--arch", "CRNN", "-o", out)
    assert res.exit_code == 1 and "sequence.1.linear.bias" in res.stderr
    res = _import(str(crnn_pth), "--from", "dtrb", "--arch", "CRNN", "--sensitive", "-o", out)
    assert res.exit_code == 1 and "37 classes" in res.stderr and "has 95" in res.stderr
    for argv, hint in [(["--from", "paddle", "--arch", "CRNN"], "--from"),
                       (["--from", "dtrb", "--arch", "X-Y"], "--arch"),
                       (["--from", "cll-str", "--arch", "CRNN"], "--charset"),
                       (["--from", "dtrb", "--arch", "CRNN", "--character", "ab", "--sensitive"], "one of")]:
        res = _import(str(crnn_pth), *argv, "-o", out)
        assert res.exit_code == 2 and hint in res.stderr, (argv, res.stderr)
    res = _import(str(tmp_path / "nope.pth"), "--from", "dtrb", "--arch", "CRNN", "-o", out)
    assert res.exit_code == 2 and "not found" in res.stderr


def test_imported_checkpoint_evaluates_with_cllstr_eval(tmp_path: Path, crnn_pth: Path) -> None:
    from tests.test_train_engine import make_data_root

    root = make_data_root(tmp_path / "data", ("LAT",), n_train=2, n_val=6)
    res = _import(str(crnn_pth), "--from", "dtrb", "--arch", "CRNN", "-o", str(tmp_path / "m.pt"))
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", str(tmp_path / "m.pt"), "-d", str(root), "--device", "cpu", "--json",
                              str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    import json

    report = json.loads((tmp_path / "e.json").read_text())
    assert report["languages"]["LAT"]["samples"] == 6


def test_cll_str_svtr_feature_extractor_with_attention(tmp_path: Path) -> None:
    chars = list("abcd")
    ours = ["[EOS]", "[PAD]", "[UNK]", " ", "[SOS]"] + chars
    model = create_model("four_stage", len(ours), feat="svtr", seq="none", pred="attn", hidden_size=32,
                         attn_sos=4, svtr_merge_eps=1e-5).eval()
    _randomise(model)
    sd = to_reference(model, ["[PAD]", "[UNK]", " ", "[SOS]", "[EOS]"] + chars, ours)
    assert "module.FeatureExtraction.ConvNet.blocks3.2.mlp.fc2.weight" in sd
    sd["module.FeatureExtraction.ConvNet.last_conv.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "svtr_attn.pth")
    result = import_reference(tmp_path / "svtr_attn.pth", "cll-str", "None-SVTR-None-Attn", chars)
    assert result.dropped == ["module.FeatureExtraction.ConvNet.last_conv.weight".removeprefix("module.")]
    imported = create_model("four_stage", len(ours), **result.checkpoint["model_kwargs"]).eval()
    imported.load_state_dict(result.checkpoint["model"])
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(imported(x), model(x), atol=0, rtol=0)
