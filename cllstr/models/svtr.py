"""SVTR (Du et al., IJCAI 2022) as used by CLL-STR: patch embedding, Local/Global mixing blocks, merging convs.

Layout for a 32x100 input (tiny): two 3x3 stride-2 conv+BN+GELU patch embedding to an 8x25 grid of 64-d tokens,
a learned position embedding, stage 1 (3 blocks, 64-d), a 3x3 stride-(2,1) merging conv with LayerNorm to 4x25,
stage 2 (6 blocks, 128-d), merging to 2x25, stage 3 (3 blocks, 256-d), and a last merging conv to a 1x25 row of
``out_dim``-d features (512 in CLL-STR) followed by the CTC classifier: logits ``(B, 25, K)``.

Local mixing is multi-head self-attention restricted to a 7x11 window around each token, truncated at the grid
borders. It runs the native :func:`cllstr.ops.svtr_local_attention` kernels, which visit only the window; without
them (no build, or tracing for ONNX/TorchScript) it is full attention with a boolean mask, as in PaddleOCR's
``rec_svtrnet.py`` — the same result. Global mixing is unrestricted attention. Blocks are pre-norm (LayerNorm eps
1e-6) with a 4x GELU MLP and stochastic depth rising linearly to 0.1. Masked and global attention run through
``F.scaled_dot_product_attention`` so that fused CPU/GPU kernels are used and the model exports.
The merging LayerNorms use eps 1e-6 too; CLL-STR's use PyTorch's default 1e-5 (``merge_eps=1e-5`` reproduces it,
which :mod:`cllstr.interop` sets for imported checkpoints).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cllstr.models.registry import register_model
from cllstr.ops.svtr_local_attention import local_window_mask, svtr_local_attention, use_native

__all__ = ["SVTR", "SVTRFeatureExtractor", "local_window_mask", "svtr_tiny", "svtr_small", "svtr_base"]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of the residual branch ``x`` with probability ``p`` (rescaled)."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


LocalBackend = Literal["auto", "native", "reference"]


CPU_MATMUL_ATTENTION_MAX_TOKENS = 64


def _cpu_low_precision(q: torch.Tensor) -> bool:
    """bf16/fp16 attention on the CPU does not run torch's low-precision SDPA: at SVTR's shapes it is 3-4x slower
    than the float32 one (measured fwd+bwd, b128: 4 heads x 100 tokens 107 vs 37 ms, 8 x 50 98 vs 27 ms). Short
    global attention runs as low-precision GEMMs instead (fastest there), longer global attention in float32; the
    native local kernel takes the low-precision tensors directly; the projections stay in the autocast dtype."""
    return q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)


class Mixer(nn.Module):
    """Multi-head self-attention over tokens ``(B, N, C)``, global or restricted to a local window.

    ``backend`` chooses the Local path: ``"auto"`` the native windowed kernel when it is built for the device (and
    not while tracing for ONNX/TorchScript), else masked attention; ``"native"`` insists on the kernel;
    ``"reference"`` always masked attention (today's path, e.g. for comparisons). No weights depend on it.
    """

    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int], local: tuple[int, int] | None,
                 backend: LocalBackend = "auto") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if backend not in ("auto", "native", "reference"):
            raise ValueError(f"local attention backend must be 'auto', 'native' or 'reference', got {backend!r}")
        self.num_heads = num_heads
        self.grid = (int(grid[0]), int(grid[1]))
        self.local = None if local is None else (int(local[0]), int(local[1]))
        self.backend = backend
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        mask = None if local is None else local_window_mask(grid[0], grid[1], local[0], local[1])
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, N, C)``. Returns: ``(B, N, C)``."""
        b, n, c = x.shape
        # unbind, not qkv[i]: its backward stacks the three gradients once instead of zero-filling and adding a
        # full-size buffer per index (a quarter of the attention block's fwd+bwd time on CPU).
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        dtype = q.dtype
        if self.local is None and _cpu_low_precision(q) and n <= CPU_MATMUL_ATTENTION_MAX_TOKENS:
            # Short global attention as two bf16 GEMMs around a float32 softmax (measured fwd+bwd, b128, 8 heads
            # x 50 tokens: 14 ms, against 27 ms for float32 SDPA and 98 ms for bf16 SDPA).
            p = (torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)).float().softmax(-1).to(dtype)
            y = torch.matmul(p, v)
        elif self.local is not None and (self.backend == "native" or (self.backend == "auto" and use_native(x))):
            # The kernel reads bf16/fp16 views as they are and accumulates in float32 (measured fwd+bwd, b128, 2
            # threads: 8x25 grid 45 ms against 56 ms through float32 copies; 4x25 36 against 37).
            y = svtr_local_attention(q, k, v, self.grid, self.local, backend="native")
        else:
            with torch.autocast(x.device.type, enabled=False) if _cpu_low_precision(q) else nullcontext():
                if _cpu_low_precision(q):
                    q, k, v = q.float(), k.float(), v.float()
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)
        return self.proj(y.to(dtype).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + mixer(LN(x))`` then ``x + MLP(LN(x))`` on tokens ``(B, N, C)``."""

    def __init__(self, dim: int, num_heads: int, grid: tuple[int, int], local: tuple[int, int] | None,
                 mlp_ratio: float = 4.0, drop_path: float = 0.0, backend: LocalBackend = "auto") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mixer = Mixer(dim, num_heads, grid, local, backend)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, N, C)``. Returns: ``(B, N, C)``."""
        x = x + drop_path(self.mixer(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class Merging(nn.Module):
    """3x3 stride-(2,1) conv + LayerNorm: tokens on an ``h x w`` grid ``(B, h*w, Ci)`` to ``(B, h/2*w, Co)``."""

    def __init__(self, in_dim: int, out_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, (2, 1), 1)
        self.norm = nn.LayerNorm(out_dim, eps=eps)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Args: x: ``(B, h*w, Ci)``. Returns: ``(B, ceil(h/2)*w, Co)``."""
        x = self.conv(x.transpose(1, 2).reshape(x.shape[0], -1, h, w))
        return self.norm(x.flatten(2).transpose(1, 2))


class SVTR(nn.Module):
    """SVTR recogniser: images ``(B, C, H, W)`` to CTC logits ``(B, W/4, K)`` (``H`` must equal 32).

    ``local_backend`` picks the Local mixing path of every block (see :class:`Mixer`); it changes no weights.
    """

    def __init__(self, num_classes: int, in_chans: int = 3, img_size: Sequence[int] = (32, 100),
                 dims: Sequence[int] = (64, 128, 256), depths: Sequence[int] = (3, 6, 3),
                 heads: Sequence[int] = (2, 4, 8), num_local: int = 6, local_window: Sequence[int] = (7, 11),
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.1, out_dim: int = 512,
                 merge_eps: float = 1e-6, local_backend: LocalBackend = "auto") -> None:
        super().__init__()
        img_h, img_w = int(img_size[0]), int(img_size[1])
        if img_h != 32 or img_w % 4:
            raise ValueError(f"SVTR needs img_size (32, W) with W divisible by 4, got {tuple(img_size)}")
        self.img_size = (img_h, img_w)
        self.grid = (img_h // 4, img_w // 4)
        d0 = dims[0]
        self.patch_embed = nn.Sequential(
            nn.Conv2d(in_chans, d0 // 2, 3, 2, 1), nn.BatchNorm2d(d0 // 2), nn.GELU(),
            nn.Conv2d(d0 // 2, d0, 3, 2, 1), nn.BatchNorm2d(d0), nn.GELU(),
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], d0))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        window = (int(local_window[0]), int(local_window[1]))
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        h, w, k = self.grid[0], self.grid[1], 0
        for i, (dim, depth, nh) in enumerate(zip(dims, depths, heads, strict=False)):
            blocks = []
            for _ in range(depth):
                blocks.append(Block(dim, nh, (h, w), window if k < num_local else None, mlp_ratio, rates[k],
                                    local_backend))
                k += 1
            self.stages.append(nn.ModuleList(blocks))
            self.merges.append(Merging(dim, dims[i + 1] if i + 1 < len(dims) else out_dim, merge_eps))
            h = (h + 1) // 2
        if h != 1:
            raise ValueError(f"SVTR stages leave a grid of height {h}, expected 1 (input height {img_h})")
        self.head = nn.Linear(out_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, 32, W)``. Returns: the row of features ``(B, W/4, out_dim)``."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        h, w = self.grid
        for blocks, merge in zip(self.stages, self.merges, strict=False):
            for blk in blocks:
                x = blk(x)
            x = merge(x, h, w)
            h = (h + 1) // 2
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, 32, W)``. Returns: logits ``(B, W/4, num_classes)``."""
        return self.head(self.forward_features(images))


class SVTRFeatureExtractor(nn.Module):
    """SVTR-T as the four-stage framework's feature extractor (CLL-STR's ``SVTR_FeatureExtractor``): images
    ``(B, C, 32, W)`` to a one-row feature map ``(B, out_channels, 1, W/4)``.

    Keyword arguments go to :class:`SVTR` (``img_size``, ``merge_eps``, ``drop_path_rate``...); it has no classifier.
    """

    def __init__(self, in_chans: int = 3, out_channels: int = 512, **kwargs: object) -> None:
        super().__init__()
        self.svtr = SVTR(2, in_chans=in_chans, out_dim=out_channels, **kwargs)
        del self.svtr.head
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images: ``(B, C, 32, W)``. Returns: ``(B, out_channels, 1, W/4)``."""
        return self.svtr.forward_features(images).transpose(1, 2).unsqueeze(2)


@register_model(seq_len=25, sized=True)
def svtr_tiny(num_classes: int, **kwargs: object) -> SVTR:
    """SVTR-T: dims 64/128/256, depths 3/6/3, heads 2/4/8, Local x6 then Global x6 (the CLL-STR config)."""
    return SVTR(num_classes, **kwargs)


@register_model(seq_len=25, sized=True)
def svtr_small(num_classes: int, **kwargs: object) -> SVTR:
    """SVTR-S: dims 96/192/256, depths 3/6/6, heads 3/6/8, Local x8 then Global x7."""
    cfg: dict = dict(dims=(96, 192, 256), depths=(3, 6, 6), heads=(3, 6, 8), num_local=8)
    return SVTR(num_classes, **{**cfg, **kwargs})


@register_model(seq_len=25, sized=True)
def svtr_base(num_classes: int, **kwargs: object) -> SVTR:
    """SVTR-B: dims 128/256/384, depths 3/6/9, heads 4/8/12, Local x8 then Global x10."""
    cfg: dict = dict(dims=(128, 256, 384), depths=(3, 6, 9), heads=(4, 8, 12), num_local=8)
    return SVTR(num_classes, **{**cfg, **kwargs})
