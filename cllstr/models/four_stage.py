"""The four-stage STR framework (Baek et al., ICCV 2019): Trans -> Feat -> Seq -> Pred, and its named combinations.

``create_model("four_stage", K, trans="tps", feat="resnet", seq="bilstm", pred="attn")`` builds any combination of

- Trans: ``none`` | ``tps`` (:mod:`cllstr.models.tps`),
- Feat: ``vgg`` (the CRNN extractor, :mod:`cllstr.models.crnn`) | ``rcnn`` (:mod:`cllstr.models.rcnn`) |
  ``resnet`` (:mod:`cllstr.models.resnet`) | ``svtr`` (SVTR-T without its classifier, as in CLL-STR,
  :mod:`cllstr.models.svtr`; T = W/4),
- Seq: ``none`` | ``bilstm`` (two BiLSTM layers),
- Pred: ``ctc`` (a per-column classifier) | ``attn`` (:mod:`cllstr.models.attention`),

and the registry holds the framework paper's named models (``trba``, ``rosetta``, ``star_net``, ``rare``, ``grcnn``,
``r2am``). The feature map is averaged over its height into a sequence of columns. Models map images
``(B, C, 32, W)`` to logits ``(B, T, K)``; ``prediction`` (``"ctc"`` / ``"attn"``) tells the trainer and the decoders
how to read them. Attention models take teacher-forcing inputs as an optional second argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from cllstr.models.attention import AttentionDecoder
from cllstr.models.crnn import BidirectionalLSTM, VGGFeatureExtractor, columns, init_reference_
from cllstr.models.rcnn import RCNNFeatureExtractor
from cllstr.models.registry import register_model
from cllstr.models.resnet import ResNetFeatureExtractor
from cllstr.models.svtr import SVTRFeatureExtractor
from cllstr.models.tps import TPS

__all__ = ["FourStage", "FEATURES", "TRANSFORMS", "SEQUENCES", "PREDICTIONS", "four_stage"]

#: Feature extractors by name: ``(in_chans, out_channels, options) -> module`` with a ``(B, C, H, W)`` output.
FEATURES: dict[str, Callable[..., nn.Module]] = {
    "vgg": lambda cin, cout, o: VGGFeatureExtractor(cin, cout, o.get("vgg_last_pad", 1)),
    "rcnn": lambda cin, cout, o: RCNNFeatureExtractor(cin, cout),
    "resnet": lambda cin, cout, o: ResNetFeatureExtractor(cin, cout),
    "svtr": lambda cin, cout, o: SVTRFeatureExtractor(cin, cout, img_size=o["img_size"],
                                                      merge_eps=o.get("svtr_merge_eps", 1e-6)),
}
TRANSFORMS = ("none", "tps")
SEQUENCES = ("none", "bilstm")
PREDICTIONS = ("ctc", "attn")


def _choice(kind: str, value: str, allowed: Sequence[str]) -> str:
    value = str(value).lower()
    if value not in allowed:
        raise ValueError(f"{kind} must be one of {', '.join(allowed)}, got {value!r}")
    return value


class FourStage(nn.Module):
    """A four-stage recogniser: images ``(B, C, H, W)`` to logits ``(B, T, num_classes)``.

    Args:
        num_classes: Output classes (class 0: CTC blank, or the attention decoder's end token).
        trans, feat, seq, pred: The stages (see the module docstring).
        in_chans: Input channels.
        img_size: ``(H, W)`` of the input (the TPS output size).
        num_fiducial: TPS fiducial points.
        out_channels: Feature width of the extractor.
        hidden_size: BiLSTM and attention-decoder width.
        max_length: Longest label the attention decoder emits (it runs ``max_length + 1`` steps).
        tps_init: ``"rare"`` (the reference) or ``"identity"``.
        tps_align_corners: ``grid_sample`` convention of the TPS (True: the reference).
        tps_grid: The TPS grid arithmetic, ``"exact"`` or ``"reference"`` (:class:`~cllstr.models.tps.TPS`); None:
            ``"reference"`` with ``tps_align_corners``, else ``"exact"``.
        vgg_last_pad: Column padding of the VGG's last conv (1: T = W/4 + 1; 0: the reference's W/4 - 1).
        svtr_merge_eps: LayerNorm eps of the SVTR extractor's merging layers (1e-5: CLL-STR).
        attn_embed: Attention input-embedding width (0: one-hot inputs).
        attn_sos: The attention decoder's start-token input id (None: an extra input class).
        attn_cell: ``"lstm"`` or ``"gru"``.
    """

    def __init__(self, num_classes: int, trans: str = "none", feat: str = "resnet", seq: str = "bilstm",
                 pred: str = "ctc", in_chans: int = 3, img_size: Sequence[int] = (32, 100), num_fiducial: int = 20,
                 out_channels: int = 512, hidden_size: int = 256, max_length: int = 25, tps_init: str = "rare",
                 tps_align_corners: bool = False, tps_grid: str | None = None, vgg_last_pad: int = 1,
                 svtr_merge_eps: float = 1e-6, attn_embed: int = 256, attn_sos: int | None = None,
                 attn_cell: str = "lstm") -> None:
        super().__init__()
        self.stages = {
            "trans": _choice("trans", trans, TRANSFORMS), "feat": _choice("feat", feat, tuple(FEATURES)),
            "seq": _choice("seq", seq, SEQUENCES), "pred": _choice("pred", pred, PREDICTIONS),
        }
        self.prediction = self.stages["pred"]
        self.max_length = max_length
        self.trans = (TPS(num_fiducial, img_size, in_chans, tps_init, tps_align_corners, tps_grid) if trans == "tps"
                      else None)
        options = {"vgg_last_pad": vgg_last_pad, "img_size": tuple(img_size), "svtr_merge_eps": svtr_merge_eps}
        self.features = FEATURES[self.stages["feat"]](in_chans, out_channels, options)
        width = out_channels
        self.sequence = None
        if self.stages["seq"] == "bilstm":
            self.sequence = nn.Sequential(BidirectionalLSTM(width, hidden_size, hidden_size),
                                          BidirectionalLSTM(hidden_size, hidden_size, hidden_size))
            width = hidden_size
        self.decoder = None
        if self.prediction == "attn":
            self.decoder = AttentionDecoder(width, hidden_size, num_classes, attn_embed, attn_sos, max_length,
                                            attn_cell)
            self.head = nn.Linear(hidden_size, num_classes)
        else:
            self.head = nn.Linear(width, num_classes)
        init_reference_(self)
        if self.stages["feat"] == "svtr":
            self.features.svtr._init_weights()  # SVTR keeps its own (truncated-normal) initialisation
        if self.trans is not None:
            self.trans.reset_fiducials()  # the reference initialisation skips the localisation output layer

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Trans, Feat and Seq: images ``(B, C, H, W)`` to contextual features ``(B, T, F)``."""
        if self.trans is not None:
            images = self.trans(images)
        seq = columns(self.features(images)).contiguous()
        return self.sequence(seq) if self.sequence is not None else seq

    def forward(self, images: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            images: ``(B, C, H, W)``.
            inputs: Attention only: teacher-forcing input ids ``(B, L)`` (start token first); None decodes greedily.

        Returns:
            Logits ``(B, T, num_classes)``: T columns (CTC), L or ``max_length + 1`` steps (attention).
        """
        feats = self.encode(images)
        if self.decoder is None:
            return self.head(feats)
        return self.decoder(feats, self.head, inputs)


@register_model(sized=True)
def four_stage(num_classes: int, **kwargs: object) -> FourStage:
    """Any combination: ``trans`` none|tps, ``feat`` vgg|rcnn|resnet, ``seq`` none|bilstm, ``pred`` ctc|attn."""
    return FourStage(num_classes, **kwargs)


def _named(name: str, trans: str, feat: str, seq: str, pred: str, doc: str) -> None:
    def factory(num_classes: int, **kwargs: object) -> FourStage:
        return FourStage(num_classes, **{"trans": trans, "feat": feat, "seq": seq, "pred": pred, **kwargs})

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    attn = pred == "attn"
    register_model(factory, sized=True, prediction=pred,
                   classifier=("head", "decoder.embed") if attn else ("head",))


_named("trba", "tps", "resnet", "bilstm", "attn", "TPS-ResNet-BiLSTM-Attn, the framework paper's best model.")
_named("rosetta", "none", "resnet", "none", "ctc", "None-ResNet-None-CTC (Rosetta).")
_named("star_net", "tps", "resnet", "bilstm", "ctc", "TPS-ResNet-BiLSTM-CTC (STAR-Net).")
_named("rare", "tps", "vgg", "bilstm", "attn", "TPS-VGG-BiLSTM-Attn (RARE).")
_named("grcnn", "none", "rcnn", "bilstm", "ctc", "None-RCNN-BiLSTM-CTC (GRCNN).")
_named("r2am", "none", "rcnn", "none", "attn", "None-RCNN-None-Attn (R2AM).")
