"""Word sampling: script-pure vocabularies, NFC labels, casing/digit/punctuation mixing, profile sizes."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from cllstr.scripts import SCRIPT_ORDER, get_script
from cllstr.synth.profiles import MLT19_EVAL, MLT19_TRAIN, MLT19_VAL, SIZE_SOURCES, SYNTHMLT, mlt19_mini
from cllstr.synth.words import TEXT_RULES, MixRates, WordSampler, vocabulary


@pytest.mark.parametrize("script", SCRIPT_ORDER)
def test_vocabulary_is_made_of_the_script_letters(script):
    s = get_script(script)
    words = vocabulary(script, top_n=2000)
    assert len(words) > 300
    for w in words[:500]:
        assert unicodedata.normalize("NFC", w) == w
        assert s.coverage(w) == 1.0, w


@pytest.mark.parametrize("script", SCRIPT_ORDER)
def test_samples_are_nfc_and_deterministic(script):
    sampler = WordSampler(script)
    a = [sampler.sample(np.random.default_rng([5, i])) for i in range(50)]
    b = [sampler.sample(np.random.default_rng([5, i])) for i in range(50)]
    assert a == b
    assert all(x and unicodedata.normalize("NFC", x) == x and len(x) <= sampler.max_len for x in a)


def test_latin_gets_casing_digits_and_punctuation_at_the_given_rates():
    rates = MixRates(number=0.1, digits_in_word=0.1, punct=0.2, upper=0.3, title=0.3)
    sampler = WordSampler("LAT", rates)
    rng = np.random.default_rng(0)
    labels = [sampler.sample(rng) for _ in range(2000)]
    upper = np.mean([x.isupper() and len(x) > 1 for x in labels])
    has_digit = np.mean([any(c.isdigit() for c in x) for x in labels])
    punct = set(TEXT_RULES["LAT"].punct)
    has_punct = np.mean([x[-1] in punct for x in labels])
    assert 0.15 < upper < 0.4
    assert 0.1 < has_digit < 0.3
    assert 0.08 < has_punct < 0.3


def test_uncased_scripts_are_never_case_changed_and_use_native_digits_sometimes():
    sampler = WordSampler("HIN", MixRates(number=1.0))
    rng = np.random.default_rng(1)
    labels = [sampler.sample(rng) for _ in range(300)]
    native = set(TEXT_RULES["HIN"].native_digits)
    assert any(set(x) & native for x in labels) and any(set(x) & set("0123456789") for x in labels)


def test_max_len_below_vocabulary_length_is_rejected():
    with pytest.raises(ValueError, match="max_len"):
        WordSampler("LAT", max_len=5)


def test_mlt19_mini_sizes_follow_the_paper_times_scale():
    full = {s.relpath: s for s in mlt19_mini(1.0)}
    assert len(full) == 28
    assert full["training/LAT"].size == 28000 and full["training/CHI"].size == 1900
    assert full["training/SynthMLT_ARA"].size == 202000 and full["training/SynthMLT_CHI"].size == 33000
    assert full["validation/CHI"].size == 204 and full["evaluation/LAT"].size == 3300
    assert {s.style for p, s in full.items() if "SynthMLT" in p} == {"synthmlt"}
    assert {s.style for p, s in full.items() if "SynthMLT" not in p} == {"real"}
    assert len({s.seed for s in full.values()}) == 28
    tenth = {s.relpath: s.size for s in mlt19_mini(0.1)}
    assert tenth["training/KOR"] == 400 and tenth["training/SynthMLT_BEN"] == 16500
    assert min(s.size for s in mlt19_mini(0.0001, min_size=3)) == 3


def test_derived_split_sizes_grow_with_training_size_and_are_labelled():
    order = sorted(MLT19_TRAIN, key=MLT19_TRAIN.get)
    assert [MLT19_VAL[k] for k in order] == sorted(MLT19_VAL.values())
    assert [MLT19_EVAL[k] for k in order] == sorted(MLT19_EVAL.values())
    assert SIZE_SOURCES[("validation", "KOR")] == "derived" and SIZE_SOURCES[("validation", "CHI")] == "paper"
    assert set(SYNTHMLT) == set(SCRIPT_ORDER)


def test_bad_scale_is_rejected():
    with pytest.raises(ValueError, match="scale"):
        mlt19_mini(0)
