"""``cllstr::ctc_beam_search``: native kernels vs the reference, brute force, lexicon behaviour and bad input."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

from cllstr.ops import ctc_beam_search, ctc_greedy_decode, has_kernel, reference_ctc_beam_search
from cllstr.text.charset import Charset
from cllstr.text.lexicon import Lexicon, load_lexicon
from tests.common import devices


@dataclass
class Case:
    name: str
    log_probs: torch.Tensor
    lengths: torch.Tensor
    kw: dict = field(default_factory=dict)


def _peaked(B: int, T: int, C: int, gen: torch.Generator, blank_rate: float = 0.4, peak: float = 4.0) -> torch.Tensor:
    """Log-probabilities whose best path has blanks and repeats, as a trained CTC model produces."""
    ids = torch.randint(0, C, (B, T), generator=gen)
    ids[torch.rand(B, T, generator=gen) < blank_rate] = 0
    rep = torch.rand(B, T, generator=gen) < 0.3
    ids[:, 1:] = torch.where(rep[:, 1:], ids[:, :-1], ids[:, 1:])
    x = torch.randn(B, T, C, generator=gen)
    x.scatter_(2, ids[..., None], peak)
    return x.log_softmax(-1)


def _lexicon() -> tuple[Charset, Lexicon]:
    cs = Charset(list("abcdefgh"))
    return cs, Lexicon(["bad", "cab", "abc", "fed", "dead", "ace", "a"], cs)


def sample_inputs(device: str) -> list[Case]:
    """Odd sizes, empty batch, T=0/1, C=1/2, all-blank, repeats, lengths < T, non-contiguous, options."""
    g = torch.Generator().manual_seed(0)
    _, lex = _lexicon()
    cases = [
        Case("odd", _peaked(7, 13, 37, g), torch.randint(0, 14, (7,), generator=g), {"beam_width": 5, "top_k": 3}),
        Case("flat", torch.randn(5, 9, 6, generator=g).log_softmax(-1), torch.full((5,), 9), {"beam_width": 4,
                                                                                              "top_k": 4}),
        Case("empty_batch", torch.randn(0, 5, 11).log_softmax(-1), torch.zeros(0, dtype=torch.long)),
        Case("T0", torch.randn(3, 0, 9), torch.zeros(3, dtype=torch.long), {"top_k": 2}),
        Case("T1", torch.randn(5, 1, 9, generator=g).log_softmax(-1), torch.ones(5, dtype=torch.long), {"top_k": 3}),
        Case("C1", torch.zeros(4, 6, 1), torch.tensor([6, 3, 0, 1]), {"top_k": 2}),
        Case("C2", torch.randn(6, 7, 2, generator=g).log_softmax(-1), torch.tensor([7, 6, 5, 2, 1, 0]),
             {"beam_width": 3, "top_k": 3}),
        Case("repeats", _peaked(6, 15, 4, g, blank_rate=0.2), torch.full((6,), 15), {"beam_width": 6, "top_k": 2}),
        Case("lengths_lt_T", _peaked(6, 12, 17, g), torch.tensor([12, 0, 1, 5, 11, 3], dtype=torch.int32)),
        Case("blank_last", _peaked(5, 11, 23, g).roll(-1, dims=2), torch.full((5,), 11), {"blank": 22}),
        Case("from_logits", torch.randn(5, 10, 31, generator=g) * 3, torch.tensor([10, 3, 0, 7, 10]),
             {"from_logits": True, "top_k": 2}),
        Case("non_contiguous", _peaked(10, 8, 19, g).transpose(0, 1), torch.full((8,), 10)),
        Case("sliced", (torch.randn(4, 9, 40, generator=g) * 2)[:, :, ::2], torch.full((4,), 9), {"from_logits": True}),
        Case("beam1", _peaked(6, 14, 12, g), torch.full((6,), 14), {"beam_width": 1}),
        Case("wide_beam", torch.randn(3, 8, 5, generator=g).log_softmax(-1), torch.full((3,), 8), {"beam_width": 40,
                                                                                                   "top_k": 10}),
        Case("top_n", torch.randn(4, 10, 15, generator=g).log_softmax(-1), torch.full((4,), 10), {"top_n": 2,
                                                                                                 "beam_width": 4}),
        Case("cutoff", torch.randn(4, 10, 15, generator=g).log_softmax(-1), torch.full((4,), 10), {"cutoff": 0.6,
                                                                                                  "beam_width": 4}),
        Case("max_length", _peaked(2, 26, 4680, g), torch.full((2,), 26), {"beam_width": 10, "top_k": 3}),
        Case("lexicon", (torch.randn(6, 9, 9, generator=g) * 2).log_softmax(-1), torch.full((6,), 9),
             {"lexicon": lex, "oov_penalty": -2.0, "beam_width": 6, "top_k": 3}),
        Case("lexicon_pruned", (torch.randn(6, 9, 9, generator=g) * 2).log_softmax(-1), torch.full((6,), 9),
             {"lexicon": lex, "oov_penalty": -1.0, "top_n": 2, "cutoff": 0.9, "beam_width": 3}),
        Case("lexicon_strict", (torch.randn(6, 9, 9, generator=g) * 2).log_softmax(-1), torch.full((6,), 9),
             {"lexicon": lex, "oov_penalty": float("-inf"), "beam_width": 4, "top_k": 4}),
    ]
    all_blank = torch.full((3, 7, 12), -9.0)
    all_blank[..., 0] = 0.0
    cases.append(Case("all_blank", all_blank, torch.tensor([7, 3, 0]), {"top_k": 2}))
    # Wide rows (the vectorised selection's 64-bucket bound and 64-entry blocks, a tail of 27): many equal scores,
    # classes at -inf, a probable blank in the middle of the row, and a beam whose candidate count exceeds the
    # bucket count (no bound).
    ties = (torch.randn(4, 9, 283, generator=g) * 2).round() / 2
    cases.append(Case("wide_ties", ties.log_softmax(-1), torch.tensor([9, 8, 1, 9]), {"beam_width": 10, "top_k": 3}))
    masked = _peaked(5, 10, 283, g).roll(140, dims=2)
    masked[:, :, 7::5] = float("-inf")
    cases.append(Case("wide_neg_inf_blank_mid", masked, torch.tensor([10, 0, 10, 4, 9]),
                      {"blank": 140, "beam_width": 8, "top_k": 2}))
    cases.append(Case("beam_over_buckets", _peaked(2, 4, 150, g), torch.tensor([4, 3]), {"beam_width": 70,
                                                                                        "top_k": 5}))
    # The bound is the (M+1)-th largest bucket maximum because the blank can hold one of them: a wide row whose blank
    # is the most probable class, with the next top_n classes in distinct buckets, needs every one of them (T = 1,
    # as many hypotheses as classes tried: a bound that ignores the blank loses the last class).
    blank_top = torch.randn(3, 2, 301, generator=g)
    for b, classes in enumerate(([5, 70, 200], [299, 1, 64 + 3], [130, 131, 132])):
        blank_top[b, :, 0] = 12.0
        blank_top[b, :, classes] = torch.tensor([11.0, 10.5, 10.0])
    cases.append(Case("wide_blank_on_top", blank_top.log_softmax(-1), torch.tensor([1, 2, 1]),
                      {"top_n": 3, "beam_width": 4, "top_k": 4}))
    # NaN scattered over wide rows (three entries in ten, never the blank): NaN never enters (the reference reads it as
    # -inf), and a NaN must not hide a probable class that shares its vector lane within a 64-entry block.
    nan_rows = _peaked(4, 6, 301, g)
    holes = torch.rand(nan_rows.shape, generator=g) < 0.3
    holes[..., 0] = False
    nan_rows[holes] = float("nan")
    cases.append(Case("wide_nan", nan_rows, torch.tensor([6, 5, 1, 6]), {"beam_width": 6, "top_k": 3}))
    # More candidates (beam x classes = 5000) than the CUDA kernel's one-pass selection holds (2304), no lexicon: the
    # path where one thread rewrites the beam count between barriers.
    cases.append(Case("many_candidates", (torch.randn(2, 6, 100, generator=g) * 3).log_softmax(-1),
                      torch.tensor([6, 5]), {"beam_width": 50, "top_k": 4}))
    for c in cases:
        c.log_probs, c.lengths = c.log_probs.to(device), c.lengths.to(device)
    return cases


CASE_NAMES = [c.name for c in sample_inputs("cpu")]


def _case(name: str, device: str = "cpu") -> Case:
    return next(c for c in sample_inputs(device) if c.name == name)


def _run(case: Case, backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    kw = dict(case.kw)
    return ctc_beam_search(case.log_probs, case.lengths, kw.pop("blank", 0), kw.pop("beam_width", 10),
                           kw.pop("top_k", 1), backend=backend, **kw)


def _assert_same(out: tuple, ref: tuple, case: Case, tol: float = 1e-4) -> None:
    tokens, lengths, scores = (t.cpu() for t in out)
    B, T = case.log_probs.shape[:2]
    K = case.kw.get("top_k", 1)
    assert tokens.dtype == torch.long and lengths.dtype == torch.long and scores.dtype == torch.float32
    assert tokens.shape == (B, K, T) and lengths.shape == (B, K) and scores.shape == (B, K)
    torch.testing.assert_close(tokens, ref[0].cpu())
    torch.testing.assert_close(lengths, ref[1].cpu())
    torch.testing.assert_close(scores, ref[2].cpu(), rtol=tol, atol=tol)


def _native(device: str) -> None:
    """The native kernel must exist: a missing build is a failure, not a skip."""
    assert has_kernel("ctc_beam_search", device), f"no native {device} kernel: rebuild with pip install -e ."


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", CASE_NAMES)
def test_native_matches_reference(device: str, name: str) -> None:
    _native(device)
    case = _case(name, device)
    out = _run(case, "native")
    assert out[0].device.type == device
    _assert_same(out, _run(case, "reference"), case)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_output_invariants(name: str) -> None:
    case = _case(name)
    tokens, lengths, scores = _run(case, "native")
    blank = case.kw.get("blank", 0)
    for b in range(tokens.shape[0]):
        seen = set()
        for k in range(tokens.shape[1]):
            n = int(lengths[b, k])
            assert torch.all(tokens[b, k, n:] == blank) and not torch.any(tokens[b, k, :n] == blank)
            if scores[b, k] == float("-inf"):
                assert n == 0
                continue
            seq = tuple(tokens[b, k, :n].tolist())
            assert seq not in seen  # identical prefixes merged: no labelling twice
            seen.add(seq)
        assert torch.all(scores[b, :-1] >= scores[b, 1:])  # best first
        assert torch.all(scores[b] <= 1e-5)  # log-probabilities (penalties only lower them)


def _ctc_log_prob(lp: torch.Tensor, labels: tuple[int, ...]) -> float:
    """log P(labels | lp) summed over all alignments, by torch's CTC loss (float64); lp: (T, C)."""
    T = lp.shape[0]
    loss = F.ctc_loss(lp[:, None].double(), torch.tensor([labels], dtype=torch.long).reshape(1, -1),
                      torch.tensor([T]), torch.tensor([len(labels)]), blank=0, reduction="none")
    return -float(loss)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(("T", "C", "seed"), [(1, 3, 0), (2, 2, 1), (3, 3, 2), (4, 3, 3), (3, 4, 4), (5, 2, 5)])
def test_brute_force_enumeration(backend: str, T: int, C: int, seed: int) -> None:
    if backend == "native":
        _native("cpu")
    g = torch.Generator().manual_seed(seed)
    lp = (torch.randn(2, T, C, generator=g) * 1.5).log_softmax(-1)
    labellings = [s for n in range(T + 1) for s in itertools.product(range(1, C), repeat=n)]
    K = min(len(labellings), 5)
    tokens, lengths, scores = ctc_beam_search(lp, None, 0, beam_width=len(labellings), top_k=K, backend=backend)
    for b in range(2):
        truth = sorted(((_ctc_log_prob(lp[b], s), s) for s in labellings), key=lambda x: -x[0])
        truth = [t for t in truth if t[0] > float("-inf")][:K]
        got = [(float(scores[b, k]), tuple(tokens[b, k, : int(lengths[b, k])].tolist())) for k in range(len(truth))]
        assert [s for _, s in got] == [s for _, s in truth]
        for (gs, _), (ts, _) in zip(got, truth, strict=True):
            assert abs(gs - ts) < 1e-4


@pytest.mark.parametrize("device", devices())
def test_beam_width_1_equals_greedy(device: str) -> None:
    _native(device)
    g = torch.Generator().manual_seed(7)
    lp = _peaked(32, 20, 30, g, peak=8.0).to(device)
    lengths = torch.randint(0, 21, (32,), generator=g).to(device)
    tokens, lengths_b, _ = ctc_beam_search(lp, lengths, 0, beam_width=1, backend="native")
    greedy, lengths_g, _ = ctc_greedy_decode(lp, lengths, log_probs=True)
    torch.testing.assert_close(tokens[:, 0], greedy)
    torch.testing.assert_close(lengths_b[:, 0], lengths_g)


def _path_log_probs(path: str, alphabet: str, peak: float = 0.9) -> torch.Tensor:
    """(1, len(path), C) log-probabilities putting `peak` on each character of `path` ('_' = blank)."""
    C = len(alphabet) + 1
    p = torch.full((len(path), C), (1 - peak) / (C - 1))
    for t, ch in enumerate(path):
        p[t, 0 if ch == "_" else alphabet.index(ch) + 1] = peak
    return p.log()[None]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_doubled_letters_separated_by_blank_survive(backend: str) -> None:
    alphabet = "ahpy"
    cs = Charset(list(alphabet))
    for path, word in (("hhap_pyy", "happy"), ("hap_p__y", "happy"), ("happpy", "hapy")):
        tokens, lengths, _ = ctc_beam_search(_path_log_probs(path, alphabet), None, 0, 8, backend=backend)
        assert cs.decode(tokens[0, 0, : int(lengths[0, 0])].tolist()) == word


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_lexicon_word_beats_slightly_more_probable_non_word(backend: str) -> None:
    cs, lex = _lexicon()
    # "bad" path slightly less probable than "bae" at the last step
    lp = _path_log_probs("b_a_d", "abcdefgh")
    lp[0, 4] = torch.log(torch.tensor([0.02, 0.01, 0.01, 0.01, 0.45, 0.46, 0.02, 0.01, 0.01]))
    plain = ctc_beam_search(lp, None, 0, 5, backend=backend)
    assert cs.decode(plain[0][0, 0, : int(plain[1][0, 0])].tolist()) == "bae"
    tokens, lengths, scores = ctc_beam_search(lp, None, 0, 5, lexicon=lex, oov_penalty=-1.0, backend=backend)
    assert cs.decode(tokens[0, 0, : int(lengths[0, 0])].tolist()) == "bad"
    assert abs(float(scores[0, 0]) - _ctc_log_prob(lp[0], tuple(cs.encode("bad")))) < 1e-4  # a word pays nothing
    assert float(scores[0, 0]) < float(plain[2][0, 0])


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_oov_word_decodes_when_penalty_allows(backend: str) -> None:
    cs, lex = _lexicon()
    lp = _path_log_probs("h_g_h", "abcdefgh", peak=0.97)  # "hgh" is no word and no prefix of one
    for pen, expect in ((-1.0, "hgh"), (float("-inf"), None)):
        tokens, lengths, scores = ctc_beam_search(lp, None, 0, 10, 2, lexicon=lex, oov_penalty=pen, backend=backend)
        text = cs.decode(tokens[0, 0, : int(lengths[0, 0])].tolist())
        if expect is not None:
            assert text == expect
            plain = ctc_beam_search(lp, None, 0, 10, backend=backend)[2][0, 0]
            assert abs(float(scores[0, 0]) - (float(plain) + pen)) < 1e-4  # paid once
        else:
            assert text in lex or text == ""  # a non-word is impossible with an infinite penalty


def test_lexicon_right_to_left_and_graphemes() -> None:
    ar = "كتاب"
    cs = Charset(sorted(set(ar + "مدرسة")))
    lex = Lexicon([ar, "مدرسة"], cs)
    visual = cs.encode(ar)[::-1]  # the model emits Arabic in visual order
    assert lex.contains_ids(visual) and not lex.contains_ids(cs.encode(ar)) and ar in lex
    hi = "नमस्ते"
    gcs = Charset.from_labels([hi, "किताब"], mode="grapheme")
    glex = Lexicon([hi, "किताब"], gcs)
    ids = gcs.encode(hi)
    assert len(ids) < len(hi) and glex.contains_ids(ids)  # grapheme clusters are the trie's characters
    lp = torch.full((1, 2 * len(ids) + 1, gcs.num_classes), -6.0)
    for t, c in enumerate(ids):
        lp[0, 2 * t, c] = 0.0
        lp[0, 2 * t + 1, 0] = 0.0
    lp = lp.log_softmax(-1)
    tokens, lengths, _ = ctc_beam_search(lp, None, 0, 4, lexicon=glex, backend="native")
    assert gcs.decode(tokens[0, 0, : int(lengths[0, 0])].tolist()) == hi


def test_lexicon_sources(tmp_path) -> None:
    cs = Charset(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    f = tmp_path / "words.txt"
    f.write_text("cat\t10\ndog\n\nzebra\nnaïve\n", encoding="utf-8")
    lex = load_lexicon(f, cs)
    assert len(lex) == 3 and lex.skipped == 1 and "dog" in lex and "Dog" not in lex
    wf = load_lexicon("wordfreq:en:200", cs)
    assert "the" in wf and "The" in wf and "THE" in wf and len(wf) > 300
    wk = load_lexicon("wordfreq:LAT:100", cs)
    assert "the" in wk


@pytest.mark.parametrize(
    ("content", "exc", "match"),
    [(None, FileNotFoundError, "lexicon file not found"), (b"", ValueError, "has no words"),
     (b"\n  \n", ValueError, "has no words"), (b"\xff\xfe\xfa", ValueError, "not valid UTF-8"),
     (b"\xc3\xa9\xc3\xa9\n", ValueError, "none of the words")],
)
def test_bad_lexicon_file(tmp_path, content, exc, match) -> None:
    f = tmp_path / "lex.txt"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(exc, match=match):
        load_lexicon(f, Charset(list("abc")))


def test_bad_lexicon_spec() -> None:
    with pytest.raises(ValueError, match="wordfreq"):
        load_lexicon("wordfreq:", Charset(list("abc")))
    with pytest.raises(ValueError, match="not an integer"):
        load_lexicon("wordfreq:en:many", Charset(list("abc")))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision(device: str, dtype: torch.dtype) -> None:
    """Error vs the fp32 oracle at most 2x that of the same-precision PyTorch path (log-softmax in `dtype`)."""
    _native(device)
    g = torch.Generator().manual_seed(11)
    logits = (torch.randn(16, 20, 101, generator=g) * 3).to(device)
    low = logits.to(dtype)
    oracle = reference_ctc_beam_search(logits, torch.full((16,), 20), 0, 5, 1, from_logits=True)
    kernel = ctc_beam_search(low, None, 0, 5, 1, from_logits=True, backend="native")
    torch_path = reference_ctc_beam_search(low.log_softmax(-1), torch.full((16,), 20), 0, 5, 1)
    same = (kernel[0] == oracle[0]).all(-1).all(-1) & (torch_path[0] == oracle[0]).all(-1).all(-1)
    assert same.float().mean() > 0.7
    err_kernel = (kernel[2] - oracle[2]).abs()[same].max()
    err_torch = (torch_path[2] - oracle[2]).abs()[same].max()
    assert err_kernel <= 2 * err_torch + 1e-5


def _op_args(case: Case) -> tuple:
    kw = case.kw
    lex = kw.get("lexicon")
    trie = lex.trie_tensors(case.log_probs.device) if lex is not None else (None,) * 4
    return (case.log_probs, case.lengths, kw.get("blank", 0), kw.get("beam_width", 10), kw.get("top_k", 1),
            kw.get("from_logits", False), kw.get("top_n", 0), kw.get("cutoff", 1.0), *trie,
            kw.get("oov_penalty", -10.0))


@pytest.mark.parametrize("name", ["odd", "empty_batch", "T0", "from_logits", "non_contiguous", "lexicon"])
def test_opcheck(name: str) -> None:
    _native("cpu")
    torch.library.opcheck(torch.ops.cllstr.ctc_beam_search.default, _op_args(_case(name)))


def test_torch_compile_traces_through_fake_kernel() -> None:
    _native("cpu")
    case = _case("odd")
    fn = torch.compile(lambda *a: torch.ops.cllstr.ctc_beam_search(*a), backend="eager", fullgraph=True)
    for u, v in zip(fn(*_op_args(case)), _run(case, "reference"), strict=True):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)


def test_thread_count_does_not_change_result() -> None:
    _native("cpu")
    case = _case("max_length")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = _run(case, "native")
        torch.set_num_threads(max(2, before))
        b = _run(case, "native")
    finally:
        torch.set_num_threads(before)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)


def _bad_trie() -> list:
    _, lex = _lexicon()
    off, tok, chi, word = lex.trie_tensors()
    return [
        ((off, tok, chi), ValueError, "all four"),
        ((off[:-1], tok, chi, word), ValueError, "trie_offsets must have"),
        ((off, tok.int(), chi, word), TypeError, "trie_tokens must be int64"),
        ((off, tok, chi, word.long()), TypeError, "trie_is_word must be"),
        ((off, tok + 100, chi, word), ValueError, "trie_tokens must be class ids"),
        ((off, tok * 0, chi, word), ValueError, "trie_tokens contains the blank"),
        ((off, tok, chi + 100, word), ValueError, "trie_children must be node ids"),
        ((off, tok.flip(0), chi, word), ValueError, "ascend"),
        ((off.flip(0), tok, chi, word), ValueError, "trie_offsets must start at 0"),
    ]


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize(
    ("args", "kw", "exc", "match"),
    [
        ((torch.randn(2, 3), torch.tensor([1, 1])), {}, ValueError, "log_probs must be 3-D"),
        ((torch.randn(2, 3, 4).double(), torch.tensor([1, 1])), {}, TypeError, "log_probs must be float32"),
        ((torch.randn(2, 3, 4), torch.tensor([1.0, 1.0])), {}, TypeError, "lengths must be int64"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1, 1])), {}, ValueError, "lengths"),
        ((torch.randn(2, 3, 4), torch.tensor([4, 1])), {}, ValueError, "lengths must be <= T=3"),
        ((torch.randn(2, 3, 4), torch.tensor([-1, 1])), {}, ValueError, "lengths must be >= 0"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1]), 4), {}, ValueError, "blank=4 is out of range"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1]), -1), {}, ValueError, "blank=-1 is out of range"),
        ((torch.randn(2, 3, 0), torch.tensor([1, 1])), {}, ValueError, "no classes"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1]), 0, 0), {}, ValueError, "beam_width must be"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1]), 0, 3, 4), {}, ValueError, "top_k must be"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1]), 0, 3, 0), {}, ValueError, "top_k must be"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1])), {"top_n": -1}, ValueError, "top_n must be"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1])), {"cutoff": 0.0}, ValueError, "cutoff must be"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1])), {"cutoff": 1.5}, ValueError, "cutoff must be"),
        ((torch.randn(2, 3, 4), torch.tensor([1, 1])), {"oov_penalty": 1.0}, ValueError, "oov_penalty must be"),
    ],
)
def test_bad_input_raises_clear_error(args, kw, exc, match, backend: str) -> None:
    with pytest.raises(exc, match=match):
        ctc_beam_search(*args, backend=backend, **kw)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("index", range(9))
def test_bad_trie_raises_clear_error(index: int, backend: str) -> None:
    trie, exc, match = _bad_trie()[index]
    with pytest.raises(exc, match=match):
        ctc_beam_search(torch.randn(2, 3, 9).log_softmax(-1), None, lexicon=trie, backend=backend)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        ctc_beam_search(torch.randn(1, 2, 3), backend="fast")
