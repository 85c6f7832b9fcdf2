"""From CTC logits to label text in logical order: greedy (``cllstr.ops.ctc_greedy_decode``) or prefix beam search
with an optional lexicon (``cllstr.ops.ctc_beam_search``); ids become text with the codec of :mod:`cllstr.text.ctc`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cllstr.ops import ctc_beam_search, ctc_greedy_decode
from cllstr.text.ctc import ids_to_text
from cllstr.text.lexicon import Lexicon

__all__ = ["DECODERS", "DecoderConfig", "Hypothesis", "beam_decode_logits", "decode_logits"]

DECODERS = ("greedy", "beam")


def decode_logits(logits: torch.Tensor, charset: object,
                  decoder: DecoderConfig | None = None) -> tuple[list[str], list[float]]:
    """Decode a batch with the native ops and map class ids to text in logical order.

    Args:
        logits: ``(B, T, C)`` scores with ``C == charset.num_classes`` (class 0 = blank).
        charset: A :class:`cllstr.text.charset.Charset`.
        decoder: None or ``kind="greedy"``: best path; ``kind="beam"``: the best beam-search hypothesis.

    Returns:
        ``(texts, confidences)``: B strings and B floats — greedy: the product of the per-frame maximum
        probabilities; beam: the probability of the labelling summed over its alignments.
    """
    if decoder is not None and decoder.kind == "beam":
        hyps = beam_decode_logits(logits, charset, decoder)
        return [h[0].text if h else "" for h in hyps], [math.exp(h[0].log_prob) if h else 0.0 for h in hyps]
    _check_classes(logits, charset)
    tokens, lengths, conf = ctc_greedy_decode(logits.detach(), blank=0)
    tokens, lengths = tokens.cpu(), lengths.cpu().tolist()
    texts = [ids_to_text(row[:n].tolist(), charset) for row, n in zip(tokens, lengths, strict=False)]
    return texts, conf.cpu().tolist()


@dataclass(frozen=True)
class DecoderConfig:
    """How CTC logits become text: ``greedy`` (best path), or ``beam`` (prefix beam search, optional lexicon).

    Attributes:
        kind: ``"greedy"`` or ``"beam"``.
        beam_width: Beams kept per step (beam only).
        top_k: Hypotheses returned per image (beam only), ``<= beam_width``.
        lexicon: A :class:`~cllstr.text.lexicon.Lexicon` over the model's charset, or None.
        oov_penalty: Log-probability a non-word pays once (``-inf``: words only).
        top_n: ``> 0`` tries only that many most probable classes per step for new characters.
        cutoff: ``< 1`` per-step cumulative-probability cut-off of the classes tried.
    """

    kind: str = "greedy"
    beam_width: int = 10
    top_k: int = 1
    lexicon: Lexicon | None = None
    oov_penalty: float = -10.0
    top_n: int = 0
    cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {self.kind!r}")
        if self.kind == "greedy" and self.lexicon is not None:
            raise ValueError("a lexicon needs decoder='beam'")
        if self.beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {self.beam_width}")
        if not 1 <= self.top_k <= self.beam_width:
            raise ValueError(f"top_k must be in [1, beam_width={self.beam_width}], got {self.top_k}")


@dataclass(frozen=True)
class Hypothesis:
    """One labelling of a beam search: ``text`` in logical order, ``log_prob`` summed over its alignments (without
    the lexicon penalty) and whether it is a lexicon word (None without a lexicon)."""

    text: str
    log_prob: float
    in_lexicon: bool | None = None


def beam_decode_logits(logits: torch.Tensor, charset: object, decoder: DecoderConfig) -> list[list[Hypothesis]]:
    """Beam-search a batch with ``cllstr.ops.ctc_beam_search`` and map the ``top_k`` hypotheses to text.

    Args:
        logits: ``(B, T, C)`` raw scores with ``C == charset.num_classes`` (class 0 = blank).
        charset: A :class:`cllstr.text.charset.Charset`.
        decoder: Beam settings (``decoder.kind`` is not looked at).

    Returns:
        Per image, up to ``top_k`` hypotheses, best first (by log-probability plus penalty).
    """
    _check_classes(logits, charset)
    lex = decoder.lexicon
    tokens, lengths, scores = ctc_beam_search(
        logits.detach(), None, 0, decoder.beam_width, decoder.top_k, from_logits=True, top_n=decoder.top_n,
        cutoff=decoder.cutoff, lexicon=lex, oov_penalty=decoder.oov_penalty)
    tokens, lengths, scores = tokens.cpu(), lengths.cpu().tolist(), scores.cpu().tolist()
    out: list[list[Hypothesis]] = []
    for b in range(tokens.shape[0]):
        hyps = []
        for k in range(tokens.shape[1]):
            score = scores[b][k]
            if score == float("-inf"):
                break
            ids = tokens[b, k, : lengths[b][k]].tolist()
            word = None if lex is None else (not ids or lex.contains_ids(ids))
            if word is False and math.isfinite(decoder.oov_penalty):
                score -= decoder.oov_penalty
            hyps.append(Hypothesis(ids_to_text(ids, charset), score, word))
        out.append(hyps)
    return out


def _check_classes(logits: torch.Tensor, charset: object) -> None:
    if logits.shape[-1] != charset.num_classes:
        raise ValueError(f"logits have {logits.shape[-1]} classes but the charset has {charset.num_classes}")
