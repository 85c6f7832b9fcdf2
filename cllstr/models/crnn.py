"""CRNN (VGG-BiLSTM-CTC) as in deep-text-recognition-benchmark / CLL-STR, with a CTC-feasible sequence length.

The VGG extractor keeps the reference widths 64-128-256-256-512-512-512, pools (2x2, 2x2, 2x1, 2x1) and the final
2x2 convolution. The reference's final convolution has no padding and yields T = 24 columns for a 100-pixel-wide
input, so every 25-character label (the reference's ``batch_max_length``) is CTC-infeasible. We pad that convolution
by one column on each side: T = W/4 + 1 = 26 for 32x100 inputs, so every label of up to 25 characters with at most
one adjacent repeat (and every 24-character label with two) is feasible, at no extra cost. Labels that still need
more frames are counted and reported by :mod:`cllstr.train.ctc`.
"""

from __future__ import annotations

import torch
from torch import nn

from cllstr.models.registry import register_model

__all__ = ["VGGFeatureExtractor", "BidirectionalLSTM", "CRNN", "crnn", "init_reference_"]


class VGGFeatureExtractor(nn.Module):
    """The CRNN VGG stack: images ``(B, C, 32, W)`` to features ``(B, 512, 1, W/4 + 1)``.

    The reference normalises only the 5th and 6th convolutions; ``batch_norm=True`` adds BatchNorm after every
    convolution (a shorter CTC plateau when training from scratch, used by the demo recipe).
    """

    def __init__(self, in_chans: int = 3, out_channels: int = 512, last_pad: int = 1, batch_norm: bool = False) -> None:
        super().__init__()
        c1, c2, c3, c4 = out_channels // 8, out_channels // 4, out_channels // 2, out_channels

        def conv(cin: int, cout: int, k: int = 3, pad: int | tuple[int, int] = 1, bn: bool = batch_norm) -> list:
            if not bn:
                return [nn.Conv2d(cin, cout, k, 1, pad), nn.ReLU(inplace=True)]
            return [nn.Conv2d(cin, cout, k, 1, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.out_channels = c4
        self.body = nn.Sequential(
            *conv(in_chans, c1), nn.MaxPool2d(2, 2),
            *conv(c1, c2), nn.MaxPool2d(2, 2),
            *conv(c2, c3),
            *conv(c3, c3), nn.MaxPool2d((2, 1), (2, 1)),
            *conv(c3, c4, bn=True),
            *conv(c4, c4, bn=True),
            nn.MaxPool2d((2, 1), (2, 1)),
            *conv(c4, c4, 2, (0, last_pad)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: ``(B, 512, H/16 - 1, W/4 - 1 + 2*last_pad)``."""
        return self.body(x)


def columns(features: torch.Tensor) -> torch.Tensor:
    """Average a feature map over its height: ``(B, C, H, W)`` to a sequence ``(B, W, C)``."""
    return features.mean(dim=2).transpose(1, 2)


class BidirectionalLSTM(nn.Module):
    """A BiLSTM followed by a linear projection of the two directions: ``(B, T, I)`` to ``(B, T, O)``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, T, I)``. Returns: ``(B, T, O)``."""
        y, _ = self.rnn(x)
        return self.linear(y)


class CRNN(nn.Module):
    """VGG features, two BiLSTM layers and a CTC classifier: ``(B, C, 32, W)`` to logits ``(B, W/4 + 1, K)``."""

    def __init__(self, num_classes: int, in_chans: int = 3, out_channels: int = 512, hidden_size: int = 256,
                 last_pad: int = 1, batch_norm: bool = False) -> None:
        super().__init__()
        self.features = VGGFeatureExtractor(in_chans, out_channels, last_pad, batch_norm)
        self.sequence = nn.Sequential(
            BidirectionalLSTM(out_channels, hidden_size, hidden_size),
            BidirectionalLSTM(hidden_size, hidden_size, hidden_size),
        )
        self.head = nn.Linear(hidden_size, num_classes)
        init_reference_(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, H, W)``. Returns: logits ``(B, T, num_classes)``."""
        seq = columns(self.features(images))
        # cuDNN / oneDNN LSTM kernels want contiguous (B, T, C) input; the column view is strided.
        return self.head(self.sequence(seq.contiguous()))


def init_reference_(module: nn.Module) -> None:
    """The reference initialisation: Kaiming-normal weights, zero biases, BatchNorm/LayerNorm weight 1."""
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM):
            for name, p in m.named_parameters():
                if name.startswith("weight"):
                    nn.init.kaiming_normal_(p)
                else:
                    nn.init.zeros_(p)


@register_model
def crnn(num_classes: int, **kwargs: object) -> CRNN:
    """CRNN (VGG-BiLSTM-CTC), 32x100 input, T = 26."""
    return CRNN(num_classes, **kwargs)
