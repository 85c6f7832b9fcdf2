"""Inference on images as they come from cameras, scanners and the web: decoded as a viewer shows them (EXIF
orientation, 16-bit grey, transparent colours), and ``cllstr predict`` keeping every good image of a folder, whatever
the bad files or the file names around it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cllstr.checkpoint import save_checkpoint
from cllstr.cli.main import app
from cllstr.data.loading.decode import decode_image
from cllstr.models import create_model
from cllstr.recognizer import Recognizer
from cllstr.text.charset import Charset

runner = CliRunner()
TOKENS = list("abcdefghij")


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("cnn_ctc", len(TOKENS) + 1, out_channels=32)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wild") / "tiny.pt"
    return save_checkpoint({"model_name": "cnn_ctc", "model_kwargs": {"out_channels": 32},
                            "charset": {"tokens": TOKENS, "mode": "codepoint"}, "model": _model().state_dict(),
                            "image": {"img_h": 32, "img_w": 100, "rgb": True, "keep_ratio": False}}, path)


def _word(size: tuple[int, int] = (60, 20)) -> Image.Image:
    return Image.new("RGB", size, (230, 230, 230))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_exif_rotated_jpeg_comes_out_upright(mode: str) -> None:
    stored = Image.new("RGB", (20, 60), "white")  # a phone's sideways crop: 20 wide, 60 high as stored
    stored.paste((0, 0, 0), (0, 0, 10, 10))  # black corner at the stored top-left
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buf = _encode(stored, "JPEG", exif=exif, quality=95)
    for draft in (False, True):
        img = decode_image(buf, mode, (100, 32), draft=draft, upright=True)
        assert img.size == (60, 20)
        arr = np.asarray(img.convert("L"))
        assert arr[:10, -10:].mean() < 60 and arr[:10, :10].mean() > 200  # the corner is now at the top-right
    # dataset records keep the stored orientation (what the reference loaders and DALI read)
    assert decode_image(buf, mode).size == (20, 60)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_16_bit_grey_png_is_scaled_not_clipped(mode: str) -> None:
    ramp = np.linspace(0, 65535, 64 * 16).astype(np.uint16).reshape(16, 64)
    img = decode_image(_encode(Image.fromarray(ramp), "PNG"), mode)
    arr = np.asarray(img.convert("L")).astype(int)
    assert np.abs(arr - (ramp >> 8)).max() <= 1  # Pillow's own conversion makes all but the first pixels 255


@pytest.mark.parametrize("src_mode,transparent", [("RGB", (0, 0, 0)), ("L", 0), ("P", 0)])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_transparent_colour_is_composited_on_white(src_mode: str, transparent: object, mode: str) -> None:
    img = Image.new("L", (40, 20), 0)
    img.paste(90, (5, 5, 20, 15))  # dark ink on a background marked transparent (PNG tRNS / GIF transparency)
    img = img.convert(src_mode)
    fmt = "GIF" if src_mode == "P" else "PNG"
    out = np.asarray(decode_image(_encode(img, fmt, transparency=transparent), mode).convert("L"))
    assert out[0, 0] == 255 and out[10, 10] < 120  # white around the ink instead of black, the ink kept


def test_pil_rgba_input_is_prepared_like_its_file(tmp_path: Path) -> None:
    img = Image.new("RGBA", (60, 20), (0, 0, 0, 0))  # transparent pixels hide black
    img.paste((40, 40, 40, 255), (10, 5, 40, 15))
    img.save(tmp_path / "word.png")
    rec = Recognizer(_model(), Charset(TOKENS), device="cpu", precision="fp32")
    from_pil = rec.preprocess([Image.open(tmp_path / "word.png")])
    assert torch.equal(from_pil, rec.preprocess([tmp_path / "word.png"]))
    assert from_pil[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]  # white background, in [-1, 1]


def test_recognizer_reads_a_photo_upright(tmp_path: Path) -> None:
    stored = Image.new("RGB", (20, 60), "white")
    stored.paste((0, 0, 0), (0, 50, 20, 60))  # a dark band at the stored bottom: the displayed left edge
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    rec = Recognizer(_model(), Charset(TOKENS), device="cpu", precision="fp32")
    x = rec.preprocess([tmp_path / "photo.jpg"])  # (1, 3, 32, 100) in [-1, 1]
    assert x[0, :, :, :10].mean() < -0.5 and x[0, :, :, -10:].mean() > 0.5


def test_non_image_error_names_no_python_object() -> None:
    with pytest.raises(OSError) as info:
        decode_image(b"hello, not an image")
    assert "BytesIO" not in str(info.value) and "not an image" in str(info.value)


def test_a_bad_image_does_not_split_its_batch(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.png", "c.png"):
        _word().save(tmp_path / name)
    (tmp_path / "b.png").write_bytes(_encode(_word(), "PNG")[:60])  # truncated
    calls = []
    forward = Recognizer.predict_tensor

    def counted(self: Recognizer, images: torch.Tensor) -> list:
        calls.append(images.shape[0])
        return forward(self, images)

    monkeypatch.setattr(Recognizer, "predict_tensor", counted)
    res = runner.invoke(app, ["predict", "-m", str(ckpt), "-f", str(tmp_path), "-b", "3", "--device", "cpu",
                              "--format", "json", "-o", str(tmp_path / "out.json")])
    assert res.exit_code == 1 and "b.png" in res.stderr and "Traceback" not in res.output
    assert calls == [2]  # the two good images as one batch, not one forward pass each
    rows = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [Path(r["path"]).name for r in rows] == ["a.png", "c.png"]


def test_folder_counts_the_files_it_leaves_out(ckpt: Path, tmp_path: Path) -> None:
    _word().save(tmp_path / "a.png")
    _word().save(tmp_path / "photo.jfif", format="JPEG")  # browsers save JPEGs as .jfif
    (tmp_path / "labels.txt").write_text("a.png\tword\n")
    (tmp_path / "notes.png").write_text("not an image")
    res = runner.invoke(app, ["predict", "-m", str(ckpt), "-f", str(tmp_path), "--device", "cpu", "--no-progress"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert [Path(line.split("\t")[0]).name for line in res.stdout.splitlines()] == ["a.png", "photo.jfif"]
    lines = res.stderr.splitlines()
    assert any(line.startswith("warning: ") and "1 file(s)" in line and "labels.txt" in line for line in lines)
    assert any(line.startswith("error: ") and "notes.png" in line and "0x" not in line for line in lines)


@pytest.mark.parametrize("fmt", ["tsv", "json"])
def test_non_utf8_file_names_are_written_out(ckpt: Path, tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    _word().save(folder / "plain.png")
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # a Latin-1 name, as old archives unpack
    try:
        with open(raw, "wb") as f:
            f.write(_encode(_word(), "PNG"))
    except OSError:
        pytest.skip("this file system only takes UTF-8 file names")
    out = tmp_path / f"out.{fmt}"
    res = runner.invoke(app, ["predict", "-m", str(ckpt), "-f", str(folder), "--device", "cpu", "--format", fmt,
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    if fmt == "tsv":
        assert sorted(line.split(b"\t")[0] for line in out.read_bytes().splitlines()) == sorted(
            [raw, os.fsencode(folder / "plain.png")])
    else:
        rows = json.loads(out.read_text(encoding="utf-8"))
        assert sorted(os.fsencode(r["path"]) for r in rows) == sorted([raw, os.fsencode(folder / "plain.png")])
