"""From CTC logits to label text in logical order, and the visual/logical order rule for right-to-left scripts.

CTC aligns targets with image columns left to right, so models learn right-to-left scripts (Arabic) in visual order:
training reverses their token sequences (as the reference ``CTCLabelConverter`` does) and decoding reverses them
back, so every prediction comes out in logical (reading) order, the order of the labels in the LMDB files.
"""

from __future__ import annotations

import torch

from cllstr.ops import ctc_greedy_decode
from cllstr.scripts import is_rtl

__all__ = ["is_rtl", "decode_logits"]


def decode_logits(logits: torch.Tensor, charset: object) -> tuple[list[str], list[float]]:
    """Greedy-decode a batch with the native op and map class ids to text in logical order.

    Args:
        logits: ``(B, T, C)`` scores with ``C == charset.num_classes`` (class 0 = blank).
        charset: A :class:`cllstr.text.charset.Charset`.

    Returns:
        ``(texts, confidences)``: B strings and B floats (product of the per-frame maximum probabilities).
    """
    if logits.shape[-1] != charset.num_classes:
        raise ValueError(f"logits have {logits.shape[-1]} classes but the charset has {charset.num_classes}")
    tokens, lengths, conf = ctc_greedy_decode(logits.detach(), blank=0)
    tokens, lengths = tokens.cpu(), lengths.cpu().tolist()
    texts = []
    for row, n in zip(tokens, lengths, strict=False):
        ids = row[:n].tolist()
        text = charset.decode(ids)
        if is_rtl(text):
            text = charset.decode(ids[::-1])
        texts.append(text)
    return texts, conf.cpu().tolist()
