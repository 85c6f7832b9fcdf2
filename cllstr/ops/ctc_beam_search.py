"""CTC prefix beam search: ``torch.ops.cllstr.ctc_beam_search`` and its pure-Python reference.

Every beam is a distinct labelling prefix with the log-probabilities of its alignments ending in a blank and in its
last character; extensions that produce the same prefix merge. With ``top_n=0`` and ``cutoff=1`` the search equals
trying every class at every step. An optional character trie (a lexicon, see :mod:`cllstr.text.lexicon`) makes every
labelling that is not one of its words pay ``oov_penalty`` once, so non-words stay possible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from cllstr.ops._native import HAS_NATIVE, frame_lengths, has_kernel, require_native

__all__ = ["ctc_beam_search", "reference_ctc_beam_search"]

Backend = Literal["auto", "native", "reference"]
Trie = Sequence[Tensor]  # (offsets (N+1,), tokens (E,), children (E,) int64, is_word (N,) bool)
NEG_INF = float("-inf")


def _check(log_probs: Tensor, lengths: Tensor, blank: int, beam_width: int, top_k: int, top_n: int, cutoff: float,
           trie: Trie | None, oov_penalty: float) -> None:
    """The argument checks of the native op, for the reference path (same messages)."""
    p = "ctc_beam_search: "
    if log_probs.dim() != 3:
        raise ValueError(f"{p}log_probs must be 3-D (B, T, C), got {log_probs.dim()}-D with shape "
                         f"{tuple(log_probs.shape)}")
    if log_probs.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"{p}log_probs must be float32, float16 or bfloat16, got {log_probs.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != log_probs.shape[0]:
        raise ValueError(f"{p}lengths must be 1-D (B,) with B={log_probs.shape[0]}, got shape {tuple(lengths.shape)}")
    if lengths.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{p}lengths must be int64 or int32, got {lengths.dtype}")
    B, T, C = log_probs.shape
    if C == 0:
        raise ValueError(f"{p}log_probs has no classes (C == 0)")
    if not 0 <= blank < C:
        raise ValueError(f"{p}blank={blank} is out of range for C={C} classes (expected 0 <= blank < C)")
    if not 1 <= beam_width <= 1 << 16:
        raise ValueError(f"{p}beam_width must be in [1, 65536], got {beam_width}")
    if not 1 <= top_k <= beam_width:
        raise ValueError(f"{p}top_k must be in [1, beam_width={beam_width}], got {top_k}")
    if top_n < 0:
        raise ValueError(f"{p}top_n must be >= 0 (0 = no limit), got {top_n}")
    if not 0.0 < cutoff <= 1.0:
        raise ValueError(f"{p}cutoff must be in (0, 1], got {cutoff}")
    if math.isnan(oov_penalty) or oov_penalty > 0:
        raise ValueError(f"{p}oov_penalty must be <= 0 (a log-probability penalty), got {oov_penalty}")
    if lengths.numel():
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0:
            raise ValueError(f"{p}lengths must be >= 0, got a length of {lo}")
        if hi > T:
            raise ValueError(f"{p}lengths must be <= T={T}, got a length of {hi}")
    if trie is not None:
        _check_trie(trie, C, blank)


def _check_trie(trie: Trie, C: int, blank: int) -> None:
    p = "ctc_beam_search: "
    if len(trie) != 4:
        raise ValueError(f"{p}the lexicon trie needs all four of trie_offsets, trie_tokens, trie_children and "
                         f"trie_is_word (got {len(trie)})")
    offsets, tokens, children, is_word = trie
    for name, t in (("trie_offsets", offsets), ("trie_tokens", tokens), ("trie_children", children)):
        if t.dim() != 1:
            raise ValueError(f"{p}{name} must be 1-D, got shape {tuple(t.shape)}")
        if t.dtype != torch.int64:
            raise TypeError(f"{p}{name} must be int64, got {t.dtype}")
    if is_word.dim() != 1 or is_word.dtype != torch.bool:
        raise TypeError(f"{p}trie_is_word must be 1-D bool, got {is_word.dtype} of shape {tuple(is_word.shape)}")
    N, E = is_word.shape[0], tokens.shape[0]
    if N < 1:
        raise ValueError(f"{p}trie_is_word is empty; the trie needs at least its root node")
    if offsets.shape[0] != N + 1:
        raise ValueError(f"{p}trie_offsets must have N+1={N + 1} entries for the N={N} nodes of trie_is_word, got "
                         f"{offsets.shape[0]}")
    if children.shape[0] != E:
        raise ValueError(f"{p}trie_children has {children.shape[0]} entries but trie_tokens has {E}")
    if int(offsets[0]) != 0 or int(offsets[-1]) != E:
        raise ValueError(f"{p}trie_offsets must start at 0 and end at the number of edges {E}")
    if N > 1 and bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError(f"{p}trie_offsets must be non-decreasing")
    if E:
        if int(tokens.min()) < 0 or int(tokens.max()) >= C:
            raise ValueError(f"{p}trie_tokens must be class ids in [0, C={C}), got values in "
                             f"[{int(tokens.min())}, {int(tokens.max())}]")
        if bool((tokens == blank).any()):
            raise ValueError(f"{p}trie_tokens contains the blank class {blank}")
        starts = torch.zeros(E + 1, dtype=torch.bool, device=tokens.device)
        starts[offsets] = True
        if not bool(((tokens[1:] > tokens[:-1]) | starts[1:E]).all()):
            raise ValueError(f"{p}trie_tokens must ascend strictly within each node's edges")
        if int(children.min()) < 1 or int(children.max()) >= N:
            raise ValueError(f"{p}trie_children must be node ids in [1, N={N}), got values in "
                             f"[{int(children.min())}, {int(children.max())}]")


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b == NEG_INF else a + math.log1p(math.exp(b - a))


def reference_ctc_beam_search(
    log_probs: Tensor, lengths: Tensor, blank: int = 0, beam_width: int = 10, top_k: int = 1,
    from_logits: bool = False, top_n: int = 0, cutoff: float = 1.0, trie: Trie | None = None,
    oov_penalty: float = -10.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Pure-Python (NumPy float64) prefix beam search, the oracle of the native kernels (same arguments and outputs).

    Prefixes are tuples in a dict, so merging is by construction; every beam's extensions are scored over all classes
    as one array and the K best are kept (the global K best are among them).
    """
    lengths = lengths.to(device=log_probs.device)
    _check(log_probs, lengths, blank, beam_width, top_k, top_n, cutoff, trie, oov_penalty)
    B, T, C = log_probs.shape
    lp_all = log_probs.detach().cpu().double()
    if from_logits:
        lp_all = lp_all.log_softmax(-1)
    lp_all = np.nan_to_num(lp_all.numpy(), nan=NEG_INF)
    lex = None
    if trie is not None:
        off, tok, chi, word = (t.cpu().tolist() for t in trie)
        lex = ([dict(zip(tok[off[n]:off[n + 1]], chi[off[n]:off[n + 1]], strict=True)) for n in range(len(word))],
               word)
    tokens = torch.full((B, top_k, T), blank, dtype=torch.long)
    out_lengths = torch.zeros((B, top_k), dtype=torch.long)
    scores = torch.full((B, top_k), NEG_INF, dtype=torch.float32)
    for b in range(B):
        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
        node: dict[tuple[int, ...], int] = {(): 0}  # trie node per prefix, -1 once it has left the trie
        for t in range(int(lengths[b])):
            lp = lp_all[b, t]
            allowed = _allowed_classes(lp, blank, top_n, cutoff)
            new: dict[tuple[int, ...], list[float]] = {}
            in_beam: dict[tuple[int, ...], list[int]] = {}
            for p in beams:
                if p and p[:-1] in beams:
                    in_beam.setdefault(p[:-1], []).append(p[-1])

            def add(prefix: tuple[int, ...], pb: float, pnb: float, new=new) -> None:
                old = new.setdefault(prefix, [NEG_INF, NEG_INF])
                old[0], old[1] = _logadd(old[0], pb), _logadd(old[1], pnb)

            for prefix, (pb, pnb) in beams.items():
                add(prefix, _logadd(pb, pnb) + lp[blank], pnb + lp[prefix[-1]] if prefix else NEG_INF)
                ext = _logadd(pb, pnb) + lp
                if prefix:
                    ext[prefix[-1]] = pb + lp[prefix[-1]]
                mask = allowed.copy()
                pen = np.zeros(C)
                if lex is not None:
                    pen[:] = oov_penalty
                    n = node[prefix]
                    if n >= 0:
                        kids = list(lex[0][n])
                        mask[kids] = True
                        pen[kids] = 0.0
                mask[blank] = False
                for c in in_beam.get(prefix, ()):  # extensions that are beams already merge there, whatever the pruning
                    add(prefix + (c,), NEG_INF, ext[c])
                    mask[c] = False
                score = np.where(mask, ext + pen, NEG_INF)
                best = np.argsort(-score, kind="stable")[:beam_width]
                for c in best[np.isfinite(score[best])]:
                    child = prefix + (int(c),)
                    add(child, NEG_INF, ext[c])
                    if lex is not None:
                        n = node[prefix]
                        node[child] = lex[0][n].get(int(c), -1) if n >= 0 else -1
                    else:
                        node[child] = 0
            ranked = sorted(
                ((_logadd(pb, pnb) + (oov_penalty if lex is not None and node[p] < 0 else 0.0), p)
                 for p, (pb, pnb) in new.items()), key=lambda sp: -sp[0])
            beams = {p: tuple(new[p]) for s, p in ranked[:beam_width] if s > NEG_INF}
        final = []
        for p, (pb, pnb) in beams.items():
            s = _logadd(pb, pnb)
            if lex is not None and p and (node[p] < 0 or not lex[1][node[p]]):
                s += oov_penalty
            if s > NEG_INF:
                final.append((s, p))
        final.sort(key=lambda sp: -sp[0])
        for k, (s, p) in enumerate(final[:top_k]):
            tokens[b, k, : len(p)] = torch.tensor(p, dtype=torch.long)
            out_lengths[b, k] = len(p)
            scores[b, k] = s
    dev = log_probs.device
    return tokens.to(dev), out_lengths.to(dev), scores.to(dev)


def _allowed_classes(lp: np.ndarray, blank: int, top_n: int, cutoff: float) -> np.ndarray:
    """Classes tried for new characters: the ``top_n`` most probable non-blank ones (lower index first among equal
    ones), and of those only while the blank's probability plus theirs so far is below ``cutoff``."""
    order = np.argsort(-lp, kind="stable")
    order = order[order != blank]
    if top_n > 0:
        order = order[:top_n]
    if cutoff < 1.0:
        before = math.exp(lp[blank]) + np.concatenate([[0.0], np.cumsum(np.exp(lp[order]))[:-1]])
        order = order[before < cutoff]
    mask = np.zeros(lp.shape[0], dtype=bool)
    mask[order] = True
    return mask


def ctc_beam_search(
    log_probs: Tensor,
    lengths: Tensor | None = None,
    blank: int = 0,
    beam_width: int = 10,
    top_k: int = 1,
    *,
    from_logits: bool = False,
    top_n: int = 0,
    cutoff: float = 1.0,
    lexicon: object | None = None,
    oov_penalty: float = -10.0,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """CTC prefix beam search of a batch, optionally constrained by a lexicon trie.

    Args:
        log_probs: ``(B, T, C)`` float32/float16/bfloat16 log-probabilities, or raw scores when ``from_logits``
            (log-softmax is applied per step). Any strides.
        lengths: ``(B,)`` int32/int64 valid time steps per sequence; ``None`` means all ``T`` steps.
        blank: Index of the CTC blank class.
        beam_width: Beams ``K`` kept per step.
        top_k: Hypotheses returned per sequence, ``1 <= top_k <= beam_width``.
        from_logits: ``log_probs`` holds raw scores.
        top_n: ``> 0`` tries only the ``top_n`` most probable non-blank classes per step for new characters.
        cutoff: ``< 1`` tries classes in descending probability only while the blank's probability plus theirs so
            far is below ``cutoff`` (as fast-ctc-decode's and pyctcdecode's per-step pruning).
        lexicon: ``None``, a :class:`cllstr.text.lexicon.Lexicon` or its ``trie_tensors()`` (four tensors). Its
            characters bypass the pruning.
        oov_penalty: Log-probability added once to a labelling that is not a lexicon word (``-inf`` forbids them;
            the empty labelling never pays).
        backend: ``"auto"`` (native kernel when built for the device, else the reference), ``"native"`` (raise
            :class:`~cllstr.ops.NativeUnavailableError` when missing) or ``"reference"``.

    Returns:
        ``tokens (B, top_k, T)`` int64 padded with ``blank``, ``out_lengths (B, top_k)`` int64 and
        ``scores (B, top_k)`` float32: log P(labelling) summed over its alignments, plus the penalty, best first.
        Hypotheses beyond the number of possible labellings have length 0 and score ``-inf``.

    Raises:
        ValueError: bad rank or shape, ``blank``/``beam_width``/``top_k``/``top_n``/``cutoff``/``oov_penalty`` out of
            range, lengths outside ``[0, T]``, an inconsistent trie; the message names the argument. TypeError: a
            wrong dtype.
    """
    lengths = frame_lengths("ctc_beam_search", "log_probs", log_probs, lengths)
    trie = None
    if lexicon is not None:
        trie = lexicon.trie_tensors() if hasattr(lexicon, "trie_tensors") else tuple(lexicon)
        if len(trie) != 4:
            raise ValueError("ctc_beam_search: the lexicon trie needs all four of trie_offsets, trie_tokens, "
                             f"trie_children and trie_is_word (got {len(trie)})")
        trie = tuple(t.to(log_probs.device) for t in trie)
    args = (blank, beam_width, top_k, from_logits, top_n, cutoff)
    if backend == "reference":
        return reference_ctc_beam_search(log_probs, lengths, *args, trie=trie, oov_penalty=oov_penalty)
    if backend == "native":
        require_native("ctc_beam_search", log_probs.device.type)
    elif backend != "auto":
        raise ValueError(f"ctc_beam_search: backend must be 'auto', 'native' or 'reference', got {backend!r}")
    if HAS_NATIVE and has_kernel("ctc_beam_search", log_probs.device.type):
        t4 = trie if trie is not None else (None, None, None, None)
        return torch.ops.cllstr.ctc_beam_search(log_probs, lengths, *args, *t4, oov_penalty)
    return reference_ctc_beam_search(log_probs, lengths, *args, trie=trie, oov_penalty=oov_penalty)


if HAS_NATIVE:

    @torch.library.register_fake("cllstr::ctc_beam_search")
    def _(log_probs: Tensor, lengths: Tensor, blank: int = 0, beam_width: int = 10, top_k: int = 1,
          from_logits: bool = False, top_n: int = 0, cutoff: float = 1.0, trie_offsets: Tensor | None = None,
          trie_tokens: Tensor | None = None, trie_children: Tensor | None = None, trie_is_word: Tensor | None = None,
          oov_penalty: float = -10.0) -> tuple[Tensor, Tensor, Tensor]:
        torch._check(log_probs.dim() == 3, lambda: "ctc_beam_search: log_probs must be 3-D (B, T, C)")
        B, T = log_probs.shape[0], log_probs.shape[1]
        return (
            log_probs.new_empty((B, top_k, T), dtype=torch.long),
            log_probs.new_empty((B, top_k), dtype=torch.long),
            log_probs.new_empty((B, top_k), dtype=torch.float32),
        )
