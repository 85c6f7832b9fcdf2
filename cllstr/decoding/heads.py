"""Decoding by prediction head: CTC logits (per column, class 0 = blank) or attention logits (per decoding step,
class 0 = end of sequence), both to text in logical order.

The head is the model's ``prediction`` attribute (:func:`cllstr.models.prediction_kind`). Attention decoding is
greedy (the decoder already fed back its argmax): the text is the tokens before the first end token, and the
confidence the product of the per-step maximum probabilities up to and including it (the reference's). Beam search
exists for CTC only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cllstr.decoding.ctc import DecoderConfig, decode_logits
from cllstr.device import autocast
from cllstr.scripts import is_rtl

__all__ = ["HEAD_DECODERS", "check_decoder", "decode_attn_logits", "decode_head", "forward_logits"]


def decode_attn_logits(logits: torch.Tensor, charset: object,
                       decoder: DecoderConfig | None = None) -> tuple[list[str], list[float]]:
    """Greedy attention decoding.

    Args:
        logits: ``(B, S, C)`` per-step scores with ``C == charset.num_classes`` (class 0 = end of sequence).
        charset: A :class:`~cllstr.text.charset.Charset`.
        decoder: Must be None or greedy.

    Returns:
        ``(texts, confidences)``.
    """
    check_decoder("attn", decoder)
    if logits.shape[-1] != charset.num_classes:
        raise ValueError(f"logits have {logits.shape[-1]} classes but the charset has {charset.num_classes}")
    probs = torch.softmax(logits.detach().float(), -1)
    conf, ids = probs.max(-1)  # (B, S)
    b, s = ids.shape
    is_end = ids == 0
    steps = torch.arange(s, device=ids.device).expand(b, s)
    first_end = torch.where(is_end, steps, torch.full_like(steps, s)).min(1).values  # s when no end token
    keep = steps <= first_end.unsqueeze(1)
    confidence = torch.where(keep, conf, torch.ones_like(conf)).prod(1)
    ids, first_end = ids.cpu(), first_end.cpu().tolist()
    texts = []
    for row, n in zip(ids, first_end, strict=True):
        tokens = row[:n].tolist()
        text = charset.decode(tokens)
        texts.append(charset.decode(tokens[::-1]) if is_rtl(text) else text)
    return texts, confidence.cpu().tolist()


#: Decoder function by prediction head: ``(logits, charset, decoder) -> (texts, confidences)``.
HEAD_DECODERS: dict[str, Callable[..., tuple[list[str], list[float]]]] = {
    "ctc": decode_logits, "attn": decode_attn_logits,
}


def check_decoder(prediction: str, decoder: DecoderConfig | None) -> None:
    """Raise ``ValueError`` when ``decoder`` cannot read the logits of a ``prediction`` head."""
    if prediction not in HEAD_DECODERS:
        raise ValueError(f"no decoder for prediction head {prediction!r}; known: {', '.join(HEAD_DECODERS)}")
    if prediction != "ctc" and decoder is not None and decoder.kind != "greedy":
        raise ValueError(f"decoder {decoder.kind!r} needs a CTC model; this model's head is {prediction!r} "
                         "(use the greedy decoder)")


def decode_head(logits: torch.Tensor, charset: object, decoder: DecoderConfig | None = None,
                prediction: str = "ctc") -> tuple[list[str], list[float]]:
    """Decode ``logits`` of a ``prediction`` head (``"ctc"`` / ``"attn"``) to ``(texts, confidences)``."""
    check_decoder(prediction, decoder)
    return HEAD_DECODERS[prediction](logits, charset, decoder)


def forward_logits(model: nn.Module, images: torch.Tensor, device: torch.device, amp_dtype: torch.dtype | None,
                   channels_last: bool = False) -> torch.Tensor:
    """Run ``model`` on ``images`` ``(B, C, H, W)`` under autocast; returns float32 logits ``(B, T, K)``."""
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device, amp_dtype):
        return model(images).float()
