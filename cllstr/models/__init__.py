"""Recognition models: plain ``nn.Module``s mapping images ``(B, C, H, W)`` to logits ``(B, T, C)``.

Importing this package registers every family (``crnn``, ``cnn_ctc``, ``svtr_*``, and the four-stage framework's
``four_stage``, ``trba``, ``rosetta``, ``star_net``, ``rare``, ``grcnn``, ``r2am``, and the task-grouped multi-head
``grouped`` of :mod:`cllstr.models.grouped`) with the registry. A model's
``prediction`` attribute (:func:`prediction_kind`) says how its logits are read: ``"ctc"`` (per image column) or
``"attn"`` (per decoding step of the attention decoder, T = ``max_length + 1`` = 26).

Parameter counts (measured; RGB 32x100 input; ``K`` = charset size + 1 for the blank):

============  ========================  ==============================  ====
model         without the classifier    classifier                      T
============  ========================  ==============================  ====
crnn          8,443,264                 257 K  (Linear 256 → K)         26
cnn_ctc       5,550,976                 513 K  (Linear 512 → K)         26
svtr_tiny     5,292,224                 513 K  (Linear 512 → K)         25
svtr_small    9,596,448                 513 K                           25
svtr_base     24,357,760                513 K                           25
trba          49,770,376                257 K + 256 (K + 1) embedding   26
rosetta       44,264,480                513 K                           26
star_net      48,850,312                257 K                           26
rare          11,056,872                257 K + 256 (K + 1)             26
grcnn         4,753,408                 257 K                           26
r2am          3,108,864                 257 K + 256 (K + 1)             26
============  ========================  ==============================  ====

With the reference MLT19 class table (4,680 classes) the classifier dominates SVTR-T's size. CLL-STR's SVTR port
also builds unused layers (``last_conv``, ``linear``, ``norm``) that inflate its printed count; they are left out here.
"""

from __future__ import annotations

from torch import nn

from cllstr.models import cnn_ctc, crnn, four_stage, grouped, svtr  # noqa: F401  (registers the families)
from cllstr.models.registry import (
    ModelInfo,
    create_model,
    is_model,
    list_models,
    model_entrypoint,
    model_info,
    register_model,
)

__all__ = [
    "ModelInfo", "create_model", "list_models", "register_model", "is_model", "model_entrypoint", "model_info",
    "count_parameters", "prediction_kind",
]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def prediction_kind(model: nn.Module) -> str:
    """How a model's logits are read: ``"ctc"`` (per column, class 0 = blank) or ``"attn"`` (per decoding step,
    class 0 = end of sequence). Models declare it as a ``prediction`` attribute; CTC is the default."""
    return str(getattr(model, "prediction", "ctc"))
