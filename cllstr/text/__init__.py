"""Text handling: label normalisation (NFC, reference tab-joined labels), tokenizers and the charset class table."""

from __future__ import annotations

from cllstr.text.charset import REFERENCE_SPECIALS, TOKENIZERS, Charset, register_tokenizer, tokenize
from cllstr.text.normalize import (
    from_reference_label,
    is_tab_joined,
    join_reference_tokens,
    normalize_label,
    unshape_arabic,
)

__all__ = [
    "Charset",
    "REFERENCE_SPECIALS",
    "TOKENIZERS",
    "from_reference_label",
    "is_tab_joined",
    "join_reference_tokens",
    "normalize_label",
    "register_tokenizer",
    "tokenize",
    "unshape_arabic",
]
