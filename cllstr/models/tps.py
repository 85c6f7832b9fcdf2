"""Thin-plate-spline rectification (RARE's TPS spatial transformer, stage "Trans" of the four-stage framework).

A localisation CNN predicts ``F`` fiducial points ``C'`` on the input image; the TPS mapping that sends the ``F``
fixed points ``C`` of the rectified image (evenly spaced on its top and bottom edges) to ``C'`` is evaluated on the
rectified image's pixel grid, and the input is resampled there (bilinear, border padding).

The TPS solve is linear in ``C'``: with ``delta_C`` the ``(F+3, F+3)`` TPS system of ``C`` and ``P_hat`` the
``(N, F+3)`` kernel rows of the ``N`` output pixels, the sampling grid is ``P' = P_hat @ (inv(delta_C) @ [C'; 0])``,
that is ``P' = W @ C'`` with ``W = (P_hat @ inv(delta_C))[:, :F]``. The matrices depend only on ``F`` and the output
size: they are computed once in float64 and kept as buffers (not saved in the state dict: they are rebuilt from the
configuration).

* ``grid="exact"`` (cllstr's own models): the grid is one float64 product ``W @ C'``, the exact TPS to ~1e-15 in
  every backend (torch on any device, ONNX Runtime), and the identity initialisation reproduces the image.
* ``grid="reference"`` (imported reference models, the import's default): the reference's two float32 products, in
  its order. The reference's grid carries a rounding error of ~1.6e-5 (normalised coordinates; ``inv(delta_C)`` has
  entries in the hundreds) that depends on the order of the float32 sums; reproducing that arithmetic reproduces the
  reference's logits bit for bit (``benchmarks/parity_import.py``), at the price that another backend's float32 sums
  (ONNX Runtime, another BLAS) differ from torch's by that much on images with sharp pixel-to-pixel changes.
  ``cllstr import --tps-grid exact`` trades the bit-exactness for the exact grid.

``init="rare"`` starts the fiducial points as in RARE Fig. 6(a) (the reference's initialisation); ``init="identity"``
starts them at ``C``, so that the untrained transform is the identity. The grid is the pixel-centre grid of the
output; ``align_corners=False`` samples pixel centres there (the identity is exact), ``align_corners=True`` is the
reference's choice (a slight zoom, kept for imported models).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GRIDS", "TPS", "fiducial_points", "tps_matrices"]

GRIDS = ("exact", "reference")


def fiducial_points(num_fiducial: int, init: str = "identity") -> torch.Tensor:
    """``(F, 2)`` points (x, y) in [-1, 1]: half on the top edge, half on the bottom, x evenly spaced.

    Args:
        num_fiducial: ``F``, even.
        init: ``"identity"`` (y = -1 top, +1 bottom) or ``"rare"`` (top y from 0 to -1, bottom from 1 to 0).
    """
    half = num_fiducial // 2
    xs = torch.linspace(-1.0, 1.0, half, dtype=torch.float64)
    if init == "identity":
        top, bottom = torch.full((half,), -1.0, dtype=torch.float64), torch.ones(half, dtype=torch.float64)
    elif init == "rare":
        top = torch.linspace(0.0, -1.0, half, dtype=torch.float64)
        bottom = torch.linspace(1.0, 0.0, half, dtype=torch.float64)
    else:
        raise ValueError(f"TPS init must be 'identity' or 'rare', got {init!r}")
    return torch.cat([torch.stack([xs, top], 1), torch.stack([xs, bottom], 1)])


def _rbf(d2: torch.Tensor, eps: float) -> torch.Tensor:
    """The TPS kernel r^2 log r from squared distances."""
    r = d2.sqrt()
    return d2 * torch.log(r + eps)


def tps_matrices(num_fiducial: int, out_h: int, out_w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``inv(delta_C)`` ``(F+3, F+3)`` and ``P_hat`` ``(H*W, F+3)`` in float64; ``P_hat`` rows follow the output
    pixels row-major."""
    c = fiducial_points(num_fiducial, "identity")
    f = num_fiducial
    dist = torch.cdist(c, c)
    hat = dist.clone()
    hat.fill_diagonal_(1.0)
    hat = hat.square() * torch.log(hat)  # the diagonal is 1^2 log 1 = 0
    delta = torch.zeros(f + 3, f + 3, dtype=torch.float64)
    delta[:f, 0] = 1.0
    delta[:f, 1:3] = c
    delta[:f, 3:] = hat
    delta[f:f + 2, 3:] = c.T
    delta[f + 2, 3:] = 1.0
    inv = torch.linalg.inv(delta)
    gx = (torch.arange(-out_w, out_w, 2, dtype=torch.float64) + 1.0) / out_w
    gy = (torch.arange(-out_h, out_h, 2, dtype=torch.float64) + 1.0) / out_h
    yy, xx = torch.meshgrid(gy, gx, indexing="ij")
    p = torch.stack([xx.flatten(), yy.flatten()], 1)  # (N, 2) as (x, y)
    d2 = ((p[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    p_hat = torch.cat([torch.ones(p.shape[0], 1, dtype=torch.float64), p, _rbf(d2, 1e-6)], 1)  # (N, F+3)
    return inv, p_hat


class TPS(nn.Module):
    """TPS rectification: images ``(B, C, H, W)`` to rectified images ``(B, C, out_h, out_w)``.

    Args:
        num_fiducial: Number of fiducial points ``F`` (even; 20 in the framework).
        img_size: ``(H, W)`` of the rectified output (the input may be any size).
        in_chans: Input channels.
        init: Initial fiducial points, ``"rare"`` or ``"identity"`` (see the module docstring).
        align_corners: ``grid_sample``'s convention; True reproduces the reference.
        grid: ``"exact"`` (float64) or ``"reference"`` (the reference's float32 arithmetic); None: ``"reference"``
            with ``align_corners`` (imported models), else ``"exact"``.
    """

    def __init__(self, num_fiducial: int = 20, img_size: Sequence[int] = (32, 100), in_chans: int = 3,
                 init: str = "rare", align_corners: bool = False, grid: str | None = None) -> None:
        super().__init__()
        if num_fiducial < 4 or num_fiducial % 2:
            raise ValueError(f"num_fiducial must be an even number >= 4, got {num_fiducial}")
        self.num_fiducial = num_fiducial
        self.out_size = (int(img_size[0]), int(img_size[1]))
        self.align_corners = align_corners
        grid = grid or ("reference" if align_corners else "exact")
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
        self.grid = grid

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.loc = nn.Sequential(
            *conv(in_chans, 64), nn.MaxPool2d(2, 2), *conv(64, 128), nn.MaxPool2d(2, 2),
            *conv(128, 256), nn.MaxPool2d(2, 2), *conv(256, 512), nn.AdaptiveAvgPool2d(1),
        )
        self.loc_fc1 = nn.Linear(512, 256)
        self.loc_fc2 = nn.Linear(256, num_fiducial * 2)
        inv, p_hat = tps_matrices(num_fiducial, *self.out_size)
        if grid == "reference":  # the reference's arithmetic
            self.register_buffer("inv_delta_c", inv, persistent=False)
            self.register_buffer("p_hat", p_hat, persistent=False)
        else:
            self.register_buffer("grid_weights", (p_hat @ inv)[:, :num_fiducial].contiguous(), persistent=False)
        self.init = init
        self.reset_fiducials()

    def reset_fiducials(self) -> None:
        """Zero the last localisation layer's weight and set its bias to the initial fiducial points."""
        with torch.no_grad():
            self.loc_fc2.weight.zero_()
            self.loc_fc2.bias.copy_(fiducial_points(self.num_fiducial, self.init).float().flatten())

    def fiducials(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted points ``C'``: ``(B, F, 2)`` (x, y) in [-1, 1]."""
        feats = self.loc(images).flatten(1)
        return self.loc_fc2(F.relu(self.loc_fc1(feats))).view(images.shape[0], self.num_fiducial, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, H, W)``. Returns: ``(B, C, out_h, out_w)``."""
        c_prime = self.fiducials(images)
        with torch.autocast(c_prime.device.type, enabled=False):  # the grid needs full precision under autocast
            if self.grid == "reference":
                c_prime = c_prime.float()
                c_prime = torch.cat([c_prime, c_prime.new_zeros(c_prime.shape[0], 3, 2)], 1)  # (B, F+3, 2)
                grid = torch.matmul(self.p_hat.float(), torch.matmul(self.inv_delta_c.float(), c_prime))
            else:
                grid = torch.matmul(self.grid_weights, c_prime.to(self.grid_weights.dtype))  # (B, N, 2)
        grid = grid.view(images.shape[0], self.out_size[0], self.out_size[1], 2)
        return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border",
                             align_corners=self.align_corners)
