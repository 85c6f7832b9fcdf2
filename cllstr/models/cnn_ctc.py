"""CNN-only CTC recogniser: the CRNN's VGG extractor and a linear classifier, no sequence model.

This is the "CNN-only vs CRNN" ablation of the seed experiments: same features, same T = 26 as :mod:`crnn`.
"""

from __future__ import annotations

import torch
from torch import nn

from cllstr.models.crnn import VGGFeatureExtractor, columns, init_reference_
from cllstr.models.registry import register_model

__all__ = ["CNNCTC", "cnn_ctc"]


class CNNCTC(nn.Module):
    """VGG features and a per-column classifier: ``(B, C, 32, W)`` to logits ``(B, W/4 + 1, K)``."""

    def __init__(self, num_classes: int, in_chans: int = 3, out_channels: int = 512, last_pad: int = 1) -> None:
        super().__init__()
        self.features = VGGFeatureExtractor(in_chans, out_channels, last_pad)
        self.head = nn.Linear(out_channels, num_classes)
        init_reference_(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, H, W)``. Returns: logits ``(B, T, num_classes)``."""
        return self.head(columns(self.features(images)))


@register_model
def cnn_ctc(num_classes: int, **kwargs: object) -> CNNCTC:
    """CNN-only CTC ablation of :func:`cllstr.models.crnn.crnn`."""
    return CNNCTC(num_classes, **kwargs)
