"""Deployment: export a checkpoint's model to ONNX (dynamic batch) or TorchScript, and recognise with onnxruntime.

The exported graph maps images ``(B, C, H, W)`` in [-1, 1] to logits ``(B, T, K)``: the model alone, for CTC and
attention models alike (the attention decoder's greedy loop of ``max_length + 1`` steps is unrolled into the graph).
Decoding stays outside the graph: no native op is exported, so the ONNX file runs on any onnxruntime build. The ONNX
file carries what inference needs as metadata (``cllstr.charset``, ``cllstr.image``, ``cllstr.prediction``), so
:meth:`OnnxModel.recognizer` needs nothing but the file: images are prepared as by
:class:`~cllstr.recognizer.Recognizer` and the logits decoded by the same head-specific decoders (greedy CTC through
``cllstr.ops``, or greedy attention).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cllstr.checkpoint import load_model
from cllstr.models import is_model, model_info, prediction_kind
from cllstr.text.charset import Charset

__all__ = ["OPSET", "SCRIPT_OUTPUT", "export_onnx", "export_program", "export_torchscript", "OnnxModel"]

OPSET = 17
_META = ("cllstr.charset", "cllstr.image", "cllstr.prediction", "cllstr.model")
SCRIPT_OUTPUT = "script_logits"  # the second output of models with a script head (columns in SCRIPT_ORDER)


def _example(state: dict[str, Any], batch: int = 2) -> torch.Tensor:
    """An input of the checkpoint's format; a checkpoint that records none gets its model's registry default."""
    info = model_info(state["model_name"]) if is_model(state["model_name"]) else None
    h, w = info.input_size if info is not None else (32, 100)
    image = state.get("image", {})
    rgb = image.get("rgb", info is None or info.in_chans == 3)
    return torch.zeros(batch, 3 if rgb else 1, int(image.get("img_h", h)), int(image.get("img_w", w)))


class _Routed(nn.Module):
    """A model with a script head as one graph: images to (routed logits, script logits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_routed(images)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = OPSET) -> Path:
    """Write the model of ``checkpoint`` as ONNX with a dynamic batch axis and cllstr metadata.

    Args:
        checkpoint: A cllstr checkpoint.
        out: The ``.onnx`` file.
        opset: ONNX opset (>= 16 for TPS's ``GridSample``).

    Returns:
        ``out``.
    """
    import onnx

    loaded = load_model(checkpoint)
    model, state = loaded.model, loaded.state
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    outputs = ["logits"]
    if hasattr(model, "forward_routed"):  # a script head (grouped models): its logits are a second output
        model, outputs = _Routed(model), ["logits", SCRIPT_OUTPUT]
    with warnings.catch_warnings():  # tracer notes about the unrolled decoder loop and shape arithmetic
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (_example(state),), str(out), input_names=["images"], output_names=outputs,
                          dynamic_axes={"images": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
                          opset_version=opset, dynamo=False)
    proto = onnx.load(str(out))
    meta = {
        "cllstr.charset": json.dumps(state["charset"], ensure_ascii=False),
        "cllstr.image": json.dumps(state.get("image", {})),
        "cllstr.prediction": prediction_kind(model),
        "cllstr.model": json.dumps({"name": state["model_name"], "kwargs": state.get("model_kwargs", {})}),
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


def export_torchscript(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the model of ``checkpoint`` as a traced TorchScript module (``torch.jit.load`` reads it)."""
    loaded = load_model(checkpoint)
    model, state = loaded.model, loaded.state
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (_example(state),), check_trace=False)
        extra = {"cllstr.json": _meta_json(state, model)}
        torch.jit.save(traced, str(out), _extra_files=extra)  # deprecated in favour of torch.export, still supported
    return out


def _meta_json(state: dict[str, Any], model: nn.Module) -> str:
    return json.dumps({"charset": state["charset"], "image": state.get("image", {}),
                       "prediction": prediction_kind(model)}, ensure_ascii=False)


def export_program(checkpoint: str | Path, out: str | Path, max_batch: int = 4096) -> Path:
    """Write the model of ``checkpoint`` as a ``torch.export`` program with a dynamic batch axis (``.pt2``;
    ``torch.export.load`` reads it, ``cllstr.json`` in its extra files holds the charset and image format).

    Native ops stay in the graph as ``torch.ops.cllstr.*`` calls (they have fake kernels), so loading it needs
    ``import cllstr.ops`` first when the model uses one.
    """
    loaded = load_model(checkpoint)
    model, state = loaded.model, loaded.state
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    try:
        with warnings.catch_warnings():  # nn.LSTM re-assigns its flat weights while traced; harmless here
            warnings.filterwarnings("ignore", message=".*were assigned during export.*")
            program = torch.export.export(model, (_example(state),), dynamic_shapes=({0: batch},))
    except Exception as e:  # torch.export raises many types for untraceable code
        raise ValueError(f"model {state['model_name']!r} does not export with torch.export: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from e
    torch.export.save(program, str(out), extra_files={"cllstr.json": _meta_json(state, model)})
    return out


class OnnxModel(nn.Module):
    """An onnxruntime session behind the model interface: images ``(B, C, H, W)`` to float32 logits ``(B, T, K)``.

    Args:
        path: An ONNX file written by :func:`export_onnx`.
        threads: onnxruntime intra-op threads (0: its default).

    Attributes:
        prediction: The head (``"ctc"`` / ``"attn"``) read from the metadata, as on cllstr models.
        charset, image: The checkpoint's charset and image settings.
        forward_routed: Present when the model has a script head (the ``script_logits`` output): images to routed
            logits and script logits, as on ``grouped`` models, so that its recognizer reports the script.
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        super().__init__()
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise ValueError(f"{path} is not an ONNX model onnxruntime can load: {' '.join(str(e).split())}") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in _META if k not in meta]
        if missing:
            raise ValueError(f"{path} lacks the cllstr metadata {', '.join(missing)}; export it with cllstr export")
        cs = json.loads(meta["cllstr.charset"])
        self.charset = Charset(cs["tokens"], mode=cs.get("mode", "codepoint"))
        self.image: dict[str, Any] = json.loads(meta["cllstr.image"])
        self.prediction = meta["cllstr.prediction"]
        self.input_name = self.session.get_inputs()[0].name
        if SCRIPT_OUTPUT in [o.name for o in self.session.get_outputs()]:
            self.forward_routed = self._forward_routed  # the Recognizer then reports the script head's answer

    def _run(self, images: torch.Tensor) -> list[np.ndarray]:
        x = np.ascontiguousarray(images.detach().float().cpu().numpy())
        return self.session.run(None, {self.input_name: x})

    def _forward_routed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: images: ``(B, C, H, W)``. Returns: logits ``(B, T, K)`` and script logits ``(B, t)`` (float32)."""
        logits, scripts = self._run(images)[:2]
        return torch.from_numpy(logits), torch.from_numpy(scripts)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, H, W)`` float. Returns: ``(B, T, K)`` float32 logits (on the CPU)."""
        return torch.from_numpy(self._run(images)[0])

    def recognizer(self, batch_size: int = 256) -> Any:
        """A :class:`~cllstr.recognizer.Recognizer` running this session (CPU, float32, greedy decoding)."""
        from cllstr.recognizer import Recognizer

        img = self.image
        return Recognizer(self, self.charset, int(img.get("img_h", 32)), int(img.get("img_w", 100)),
                          bool(img.get("rgb", True)), bool(img.get("keep_ratio", False)), device="cpu",
                          precision="fp32", batch_size=batch_size)
