"""Import checkpoints of the reference code: CLL-STR (ku21fan/CLL-STR) and deep-text-recognition-benchmark (DTRB).

Both save ``model.state_dict()`` of ``torch.nn.DataParallel(Model(opt))`` (keys prefixed ``module.``), a four-stage
``Model`` with modules ``Transformation``, ``FeatureExtraction``, ``SequenceModeling`` and ``Prediction``.
:func:`import_reference` maps such a state dict onto the matching cllstr model, rebuilds the reference class table
and returns a cllstr checkpoint (:mod:`cllstr.train.checkpoint` format) that ``cllstr eval``/``predict`` and
``train --init-from`` use unchanged.

Architectures (``arch``): ``CRNN`` (None-VGG-BiLSTM-CTC, cllstr ``crnn``), ``SVTR`` (CLL-STR's SVTR-T, cllstr
``svtr_tiny``) and any ``Trans-Feat-Seq-Pred`` string such as ``TPS-ResNet-BiLSTM-Attn`` (cllstr ``four_stage``).

Class tables (cllstr class 0 is the CTC blank, or the attention end token):

- CLL-STR CTC: ``[CTCblank] [PAD] [UNK] ' '`` + the charset file (``MLT19_charset.txt``: 4,680 classes), as is.
- CLL-STR Attn: reference ``[PAD] [UNK] ' ' [SOS] [EOS]`` + file; cllstr ``[EOS]`` first, the other specials
  kept as tokens, start token ``[SOS]``.
- DTRB CTC: ``[CTCblank]`` + ``character``; DTRB Attn: reference ``[GO] [s]`` + ``character``, cllstr ``[s]`` first
  and ``[GO]`` as the start token.

Reference details that differ from cllstr's defaults and are reproduced in the imported model (``DIFFERENCES``): the
VGG's last convolution is unpadded (T = 24, ``last_pad=0``); SVTR's merging LayerNorms have eps 1e-5; TPS samples
with ``align_corners=True``; DTRB's attention decoder feeds one-hot vectors (``attn_embed=0``). Keys the reference
builds but never runs (SVTR's ``last_conv``, ``linear``, ``norm``) are dropped, buffers it saves are rebuilt (TPS's
``inv_delta_C``, ``P_hat``), buffers it does not save (SVTR's local mask) are computed by cllstr.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cllstr.models import create_model
from cllstr.models.tps import GRIDS
from cllstr.text.charset import REFERENCE_SPECIALS, Charset

__all__ = ["SOURCES", "DTRB_CHARACTERS", "DIFFERENCES", "ReferenceImport", "parse_arch", "class_table",
           "map_state_dict", "import_reference", "load_reference_state_dict"]

SOURCES = ("cll-str", "dtrb")
#: DTRB's ``--character`` default and its ``--sensitive`` table (``string.printable[:-6]``).
DTRB_CHARACTERS = {"default": "0123456789abcdefghijklmnopqrstuvwxyz", "sensitive": string.printable[:-6]}
DIFFERENCES = {
    "vgg": "VGG last conv unpadded as the reference: T = W/4 - 1 (24 for W = 100; cllstr's crnn pads it, T = 26)",
    "svtr": "SVTR merging LayerNorm eps 1e-5 as the reference (cllstr's svtr_* default 1e-6)",
    "tps": "TPS grid_sample align_corners=True as the reference (cllstr default False, an exact identity init)",
    "tps_exact": "TPS grid in float64 (--tps-grid exact): the reference's float32 grid differs from it by ~1.6e-5",
    "onehot": "DTRB attention decoder input: one-hot vectors (cllstr default: a learned 256-d embedding)",
}
_STAGES = {
    "trans": {"none": "none", "tps": "tps"},
    "feat": {"vgg": "vgg", "rcnn": "rcnn", "resnet": "resnet", "svtr": "svtr"},
    "seq": {"none": "none", "bilstm": "bilstm"},
    "pred": {"ctc": "ctc", "attn": "attn"},
}
_NAMED = {"crnn": ("none", "vgg", "bilstm", "ctc"), "svtr": ("none", "svtr", "none", "ctc")}
_RCNN = {"wgf_u": "gate_u", "wgr_x": "gate_x", "wf_u": "conv_u", "wr_x": "conv_x", "BN_x_init": "bn_init"}
_RCNN_STEP = {"BN_gfu": "bn_gate_u", "BN_grx": "bn_gate_x", "BN_fu": "bn_u", "BN_rx": "bn_x", "BN_Gx": "bn_gated"}


@dataclass
class ReferenceImport:
    """The result of :func:`import_reference`: a cllstr checkpoint and what was done."""

    checkpoint: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        c = self.checkpoint
        return (f"{c['reference']['source']} {c['reference']['arch']} -> {c['model_name']}: "
                f"{len(c['model'])} tensors, {len(c['charset']['tokens']) + 1} classes, {len(self.dropped)} unused "
                f"reference keys dropped")


def parse_arch(arch: str) -> tuple[str, str, str, str]:
    """``CRNN``, ``SVTR`` or ``Trans-Feat-Seq-Pred`` (case-insensitive) to lower-case stage names."""
    key = arch.strip().lower()
    if key in _NAMED:
        return _NAMED[key]
    parts = key.split("-")
    if len(parts) != 4:
        raise ValueError(f"architecture {arch!r}: expected CRNN, SVTR or Trans-Feat-Seq-Pred such as "
                         "TPS-ResNet-BiLSTM-Attn")
    for part, (stage, allowed) in zip(parts, _STAGES.items(), strict=True):
        if part not in allowed:
            raise ValueError(f"architecture {arch!r}: {stage} stage {part!r} is not one of {', '.join(allowed)}")
    return parts[0], parts[1], parts[2], parts[3]


def class_table(source: str, pred: str, characters: Sequence[str]) -> tuple[list[str], list[int], int | None]:
    """The cllstr charset tokens, the permutation ``perm`` (cllstr class ``c`` is reference class ``perm[c]``) and the
    attention start-token class (None for CTC)."""
    chars = list(characters)
    if source == "cll-str":
        if pred == "ctc":
            tokens = list(REFERENCE_SPECIALS) + chars
            return tokens, list(range(len(tokens) + 1)), None
        tokens = list(REFERENCE_SPECIALS) + ["[SOS]"] + chars  # reference: [PAD] [UNK] ' ' [SOS] [EOS] + chars
        perm = [4, 0, 1, 2, 3] + list(range(5, len(chars) + 5))
        return tokens, perm, 4
    if pred == "ctc":
        return chars, list(range(len(chars) + 1)), None
    tokens = ["[GO]"] + chars  # reference: [GO] [s] + chars
    return tokens, [1, 0] + list(range(2, len(chars) + 2)), 1


def load_reference_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a reference ``.pth``: a state dict (or a dict holding one as ``state_dict`` / ``model``)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for files that are not checkpoints
        raise ValueError(f"{p} is not a PyTorch checkpoint: {' '.join(str(e).split())[:200]}") from e
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{p} holds no state dict (a mapping of parameter names to tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _rename(key: str, feat: str, svtr_prefix: str = "") -> str | None:
    """The cllstr name of reference key ``key`` (None: a key the reference never runs or a rebuilt buffer)."""
    if key.startswith("Transformation.GridGenerator."):
        return None
    rules = [
        (r"^Transformation\.LocalizationNetwork\.conv\.", "trans.loc."),
        (r"^Transformation\.LocalizationNetwork\.localization_fc1\.0\.", "trans.loc_fc1."),
        (r"^Transformation\.LocalizationNetwork\.localization_fc2\.", "trans.loc_fc2."),
        (r"^SequenceModeling\.", "sequence."),
        (r"^Prediction\.generator\.", "head."),
        (r"^Prediction\.attention_cell\.", "decoder."),
        (r"^Prediction\.char_embeddings\.", "decoder.embed."),
        (r"^Prediction\.(weight|bias)$", r"head.\1"),
    ]
    if feat == "svtr":
        if re.match(r"^FeatureExtraction\.ConvNet\.(last_conv|linear|norm)\.", key):
            return None
        rules += [
            (r"^FeatureExtraction\.ConvNet\.patch_embed\.proj\.", f"{svtr_prefix}patch_embed."),
            (r"^FeatureExtraction\.ConvNet\.pos_embed$", f"{svtr_prefix}pos_embed"),
            (r"^FeatureExtraction\.ConvNet\.blocks(\d)\.", lambda m: f"{svtr_prefix}stages.{int(m.group(1)) - 1}."),
            (r"^FeatureExtraction\.ConvNet\.sub_sample(\d)\.",
             lambda m: f"{svtr_prefix}merges.{int(m.group(1)) - 1}."),
            (r"\.mlp\.fc1\.", ".mlp.0."), (r"\.mlp\.fc2\.", ".mlp.2."),
        ]
    elif feat == "resnet":
        rules.append((r"^FeatureExtraction\.ConvNet\.", "features."))
    else:
        rules.append((r"^FeatureExtraction\.ConvNet\.", "features.body."))
    if feat == "rcnn":
        rules += [(rf"\.{a}\.", f".{b}.") for a, b in _RCNN.items()]
        rules += [(r"\.GRCL\.(\d+)\.", r".steps.\1.")] + [(rf"\.{a}\.", f".{b}.") for a, b in _RCNN_STEP.items()]
    out = key
    for pattern, repl in rules:
        out = re.sub(pattern, repl, out)
    return out


def _permute(name: str, tensor: torch.Tensor, perm: list[int], sos: int | None, feat_width: int) -> torch.Tensor:
    """Reorder the class axis of the classifier, the input embedding and the one-hot input columns."""
    index = torch.tensor(perm)
    if name in ("head.weight", "head.bias", "decoder.embed.weight"):
        return tensor.index_select(0, index)
    if sos is not None and name == "decoder.rnn.weight_ih" and tensor.shape[1] == feat_width + len(perm):
        return torch.cat([tensor[:, :feat_width], tensor[:, feat_width:].index_select(1, index)], 1)
    return tensor


def _infer(sd: Mapping[str, torch.Tensor], stages: tuple[str, str, str, str]) -> dict[str, Any]:
    """Hyper-parameters read from the reference tensors."""
    trans, feat, seq, pred = stages
    first = next((v for k, v in sd.items() if k.startswith("FeatureExtraction.") and v.dim() == 4), None)
    if first is None:
        raise ValueError("the checkpoint has no FeatureExtraction convolution: not a four-stage reference model")
    info: dict[str, Any] = {"in_chans": int(first.shape[1])}
    if feat == "svtr":
        last = sd.get("FeatureExtraction.ConvNet.sub_sample3.conv.weight")
        if last is None:
            raise ValueError("--arch says SVTR but the checkpoint has no FeatureExtraction.ConvNet.sub_sample3 keys")
        info["out_channels"] = int(last.shape[0])
    if trans == "tps":
        bias = sd.get("Transformation.LocalizationNetwork.localization_fc2.bias")
        if bias is None:
            raise ValueError("--arch says TPS but the checkpoint has no Transformation.LocalizationNetwork keys")
        info["num_fiducial"] = int(bias.numel() // 2)
    if seq == "bilstm":
        w = sd.get("SequenceModeling.0.rnn.weight_hh_l0")
        if w is None:
            raise ValueError("--arch says BiLSTM but the checkpoint has no SequenceModeling keys")
        info["hidden_size"] = int(w.shape[1])
        info["out_channels"] = int(sd["SequenceModeling.0.rnn.weight_ih_l0"].shape[1])
    if pred == "attn":
        h2h = sd.get("Prediction.attention_cell.h2h.weight")
        if h2h is None:
            raise ValueError("--arch says Attn but the checkpoint has no Prediction.attention_cell keys")
        info["hidden_size"] = int(h2h.shape[0])
        info["feat_width"] = int(sd["Prediction.attention_cell.i2h.weight"].shape[1])
        emb = sd.get("Prediction.char_embeddings.weight")
        info["attn_embed"] = int(emb.shape[1]) if emb is not None else 0
        info["num_classes"] = int(sd["Prediction.generator.weight"].shape[0])
    else:
        w = sd.get("Prediction.weight")
        if w is None:
            raise ValueError("--arch says CTC but the checkpoint has no Prediction.weight (an attention model?)")
        info["num_classes"] = int(w.shape[0])
        info["feat_width"] = int(w.shape[1])
    if seq == "none" and feat != "svtr":
        info["out_channels"] = info["feat_width"]
    return info


def map_state_dict(sd: Mapping[str, torch.Tensor], stages: tuple[str, str, str, str], perm: list[int],
                   sos: int | None, feat_width: int,
                   svtr_prefix: str = "") -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename and reorder reference tensors; returns the cllstr state dict and the dropped reference keys.
    ``svtr_prefix`` is where an SVTR extractor's tensors live (``""`` in ``svtr_tiny``, ``features.svtr.`` in
    ``four_stage``)."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, tensor in sd.items():
        name = _rename(key, stages[1], svtr_prefix)
        if name is None:
            dropped.append(key)
            continue
        out[name] = _permute(name, tensor, perm, sos, feat_width)
    return out, dropped


def _target(stages: tuple[str, str, str, str], info: dict[str, Any], img_size: tuple[int, int],
            max_length: int, sos: int | None, source: str,
            tps_grid: str = "reference") -> tuple[str, dict[str, Any], list[str]]:
    """The cllstr model name and kwargs reproducing the reference, and the differences applied."""
    trans, feat, seq, pred = stages
    diffs: list[str] = []
    if stages == ("none", "svtr", "none", "ctc"):
        diffs.append(DIFFERENCES["svtr"])
        return "svtr_tiny", {"in_chans": info["in_chans"], "img_size": list(img_size), "merge_eps": 1e-5}, diffs
    if stages == ("none", "vgg", "bilstm", "ctc"):
        diffs.append(DIFFERENCES["vgg"])
        return "crnn", {"in_chans": info["in_chans"], "out_channels": info["out_channels"],
                        "hidden_size": info["hidden_size"], "last_pad": 0}, diffs
    kw: dict[str, Any] = {"trans": trans, "feat": feat, "seq": seq, "pred": pred, "in_chans": info["in_chans"],
                          "img_size": list(img_size), "out_channels": info["out_channels"]}
    if "hidden_size" in info:
        kw["hidden_size"] = info["hidden_size"]
    if feat == "vgg":
        kw["vgg_last_pad"] = 0
        diffs.append(DIFFERENCES["vgg"])
    if feat == "svtr":
        kw["svtr_merge_eps"] = 1e-5
        diffs.append(DIFFERENCES["svtr"])
    if trans == "tps":
        kw.update(num_fiducial=info["num_fiducial"], tps_align_corners=True)
        diffs.append(DIFFERENCES["tps"])
        if tps_grid == "exact":
            kw["tps_grid"] = "exact"
            diffs.append(DIFFERENCES["tps_exact"])
    if pred == "attn":
        kw.update(max_length=max_length, attn_embed=info["attn_embed"], attn_sos=sos)
        if info["attn_embed"] == 0:
            diffs.append(DIFFERENCES["onehot"])
    return "four_stage", kw, diffs


def import_reference(path: str | Path, source: str, arch: str, characters: Sequence[str] | None = None,
                     charset_mode: str | None = None, img_size: tuple[int, int] = (32, 100), pad: bool = False,
                     max_length: int = 25, tps_grid: str = "reference") -> ReferenceImport:
    """Convert a reference checkpoint into a cllstr checkpoint.

    Args:
        path: The reference ``.pth`` (``model.state_dict()``, DataParallel or not).
        source: ``"cll-str"`` or ``"dtrb"``.
        arch: ``CRNN``, ``SVTR`` or ``Trans-Feat-Seq-Pred``.
        characters: The reference character list (CLL-STR: the charset file's lines; DTRB: ``opt.character``);
            None takes DTRB's default.
        charset_mode: Tokenizer of the cllstr charset; None: ``"grapheme"`` when a character has several code
            points (the MLT19 table), else ``"codepoint"``.
        img_size: The reference ``(imgH, imgW)``.
        pad: The reference ``--PAD`` (keep ratio, then pad).
        max_length: The reference ``batch_max_length`` (attention decoders).
        tps_grid: ``"reference"``: the reference's float32 TPS grid arithmetic (bit-exact logits in torch);
            ``"exact"``: the float64 grid (the same in every backend, ONNX Runtime included; it differs from the
            reference's by the reference's own rounding, ~1.6e-5 in normalised coordinates).

    Raises:
        FileNotFoundError / ValueError: a missing or unreadable file, an architecture that does not fit the keys
        (the message names the missing or unexpected ones), a class table whose size differs from the checkpoint's.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if tps_grid not in GRIDS:
        raise ValueError(f"tps_grid must be one of {', '.join(GRIDS)}, got {tps_grid!r}")
    stages = parse_arch(arch)
    if stages[1] == "svtr" and source != "cll-str":
        raise ValueError("SVTR is a CLL-STR architecture; use --from cll-str")
    sd = load_reference_state_dict(path)
    info = _infer(sd, stages)
    chars = list(DTRB_CHARACTERS["default"] if characters is None else characters)
    tokens, perm, sos = class_table(source, stages[3], chars)
    if info["num_classes"] != len(perm):
        raise ValueError(f"the checkpoint's classifier has {info['num_classes']} classes but the {source} class table "
                         f"built from {len(chars)} characters has {len(perm)}; pass the reference's charset "
                         "(--charset / --character / --sensitive)")
    if charset_mode is None:
        charset_mode = "grapheme" if any(len(c) > 1 for c in chars) else "codepoint"
    charset = Charset(tokens, mode=charset_mode)
    name, kwargs, diffs = _target(stages, info, img_size, max_length, sos, source, tps_grid)
    model = create_model(name, charset.num_classes, **kwargs)
    prefix = "features.svtr." if name == "four_stage" and stages[1] == "svtr" else ""
    mapped, dropped = map_state_dict(sd, stages, perm, sos, info["feat_width"], prefix)
    expected = model.state_dict()
    missing = [k for k in expected if k not in mapped]
    unexpected = [k for k in mapped if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing for {arch}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"not in {arch}: {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        raise ValueError(f"the checkpoint does not fit --arch {arch} ({'; '.join(parts)}); wrong architecture?")
    for k, v in expected.items():
        if mapped[k].shape != v.shape:
            raise ValueError(f"tensor {k} has shape {tuple(mapped[k].shape)} in the checkpoint but {tuple(v.shape)} "
                             f"in {arch}; wrong architecture or options?")
    model.load_state_dict(mapped)
    rgb = info["in_chans"] == 3
    checkpoint = {
        "model_name": name, "model_kwargs": kwargs,
        "charset": {"tokens": list(charset.tokens), "mode": charset.mode},
        "model": model.state_dict(),
        "image": {"img_h": int(img_size[0]), "img_w": int(img_size[1]), "rgb": rgb, "keep_ratio": bool(pad)},
        "reference": {
            "source": source, "arch": arch, "file": str(path),
            "preprocessing": (f"{'RGB' if rgb else 'grey'}, {'keep-ratio resize + pad' if pad else 'bicubic resize'} "
                              f"to {img_size[0]}x{img_size[1]}, (x / 255 - 0.5) / 0.5"),
            "differences": diffs,
        },
    }
    return ReferenceImport(checkpoint, dropped, diffs)
