"""Label normalisation: NFC, and import of the reference code's tab-joined grapheme labels.

The reference CLL-STR code (and its ``create_lmdb_dataset.py``) stores ARA/BEN/HIN labels as grapheme clusters
joined by ``\\t`` so that its converter can split them back into classes; Arabic tokens are additionally reshaped into
presentation forms (U+FB50..U+FDFF, U+FE70..U+FEFF) by ``arabic_reshaper``. cllstr stores plain NFC text in logical
order; :func:`from_reference_label` turns a reference label into that form.
"""

from __future__ import annotations

import unicodedata

import regex

__all__ = [
    "REFERENCE_TOKEN_SEP",
    "normalize_label",
    "is_tab_joined",
    "join_reference_tokens",
    "unshape_arabic",
    "from_reference_label",
]

#: Separator between grapheme tokens in the reference code's ARA/BEN/HIN labels.
REFERENCE_TOKEN_SEP = "\t"

_PRESENTATION_RANGES = ((0xFB50, 0xFDFF), (0xFE70, 0xFEFF))


def normalize_label(s: str) -> str:
    """NFC-normalise a label (never NFKD/ASCII folding, which deletes non-Latin text).

    Tab separators of the reference code are *not* removed here; use :func:`from_reference_label` on import.

    Args:
        s: Label text.

    Returns:
        The NFC form of ``s``.
    """
    if not isinstance(s, str):
        raise TypeError(f"label must be str, got {type(s).__name__}")
    return unicodedata.normalize("NFC", s)


def is_tab_joined(label: str) -> bool:
    """Whether ``label`` looks like a reference tab-joined token list (``"क\\tा"``)."""
    return REFERENCE_TOKEN_SEP in label


def join_reference_tokens(label: str) -> list[str]:
    """Split a reference tab-joined label into its tokens; empty tokens (doubled tabs) are dropped.

    Args:
        label: Label as stored by the reference code.

    Returns:
        The token list (a single token when ``label`` has no tab).
    """
    return [t for t in label.split(REFERENCE_TOKEN_SEP) if t]


def _is_presentation_form(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _PRESENTATION_RANGES)


def unshape_arabic(text: str) -> str:
    """Map Arabic presentation forms back to the base letters (``ﻟ`` → ``ل``, ``ﻻ`` → ``لا``).

    Only characters in the presentation-form blocks are compatibility-decomposed; everything else is untouched.
    """
    if not any(_is_presentation_form(c) for c in text):
        return text
    return "".join(unicodedata.normalize("NFKC", c) if _is_presentation_form(c) else c for c in text)


def from_reference_label(label: str, *, unshape: bool = True, reverse: bool = False) -> str:
    """Convert a label of the reference LMDBs to cllstr's form (plain NFC text, logical order).

    Args:
        label: Label as stored by the reference code, possibly tab-joined grapheme tokens.
        unshape: Map Arabic presentation forms to base letters.
        reverse: Reverse the token order (for labels stored in visual order, e.g. made with bidi reordering).

    Returns:
        The joined, NFC-normalised label.
    """
    tokens = join_reference_tokens(label) if is_tab_joined(label) else [label]
    if reverse:
        # Without tabs the grapheme clusters are the units, so combining marks stay on their base.
        tokens = (tokens if len(tokens) > 1 else regex.findall(r"\X", label))[::-1]
    text = "".join(tokens)
    if unshape:
        text = unshape_arabic(text)
    return normalize_label(text)
