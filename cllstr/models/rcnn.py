"""The framework's RCNN feature extractor: gated recurrent convolution layers (GRCNN, Wang & Hu, NIPS 2017).

A GRCL unrolls ``num_iteration`` steps of a recurrent 3x3 convolution over a fixed feed-forward input ``u``; a gate
``G = sigmoid(BN(w_g * u) + BN(w_gr * x))`` scales the recurrent term: ``x <- ReLU(BN(w_f * u) + BN(BN(w_r * x) * G))``.
Every step has its own BatchNorm layers; the convolutions are shared across steps.

Images ``(B, C, 32, W)`` to features ``(B, 512, 1, W/4 + 1)``: conv 64, pool 2x2, GRCL 64, pool 2x2, GRCL 128,
pool 2x(2,1) padded one column, GRCL 256, the same pool, a final 2x2 conv + BN + ReLU. T = 26 for 32x100 inputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GRCL", "RCNNFeatureExtractor"]


class GRCLStep(nn.Module):
    """The BatchNorm layers of one recurrent step of a :class:`GRCL`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_gate_u = nn.BatchNorm2d(channels)
        self.bn_gate_x = nn.BatchNorm2d(channels)
        self.bn_u = nn.BatchNorm2d(channels)
        self.bn_x = nn.BatchNorm2d(channels)
        self.bn_gated = nn.BatchNorm2d(channels)

    def forward(self, gate_u: torch.Tensor, gate_x: torch.Tensor, conv_u: torch.Tensor,
                conv_x: torch.Tensor) -> torch.Tensor:
        """All inputs and the output: ``(B, C, H, W)``."""
        gate = torch.sigmoid(self.bn_gate_u(gate_u) + self.bn_gate_x(gate_x))
        return torch.relu(self.bn_u(conv_u) + self.bn_gated(self.bn_x(conv_x) * gate))


class GRCL(nn.Module):
    """Gated recurrent convolution layer: ``(B, Ci, H, W)`` to ``(B, Co, H, W)``."""

    def __init__(self, cin: int, cout: int, num_iteration: int = 5, kernel: int = 3) -> None:
        super().__init__()
        pad = kernel // 2
        self.gate_u = nn.Conv2d(cin, cout, 1, bias=False)
        self.gate_x = nn.Conv2d(cout, cout, 1, bias=False)
        self.conv_u = nn.Conv2d(cin, cout, kernel, 1, pad, bias=False)
        self.conv_x = nn.Conv2d(cout, cout, kernel, 1, pad, bias=False)
        self.bn_init = nn.BatchNorm2d(cout)
        self.steps = nn.ModuleList(GRCLStep(cout) for _ in range(num_iteration))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Args: u: ``(B, Ci, H, W)``. Returns: ``(B, Co, H, W)``."""
        gate_u = self.gate_u(u)
        conv_u = self.conv_u(u)
        x = torch.relu(self.bn_init(conv_u))
        for step in self.steps:
            x = step(gate_u, self.gate_x(x), conv_u, self.conv_x(x))
        return x


class RCNNFeatureExtractor(nn.Module):
    """GRCNN features: ``(B, C, 32, W)`` to ``(B, out_channels, 1, W/4 + 1)``."""

    def __init__(self, in_chans: int = 3, out_channels: int = 512, num_iteration: int = 5) -> None:
        super().__init__()
        c1, c2, c3, c4 = out_channels // 8, out_channels // 4, out_channels // 2, out_channels
        self.out_channels = c4
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, c1, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            GRCL(c1, c1, num_iteration), nn.MaxPool2d(2, 2),
            GRCL(c1, c2, num_iteration), nn.MaxPool2d(2, (2, 1), (0, 1)),
            GRCL(c2, c3, num_iteration), nn.MaxPool2d(2, (2, 1), (0, 1)),
            nn.Conv2d(c3, c4, 2, 1, 0, bias=False), nn.BatchNorm2d(c4), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: ``(B, out_channels, H/16 - 1, W/4 + 1)``."""
        return self.body(x)
