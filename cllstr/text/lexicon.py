"""Lexicons for constrained CTC decoding: a character trie over a word list, in a model's output order.

Words come from a file (one word per line; a ``word<TAB>count`` line keeps its first field) or from ``wordfreq``'s
top-N lists (``wordfreq:ko,en`` or ``wordfreq:KOR,LAT:20000``; script names map to their word-list languages). Each
word is NFC-normalised and split with the model's :class:`~cllstr.text.charset.Charset` (code points or grapheme
clusters, whatever the charset uses), and right-to-left words (Arabic) are inserted reversed, because the model
emits them in visual order (see :mod:`cllstr.train.ctc`). Words with characters the charset lacks are skipped.
The trie travels to ``cllstr.ops.ctc_beam_search`` as four CSR tensors (:meth:`Lexicon.trie_tensors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from cllstr.scripts import SCRIPTS, get_script, is_rtl
from cllstr.text.charset import Charset
from cllstr.text.normalize import normalize_label

__all__ = ["Lexicon", "load_lexicon", "read_word_file", "wordfreq_words"]

DEFAULT_TOP_N = 50_000


def read_word_file(path: str | Path) -> list[str]:
    """Words of a UTF-8 word-list file, one per line (``word<TAB>anything`` keeps the first field).

    Raises:
        FileNotFoundError: the file is missing. ValueError: it is unreadable, not UTF-8 or has no words; the
            messages name the lexicon file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"lexicon file not found: {p}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"lexicon file {p} is not valid UTF-8: {e}") from None
    except OSError as e:
        raise ValueError(f"lexicon file {p} cannot be read: {e}") from None
    words = [line.split("\t", 1)[0].strip() for line in text.splitlines()]
    words = [w for w in words if w]
    if not words:
        raise ValueError(f"lexicon file {p} has no words")
    return words


def wordfreq_words(langs: Sequence[str], top_n: int = DEFAULT_TOP_N) -> list[str]:
    """The ``top_n`` most frequent words of each language (wordfreq codes such as ``ko``, or script names such as
    ``KOR``, which stand for their word-list languages), in order, without repeats."""
    import wordfreq

    out: list[str] = []
    seen: set[str] = set()
    for lang in langs:
        codes = get_script(lang).wordfreq_langs if lang.strip().upper() in SCRIPTS else (lang.strip(),)
        for code in codes:
            try:
                words = wordfreq.top_n_list(code, top_n)
            except (LookupError, ValueError) as e:
                raise ValueError(f"lexicon: wordfreq has no word list for language {code!r}: {e}") from None
            if not words:
                raise ValueError(f"lexicon: wordfreq has no word list for language {code!r}")
            for w in words:
                if w not in seen:
                    seen.add(w)
                    out.append(w)
    return out


class Lexicon:
    """A set of words as a character trie over a charset's class ids, in the model's output order.

    Args:
        words: Word texts (logical order; NFC-normalised here).
        charset: The model's charset (class 0 = blank).
        cases: Also add the capitalised and upper-case forms of every word (word lists are often lower case while
            scene text is not).

    Attributes:
        words: The words kept, as given (after NFC).
        skipped: Words dropped because the charset cannot write them.
    """

    def __init__(self, words: Iterable[str], charset: Charset, cases: bool = False) -> None:
        self.charset = charset
        self.words: list[str] = []
        self.skipped = 0
        children: list[dict[int, int]] = [{}]
        is_word = [False]
        seen: set[str] = set()
        for raw in words:
            base = normalize_label(raw.strip())
            forms = [base, base[:1].upper() + base[1:], base.upper()] if cases else [base]
            for w in forms:
                if not w or w in seen:
                    continue
                seen.add(w)
                ids = self.encode(w)
                if ids is None:
                    if w is base:
                        self.skipped += 1
                    continue
                node = 0
                for c in ids:
                    nxt = children[node].get(c)
                    if nxt is None:
                        nxt = len(children)
                        children[node][c] = nxt
                        children.append({})
                        is_word.append(False)
                    node = nxt
                is_word[node] = True
                self.words.append(w)
        if not self.words:
            raise ValueError(f"lexicon: none of the words can be written with the charset ({len(charset)} tokens; "
                             f"{self.skipped} skipped)")
        offsets = [0]
        tokens: list[int] = []
        kids: list[int] = []
        for edges in children:
            for c in sorted(edges):
                tokens.append(c)
                kids.append(edges[c])
            offsets.append(len(tokens))
        self._tensors = (
            torch.tensor(offsets, dtype=torch.long),
            torch.tensor(tokens, dtype=torch.long),
            torch.tensor(kids, dtype=torch.long),
            torch.tensor(is_word, dtype=torch.bool),
        )
        self._children = children
        self._is_word = is_word

    def encode(self, word: str) -> list[int] | None:
        """Class ids of ``word`` in the model's output order (reversed for right-to-left words), or None when the
        charset cannot write it."""
        try:
            ids = self.charset.encode(word, on_unknown="error")
        except ValueError:
            return None
        if not ids:
            return None
        return ids[::-1] if is_rtl(word) else ids

    def contains_ids(self, ids: Sequence[int]) -> bool:
        """Whether class ids (output order, as decoded) spell a word of the lexicon."""
        node = 0
        for c in ids:
            node = self._children[node].get(int(c), -1)
            if node < 0:
                return False
        return bool(ids) and self._is_word[node]

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        ids = self.encode(normalize_label(word))
        return ids is not None and self.contains_ids(ids)

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} words, {len(self._is_word)} trie nodes, {self.skipped} skipped)"

    @property
    def num_nodes(self) -> int:
        """Trie nodes, the root included."""
        return len(self._is_word)

    def trie_tensors(self, device: str | torch.device | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The trie in CSR form for ``ctc_beam_search``: ``offsets (N+1,)``, ``tokens (E,)`` (ascending per node),
        ``children (E,)`` int64 and ``is_word (N,)`` bool; node 0 is the root."""
        if device is None:
            return self._tensors
        return tuple(t.to(device) for t in self._tensors)  # type: ignore[return-value]


def load_lexicon(spec: str | Path, charset: Charset, top_n: int = DEFAULT_TOP_N, cases: bool | None = None) -> Lexicon:
    """A lexicon from ``--lexicon``: a word-list file, or ``wordfreq:LANGS[:N]`` (``wordfreq:ko,en``).

    Args:
        spec: File path or ``wordfreq:`` spec.
        charset: The model's charset.
        top_n: Words per language for ``wordfreq:`` specs without ``:N``.
        cases: Add capitalised / upper-case forms; None: only for wordfreq lists (which are lower case).
    """
    text = str(spec)
    if text.startswith("wordfreq:"):
        parts = text[len("wordfreq:"):].split(":")
        langs = [x for x in parts[0].split(",") if x.strip()]
        if not langs or len(parts) > 2:
            raise ValueError(f"lexicon: expected wordfreq:LANG[,LANG...][:N], got {text!r}")
        if len(parts) == 2:
            try:
                top_n = int(parts[1])
            except ValueError:
                raise ValueError(f"lexicon: the word count of {text!r} is not an integer") from None
        if top_n < 1:
            raise ValueError(f"lexicon: the word count must be >= 1, got {top_n}")
        return Lexicon(wordfreq_words(langs, top_n), charset, cases=True if cases is None else cases)
    return Lexicon(read_word_file(text), charset, cases=bool(cases))
