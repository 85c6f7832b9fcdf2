"""Tokenizers and the :class:`Charset` class table shared by the data layer, the models and the decoders.

Two tokenizers are registered: ``codepoint`` (one token per Unicode code point, as deep-text-recognition-benchmark)
and ``grapheme`` (extended grapheme clusters, the ``regex`` module's ``\\X``, which keeps Devanagari/Bengali aksharas
and Korean jamo sequences whole, as the reference CLL-STR charset does). A charset file holds one token per line, so
the reference ``MLT19_charset.txt`` (4,676 tokens, some of them multi-code-point clusters) loads verbatim and a model
can share its exact class table. Class 0 is the CTC blank; token ``i`` of the table is class ``i + 1``.
"""

from __future__ import annotations

import collections
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import regex

from cllstr.text.normalize import normalize_label

__all__ = [
    "TOKENIZERS",
    "REFERENCE_SPECIALS",
    "normalize_label",
    "register_tokenizer",
    "tokenize",
    "Charset",
]

_GRAPHEME = regex.compile(r"\X")

TOKENIZERS: dict[str, Callable[[str], list[str]]] = {}

#: Special tokens the reference CTC converter puts before the charset file's tokens (classes 1, 2, 3).
REFERENCE_SPECIALS: tuple[str, ...] = ("[PAD]", "[UNK]", " ")


def register_tokenizer(name: str) -> Callable[[Callable[[str], list[str]]], Callable[[str], list[str]]]:
    """Decorator registering a label tokenizer under ``name``."""

    def wrap(fn: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
        if name in TOKENIZERS:
            raise ValueError(f"tokenizer {name!r} is already registered")
        TOKENIZERS[name] = fn
        return fn

    return wrap


@register_tokenizer("codepoint")
def _codepoints(label: str) -> list[str]:
    return list(label)


@register_tokenizer("grapheme")
def _graphemes(label: str) -> list[str]:
    return _GRAPHEME.findall(label)


def _tokenizer(mode: str) -> Callable[[str], list[str]]:
    try:
        return TOKENIZERS[mode]
    except KeyError:
        raise ValueError(f"unknown tokenizer mode {mode!r}; known modes: {', '.join(TOKENIZERS)}") from None


def tokenize(label: str, mode: str = "codepoint") -> list[str]:
    """Split ``label`` into tokens; ``"".join(tokenize(s, mode)) == s`` for every mode.

    Args:
        label: Label text (normalise it first with :func:`normalize_label`).
        mode: ``"codepoint"`` or ``"grapheme"`` (or any registered tokenizer).

    Returns:
        The list of tokens.
    """
    return _tokenizer(mode)(label)


class Charset:
    """An ordered token table: class 0 is the CTC blank and ``tokens[i]`` is class ``i + 1``.

    Args:
        tokens: Distinct, non-empty tokens without line breaks, in class order.
        mode: Tokenizer used to split labels before lookup (``"codepoint"`` or ``"grapheme"``). A unit that is not
            in the table is further split by longest match against the table, so grapheme clusters segmented
            differently by another Unicode version still map to the reference's tokens.

    Attributes:
        tokens: The table.
        mode: Tokenizer mode.
        unknown: Counts of characters that were skipped or mapped to ``[UNK]`` by :meth:`encode`.
    """

    def __init__(self, tokens: Sequence[str], mode: str = "codepoint") -> None:
        _tokenizer(mode)
        self.tokens: list[str] = list(tokens)
        self.mode = mode
        self.unknown: collections.Counter[str] = collections.Counter()
        self._index: dict[str, int] = {}
        for i, tok in enumerate(self.tokens):
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"charset token #{i} is empty or not a string: {tok!r}")
            if "\n" in tok or "\r" in tok:
                raise ValueError(f"charset token #{i} contains a line break: {tok!r}")
            if tok in self._index:
                raise ValueError(f"charset token {tok!r} appears twice (#{self._index[tok] - 1} and #{i})")
            self._index[tok] = i + 1
        # NFC aliases let NFC labels reach tokens stored in another normal form (the reference file has 16 such).
        for tok, cls in list(self._index.items()):
            self._index.setdefault(normalize_label(tok), cls)
        self._max_len = max((len(t) for t in self._index), default=1)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and token in self._index

    @property
    def placeholder_ids(self) -> frozenset[int]:
        """Class ids of the reference converter's placeholders ``[PAD]`` and ``[UNK]``, which stand for no text."""
        return frozenset(self._index[t] for t in REFERENCE_SPECIALS[:2] if t in self._index)

    def __iter__(self):
        return iter(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and self.tokens == other.tokens and self.mode == other.mode

    def __repr__(self) -> str:
        return f"Charset({len(self)} tokens, mode={self.mode!r})"

    @property
    def num_classes(self) -> int:
        """Number of output classes including the CTC blank (``len(self) + 1``)."""
        return len(self.tokens) + 1

    def index(self, token: str) -> int | None:
        """Class id of ``token`` (1-based; 0 is the blank), or None when it is not in the table."""
        return self._index.get(token)

    def _longest_match(self, unit: str) -> list[tuple[str, int | None]]:
        out: list[tuple[str, int | None]] = []
        i = 0
        while i < len(unit):
            for j in range(min(len(unit), i + self._max_len), i, -1):
                cls = self._index.get(unit[i:j])
                if cls is not None:
                    out.append((unit[i:j], cls))
                    i = j
                    break
            else:
                out.append((unit[i], None))
                i += 1
        return out

    def split(self, label: str) -> list[tuple[str, int | None]]:
        """Tokenize ``label`` against the table.

        Args:
            label: Label text; it is NFC-normalised first.

        Returns:
            ``(token, class id or None)`` pairs covering the label in order.
        """
        out: list[tuple[str, int | None]] = []
        for unit in tokenize(normalize_label(label), self.mode):
            cls = self._index.get(unit)
            if cls is not None:
                out.append((unit, cls))
            else:
                out.extend(self._longest_match(unit))
        return out

    def encode(self, label: str, on_unknown: str = "error") -> list[int]:
        """Class ids of ``label``.

        Args:
            label: Label text.
            on_unknown: ``"error"`` raises ``ValueError`` naming the first unknown character; ``"skip"`` drops it
                and ``"unk"`` maps it to the ``[UNK]`` token (both count it in :attr:`unknown`).

        Returns:
            Class ids in ``1..len(self)``.
        """
        if on_unknown not in ("error", "skip", "unk"):
            raise ValueError(f"on_unknown must be 'error', 'skip' or 'unk', got {on_unknown!r}")
        unk = self._index.get("[UNK]")
        if on_unknown == "unk" and unk is None:
            raise ValueError("on_unknown='unk' needs a '[UNK]' token in the charset")
        ids: list[int] = []
        for tok, cls in self.split(label):
            if cls is not None:
                ids.append(cls)
                continue
            if on_unknown == "error":
                raise ValueError(
                    f"character {tok!r} (U+{ord(tok[0]):04X} {unicodedata.name(tok[0], '?')}) of label {label!r} "
                    f"is not in the charset ({len(self)} tokens)"
                )
            self.unknown[tok] += 1
            if on_unknown == "unk":
                ids.append(unk)
        return ids

    def unknown_chars(self, label: str) -> list[str]:
        """Characters of ``label`` that the table cannot encode (does not touch :attr:`unknown`)."""
        return [tok for tok, cls in self.split(label) if cls is None]

    def decode(self, ids: Iterable[int]) -> str:
        """Join the tokens of class ``ids``; 0 (blank) is ignored. No CTC collapsing is done here.

        Raises:
            ValueError: for an id outside ``0..len(self)``.
        """
        out = []
        n = len(self.tokens)
        for raw in ids:
            i = int(raw)
            if i == 0:
                continue
            if not 0 < i <= n:
                raise ValueError(f"class id {i} is outside the charset (0..{n})")
            out.append(self.tokens[i - 1])
        return "".join(out)

    @classmethod
    def from_file(cls, path: str | Path, mode: str | None = None, specials: Sequence[str] = ()) -> Charset:
        """Load a charset file (UTF-8, one token per line, kept verbatim: no stripping, no normalisation).

        Args:
            path: The file.
            mode: Tokenizer mode; None picks ``"grapheme"`` when any token has several code points.
            specials: Tokens placed before the file's tokens (:data:`REFERENCE_SPECIALS` reproduces the reference
                converter's table).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise FileNotFoundError(f"charset file not found: {p}") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"charset file {p} is not valid UTF-8: {e}") from None
        file_tokens = text.split("\n")
        if file_tokens and file_tokens[-1] == "":
            file_tokens.pop()
        file_tokens = [t[:-1] if t.endswith("\r") else t for t in file_tokens]
        for lineno, tok in enumerate(file_tokens, 1):
            if not tok:
                raise ValueError(f"charset file {p} line {lineno} is empty")
        if mode is None:
            mode = "grapheme" if any(len(t) > 1 for t in file_tokens) else "codepoint"
        try:
            return cls(list(specials) + file_tokens, mode=mode)
        except ValueError as e:
            raise ValueError(f"charset file {p}: {e}") from None

    @classmethod
    def from_reference_file(cls, path: str | Path) -> Charset:
        """The reference CTC class table: blank, ``[PAD]``, ``[UNK]``, space, then the file's tokens."""
        return cls.from_file(path, specials=REFERENCE_SPECIALS)

    def save(self, path: str | Path) -> None:
        """Write the table atomically as UTF-8, one token per line (the mode is not stored; re-detected on load)."""
        from cllstr.atomic import atomic_write_text

        atomic_write_text(path, "".join(t + "\n" for t in self.tokens))

    @classmethod
    def from_labels(
        cls, labels: Iterable[str], mode: str = "codepoint", min_count: int = 1, sort: bool = True
    ) -> Charset:
        """Build a charset from labels (NFC-normalised first).

        Args:
            labels: Label texts.
            mode: Tokenizer mode.
            min_count: Keep tokens seen at least this often.
            sort: Sort tokens by code points; otherwise keep first-seen order.
        """
        counts: collections.Counter[str] = collections.Counter()
        for label in labels:
            counts.update(tokenize(normalize_label(label), mode))
        toks = [t for t, c in counts.items() if c >= min_count and t not in ("\n", "\r")]
        if sort:
            toks.sort()
        return cls(toks, mode=mode)

    def union(self, *others: Charset) -> Charset:
        """This table followed by the tokens of ``others`` not already in it (class ids of ``self`` are kept)."""
        toks = list(self.tokens)
        seen = set(toks)
        for other in others:
            for t in other.tokens:
                if t not in seen:
                    seen.add(t)
                    toks.append(t)
        mode = "grapheme" if any(c.mode == "grapheme" for c in (self, *others)) else self.mode
        return Charset(toks, mode=mode)
