"""Build a charset from the labels of LMDB stores (``cllstr data charset``), optionally per script.

Composition per script follows doctr's vocabs: the tokens of the chosen scripts (by the Unicode ranges of the script
registry) plus, unless excluded, the script-neutral tokens (digits, punctuation, symbols) seen in the labels.
"""

from __future__ import annotations

import collections
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from cllstr.data.store.reader import LmdbReader
from cllstr.scripts import get_script
from cllstr.text.charset import Charset, tokenize
from cllstr.text.normalize import from_reference_label

__all__ = ["count_tokens", "charset_from_lmdbs"]


def count_tokens(
    paths: Iterable[str | Path], mode: str = "grapheme", unshape: bool = False
) -> collections.Counter[str]:
    """Token counts over all labels of the stores at ``paths`` (tab-joined reference labels joined first)."""
    counts: collections.Counter[str] = collections.Counter()
    for p in paths:
        reader = LmdbReader(p)
        for i in range(len(reader)):
            counts.update(tokenize(from_reference_label(reader.label(i), unshape=unshape), mode))
        reader.close()
    return counts


def _neutral(token: str) -> bool:
    return all(unicodedata.category(c)[0] not in "LM" for c in token)


def charset_from_lmdbs(
    paths: Sequence[str | Path],
    *,
    mode: str = "grapheme",
    min_count: int = 1,
    scripts: Sequence[str] | None = None,
    keep_neutral: bool = True,
    unshape: bool = False,
) -> tuple[Charset, collections.Counter[str]]:
    """A charset of the tokens seen in the stores.

    Args:
        paths: LMDB directories.
        mode: ``"grapheme"`` or ``"codepoint"``.
        min_count: Drop tokens seen fewer times.
        scripts: Keep only tokens of these scripts (first code point in the script's ranges).
        keep_neutral: With ``scripts``, also keep digits, punctuation and symbols.
        unshape: Map Arabic presentation forms to base letters first.

    Returns:
        The charset (tokens sorted by code point) and the counts of the tokens left out.
    """
    counts = count_tokens(paths, mode, unshape)
    chosen = [get_script(s) for s in scripts] if scripts else None
    keep, dropped = [], collections.Counter()
    for tok, c in counts.items():
        if tok in ("\n", "\r", "\t"):
            dropped[tok] += c
            continue
        in_script = chosen is None or any(s.contains(tok[0]) for s in chosen) or (keep_neutral and _neutral(tok))
        if c >= min_count and in_script:
            keep.append(tok)
        else:
            dropped[tok] += c
    return Charset(sorted(keep), mode=mode), dropped
