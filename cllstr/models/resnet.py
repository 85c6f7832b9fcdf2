"""The framework's ResNet feature extractor (FAN's 29-layer ResNet as configured by Baek et al.).

Images ``(B, C, 32, W)`` to features ``(B, 512, 1, W/4 + 1)``: a two-conv stem (32, 64 channels), then four stages of
basic residual blocks (1, 2, 5, 3 blocks; 128, 256, 512, 512 channels), each followed by a 3x3 conv + BN + ReLU; max
pools 2x2, 2x2 and 2x1 (padded by one column) before the first three stages, and two final 2x2 convs (the first
with stride (2, 1) and one column of padding). For 32x100 inputs this gives T = 26 columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNetFeatureExtractor"]


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int | tuple[int, int] = 1,
             padding: int | tuple[int, int] = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN and an identity (or 1x1 conv + BN) shortcut: ``(B, Ci, H, W)`` to ``(B, Co, H, W)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, cout)
        self.conv2, self.bn2 = _conv_bn(cout, cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, Ci, H, W)``. Returns: ``(B, Co, H, W)``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNetFeatureExtractor(nn.Module):
    """ResNet features: ``(B, C, 32, W)`` to ``(B, out_channels, 1, W/4 + 1)``.

    Args:
        in_chans: Input channels.
        out_channels: Output width (512); the stages use ``out/4, out/2, out, out`` and the stem ``out/16, out/8``.
        layers: Residual blocks per stage.
    """

    def __init__(self, in_chans: int = 3, out_channels: int = 512, layers: Sequence[int] = (1, 2, 5, 3)) -> None:
        super().__init__()
        widths = [out_channels // 4, out_channels // 2, out_channels, out_channels]
        self.out_channels = out_channels
        self.conv0_1, self.bn0_1 = _conv_bn(in_chans, out_channels // 16)
        self.conv0_2, self.bn0_2 = _conv_bn(out_channels // 16, out_channels // 8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool1 = nn.MaxPool2d(2, 2)
        self.maxpool2 = nn.MaxPool2d(2, 2)
        self.maxpool3 = nn.MaxPool2d(2, (2, 1), (0, 1))
        cin = out_channels // 8
        for i, (width, n) in enumerate(zip(widths, layers, strict=True), start=1):
            blocks = [BasicBlock(cin if j == 0 else width, width) for j in range(n)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            cin = width
            if i < 4:
                conv, bn = _conv_bn(width, width)
                setattr(self, f"conv{i}", conv)
                setattr(self, f"bn{i}", bn)
        self.conv4_1, self.bn4_1 = _conv_bn(widths[3], widths[3], 2, (2, 1), (0, 1))
        self.conv4_2, self.bn4_2 = _conv_bn(widths[3], widths[3], 2, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: ``(B, out_channels, H/16 - 1, W/4 + 1)``."""
        x = self.relu(self.bn0_1(self.conv0_1(x)))
        x = self.relu(self.bn0_2(self.conv0_2(x)))
        x = self.maxpool1(x)
        x = self.relu(self.bn1(self.conv1(self.layer1(x))))
        x = self.maxpool2(x)
        x = self.relu(self.bn2(self.conv2(self.layer2(x))))
        x = self.maxpool3(x)
        x = self.relu(self.bn3(self.conv3(self.layer3(x))))
        x = self.layer4(x)
        x = self.relu(self.bn4_1(self.conv4_1(x)))
        return self.relu(self.bn4_2(self.conv4_2(x)))
