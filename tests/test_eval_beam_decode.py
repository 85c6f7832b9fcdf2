"""Beam decoding from logits to text (``cllstr.decoding.ctc``) and through ``Recognizer(decoder="beam")``."""

from __future__ import annotations

import math

import pytest
import torch

from cllstr.decoding.ctc import DecoderConfig, beam_decode_logits, decode_logits
from cllstr.ops import has_kernel
from cllstr.recognizer import Recognizer
from cllstr.text.charset import Charset
from cllstr.text.lexicon import Lexicon


def _logits(cs: Charset, paths: list[list[int | None]], peak: float = 6.0) -> torch.Tensor:
    """(B, T, C) raw scores putting `peak` on each class of each path (None = blank)."""
    T = max(len(p) for p in paths)
    x = torch.zeros(len(paths), T, cs.num_classes)
    for b, p in enumerate(paths):
        for t in range(T):
            c = p[t] if t < len(p) else None
            x[b, t, 0 if c is None else c] = peak
    return x


def _spell(cs: Charset, ids: list[int]) -> list[int | None]:
    path: list[int | None] = []
    for c in ids:
        path += [c, None]
    return path


def test_beam_equals_greedy_on_peaked_logits_and_reverses_rtl() -> None:
    assert has_kernel("ctc_beam_search", "cpu")
    cs = Charset(sorted(set("hello" + "كتاب")))
    ar = cs.encode("كتاب")[::-1]  # visual order, as the model emits it
    x = _logits(cs, [_spell(cs, cs.encode("hello")), _spell(cs, ar)])
    greedy = decode_logits(x, cs)
    beam = decode_logits(x, cs, DecoderConfig("beam", beam_width=5))
    assert greedy[0] == beam[0] == ["hello", "كتاب"]
    for g, b in zip(greedy[1], beam[1], strict=True):
        assert b >= g - 1e-6 and b <= 1.0  # the labelling's probability includes the best path's


def test_top_k_alternatives_and_lexicon() -> None:
    cs = Charset(list("abcdefgh"))
    x = _logits(cs, [_spell(cs, cs.encode("bae"))], peak=1.5)
    x[0, 4, cs.index("d")] = 1.4  # "bad" nearly as likely as "bae"
    hyps = beam_decode_logits(x, cs, DecoderConfig("beam", beam_width=8, top_k=3))[0]
    assert [h.text for h in hyps][:2] == ["bae", "bad"] and len(hyps) == 3
    assert all(h.in_lexicon is None for h in hyps) and hyps[0].log_prob > hyps[1].log_prob > hyps[2].log_prob
    lex = Lexicon(["bad", "cab"], cs)
    wide = DecoderConfig("beam", beam_width=300, top_k=3, lexicon=lex, oov_penalty=-2.0)
    hyps_lex = beam_decode_logits(x, cs, wide)[0]
    assert [h.text for h in hyps_lex][:2] == ["bad", "bae"]
    assert [h.in_lexicon for h in hyps_lex][:2] == [True, False]
    # a wide beam finds every alignment: log_prob is the labelling's, the non-word's penalty taken back off
    for h in hyps_lex[:2]:
        assert math.isclose(h.log_prob, _ctc_log_prob(x, cs.encode(h.text)), abs_tol=1e-4)
    # a narrow beam loses alignments of pruned prefixes: a lower bound, never more
    for h in hyps:
        assert h.log_prob <= _ctc_log_prob(x, cs.encode(h.text)) + 1e-5


def _ctc_log_prob(x: torch.Tensor, ids: list[int]) -> float:
    lp = x[0].log_softmax(-1)[:, None].double()
    return -float(torch.nn.functional.ctc_loss(lp, torch.tensor([ids]), torch.tensor([lp.shape[0]]),
                                               torch.tensor([len(ids)]), reduction="none"))


def test_decoder_config_checks() -> None:
    cs = Charset(list("ab"))
    with pytest.raises(ValueError, match="decoder must be"):
        DecoderConfig("viterbi")
    with pytest.raises(ValueError, match="needs decoder='beam'"):
        DecoderConfig("greedy", lexicon=Lexicon(["ab"], cs))
    with pytest.raises(ValueError, match="top_k"):
        DecoderConfig("beam", beam_width=2, top_k=3)


class _FixedLogits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[: images.shape[0]] + 0 * self.dummy


def test_recognizer_beam_with_lexicon_file(tmp_path) -> None:
    cs = Charset(list("abcdefgh"))
    x = _logits(cs, [_spell(cs, cs.encode("bae"))], peak=1.5)
    x[0, 4, cs.index("d")] = 1.4
    words = tmp_path / "words.txt"
    words.write_text("bad\ncab\n", encoding="utf-8")
    images = torch.zeros(1, 3, 32, 100)
    greedy = Recognizer(_FixedLogits(x), cs, device="cpu", precision="fp32").predict(images)[0]
    beam = Recognizer(_FixedLogits(x), cs, device="cpu", precision="fp32", decoder="beam", beam_width=8,
                      top_k=2).predict(images)[0]
    lex = Recognizer(_FixedLogits(x), cs, device="cpu", precision="fp32", decoder="beam", beam_width=8,
                     lexicon=words, oov_penalty=-2.0).predict(images)[0]
    assert greedy.text == beam.text == "bae" and greedy.alternatives == ()
    assert [h.text for h in beam.alternatives] == ["bae", "bad"]
    assert lex.text == "bad" and lex.alternatives[0].in_lexicon is True
    assert 0 < lex.confidence <= math.exp(_ctc_log_prob(x, cs.encode("bad"))) + 1e-6
