"""Tokenizers, label normalisation and the Charset class table."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cllstr.text import (
    REFERENCE_SPECIALS,
    Charset,
    from_reference_label,
    normalize_label,
    tokenize,
    unshape_arabic,
)

# A small slice of the reference MLT19 table: multi-code-point aksharas, a non-NFC Bengali token, presentation forms.
REF_LIKE = ["a", "b", "क", "क्ष", "क्षा", "मा", "\u09dc", "ﻣ", "ﺮ", "한", "ᄂ드"]


def test_tokenize_modes():
    assert tokenize("abc", "codepoint") == ["a", "b", "c"]
    assert tokenize("क्षमा", "codepoint") == ["क", "्", "ष", "म", "ा"]
    assert tokenize("क्षमा", "grapheme") == ["क्ष", "मा"]
    assert tokenize("", "grapheme") == []
    with pytest.raises(ValueError, match="unknown tokenizer mode 'words'"):
        tokenize("abc", "words")


@given(st.text(max_size=40), st.sampled_from(["codepoint", "grapheme"]))
def test_tokenize_joins_back(text, mode):
    toks = tokenize(text, mode)
    assert "".join(toks) == text
    assert all(toks)
    if mode == "codepoint":
        assert len(toks) == len(text)


@given(st.text(alphabet="ab\u0301\u0902क", max_size=30))
def test_grapheme_keeps_combining_marks_on_their_base(text):
    toks = tokenize(text, "grapheme")
    # Only the first cluster may start with a mark (nothing precedes it to attach to).
    assert all(unicodedata.category(t[0]) != "Mn" for t in toks[1:])


def test_normalize_is_nfc_and_keeps_scripts():
    decomposed = "e\u0301"
    assert normalize_label(decomposed) == "\u00e9"
    assert normalize_label("한국어 مرحبا") == "한국어 مرحبا"
    with pytest.raises(TypeError):
        normalize_label(b"abc")


def test_from_reference_label_joins_tabs_and_unshapes():
    assert from_reference_label("क्ष\tमा") == "क्षमा"
    assert from_reference_label("ﻣ\tﺮ\tﺣ\tﺒ\tﺎ") == "مرحبا"
    assert from_reference_label("ﻣ\tﺮ", unshape=False) == "ﻣﺮ"
    assert from_reference_label("a\tb\tc", reverse=True) == "cba"
    assert from_reference_label("ab\u0301", reverse=True) == normalize_label("b\u0301a")
    assert unshape_arabic("abc") == "abc"


def test_charset_classes_and_roundtrip():
    cs = Charset(["a", "b", "c"])
    assert len(cs) == 3 and cs.num_classes == 4
    assert cs.index("a") == 1 and cs.index("c") == 3 and cs.index("z") is None
    assert cs.encode("cab") == [3, 1, 2]
    assert cs.decode([0, 3, 0, 1, 2, 0]) == "cab"
    with pytest.raises(ValueError, match="outside the charset"):
        cs.decode([4])


def test_charset_unknown_error_skip_unk():
    cs = Charset(["a", "b"])
    with pytest.raises(ValueError, match="'z'"):
        cs.encode("abz")
    assert cs.encode("azbz", on_unknown="skip") == [1, 2]
    assert cs.unknown["z"] == 2
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        cs.encode("z", on_unknown="unk")
    ref = Charset([*REFERENCE_SPECIALS, "a"])
    assert ref.encode("a z", on_unknown="unk") == [4, 3, 2]
    assert ref.unknown["z"] == 1


def test_charset_rejects_bad_tables():
    with pytest.raises(ValueError, match="appears twice"):
        Charset(["a", "b", "a"])
    with pytest.raises(ValueError, match="empty"):
        Charset(["a", ""])
    with pytest.raises(ValueError, match="line break"):
        Charset(["a\n"])
    with pytest.raises(ValueError, match="unknown tokenizer"):
        Charset(["a"], mode="bpe")


def test_charset_grapheme_tokens_longest_match_and_nfc_alias():
    cs = Charset(REF_LIKE, mode="grapheme")
    assert cs.decode(cs.encode("क्षामा")) == "क्षामा"
    assert [t for t, _ in cs.split("क्षामा")] == ["क्षा", "मा"]
    # U+09DC is not NFC (it decomposes to U+09A1 U+09BC); an NFC label still reaches its class.
    assert cs.encode("\u09a1\u09bc") == [cs.index("\u09dc")]
    assert cs.encode("ᄂ드") == [cs.index("ᄂ드")]
    assert cs.unknown_chars("कxष") == ["x", "ष"]


def test_charset_file_roundtrip_keeps_space_and_order(tmp_path):
    cs = Charset([" ", "b", "a", "क्ष"], mode="grapheme")
    path = tmp_path / "cs.txt"
    cs.save(path)
    assert path.read_text(encoding="utf-8") == " \nb\na\nक्ष\n"
    back = Charset.from_file(path)
    assert back == cs and back.mode == "grapheme"
    Charset(["b", "a", "क्ष"]).save(path)
    ref = Charset.from_reference_file(path)
    assert ref.tokens[:3] == list(REFERENCE_SPECIALS) and ref.num_classes == 7
    assert ref.index("b") == 4


def test_charset_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt line 2 is empty"):
        Charset.from_file(bad)
    dup = tmp_path / "dup.txt"
    dup.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(ValueError, match="dup.txt.*twice"):
        Charset.from_file(dup)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        Charset.from_file(tmp_path / "missing.txt")


def test_charset_from_labels_and_union():
    cs = Charset.from_labels(["ba", "क्षa", "e\u0301"], mode="grapheme")
    assert cs.tokens == sorted(["a", "b", "क्ष", "\u00e9"])
    assert Charset.from_labels(["aab"], min_count=2).tokens == ["a"]
    u = Charset(["x", "a"]).union(cs)
    assert u.tokens[:2] == ["x", "a"] and u.mode == "grapheme" and "क्ष" in u


@settings(max_examples=60)
@given(st.lists(st.sampled_from(REF_LIKE), max_size=12))
def test_encode_decode_roundtrip_over_table(tokens):
    cs = Charset(REF_LIKE, mode="grapheme")
    label = normalize_label("".join(tokens))
    ids = cs.encode(label)
    assert all(1 <= i <= len(cs) for i in ids)
    assert normalize_label(cs.decode(ids)) == label


@given(st.text(max_size=30))
def test_encode_skip_counts_every_unknown(text):
    cs = Charset(list("abcdefghij "))
    ids = cs.encode(text, on_unknown="skip")
    label = normalize_label(text)
    assert len(ids) + sum(cs.unknown.values()) == len(label)
