"""Select-data strings, caps, YAML/TOML mixture files, layout resolution and the ratio batch sampler."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cllstr.data.mixture.sampler import RatioBatchSampler, split_batch
from cllstr.data.mixture.select_data import (
    MixSpecError,
    cap_for,
    parse_batch_ratio,
    parse_caps,
    parse_select_data,
    script_of_name,
    select_indices,
    validation_names,
)
from cllstr.data.mixture.spec import MixSpec, SourceSpec, load_mix_spec, mix_from_select_data
from cllstr.data.store.writer import LmdbWriter

ALL7 = ["CHI", "BEN", "HIN", "JPN", "ARA", "KOR", "LAT"]


def test_reference_select_data_strings():
    assert parse_select_data("lang_CBHJAKL") == ALL7
    assert parse_select_data("lang_CBHJAKL-SynthMLT_K") == [*ALL7, "SynthMLT_KOR"]
    assert parse_select_data("lang_K-SynthMLT_KOR-MJ") == ["KOR", "SynthMLT_KOR", "MJ"]
    assert parse_select_data(["lang_L", "SynthMLT_AB"]) == ["LAT", "SynthMLT_ARA", "SynthMLT_BEN"]
    assert parse_select_data("/") == ["/"]


@pytest.mark.parametrize(
    ("select", "match"),
    [
        ("lang_CBX", r"'X'"),
        ("lang_k", "upper case"),
        ("lang_", "no script letters"),
        ("SynthMLT_KQ", r"'Q'"),
        ("lang_K--lang_L", "empty group"),
        ("lang_KL-lang_K", "'KOR' twice"),
        ("../etc", "not a folder name"),
        ("", "empty group"),
    ],
)
def test_select_data_errors(select, match):
    with pytest.raises(MixSpecError, match=match):
        parse_select_data(select)


@given(st.text(alphabet="lang_SyntMLT-ABCHJKLXYZk/.", max_size=30))
def test_select_data_fuzz(text):
    """Any string either expands to distinct non-empty names or raises MixSpecError; nothing else."""
    try:
        names = parse_select_data(text)
    except MixSpecError as e:
        assert str(e)
        return
    assert names and len(set(names)) == len(names) and all(names)
    for group in text.split("-"):
        if group.startswith("lang_"):
            assert all(ch in "ABCHJKL" for ch in group[5:])


def test_validation_names_and_scripts():
    assert validation_names(["KOR", "SynthMLT_KOR", "SynthMLT_ARA", "LAT"]) == ["KOR", "ARA", "LAT"]
    assert script_of_name("SynthMLT_KOR") == "KOR"
    assert script_of_name("MLT19/ben") == "BEN"
    assert script_of_name("MJ") is None


def test_caps_parsing_and_matching():
    caps = parse_caps("LAT=2000, SynthMLT=300,total=all")
    assert caps == {"LAT": 2000, "SynthMLT": 300}
    assert parse_caps(["LAT=5"]) == {"LAT": 5} and parse_caps({"KOR": "7"}) == {"KOR": 7}
    assert cap_for("LAT", caps) == 2000 and cap_for("SynthMLT_KOR", caps) == 300 and cap_for("KOR", caps) is None
    assert cap_for("SynthMLT_KOR", {"SynthMLT": 3, "SynthMLT_KOR": 9}) == 9
    for bad, match in [("LAT", "NAME=COUNT"), ("LAT=-1", "non-negative"), ("LAT=x", "integer"), ({"L": 1.5}, "int")]:
        with pytest.raises(MixSpecError, match=match):
            parse_caps(bad)
    with pytest.raises(MixSpecError, match="twice"):
        parse_caps("LAT=1,LAT=2")


@given(st.integers(0, 500), st.one_of(st.none(), st.integers(0, 600)), st.sampled_from(["first", "random"]))
def test_select_indices(n, cap, mode):
    idx = select_indices(n, cap, mode, seed=3, key="KOR")
    assert len(idx) == (n if cap is None else min(n, cap))
    assert len(np.unique(idx)) == len(idx) and (len(idx) == 0 or (idx.min() >= 0 and idx.max() < n))
    assert np.array_equal(idx, np.sort(idx))
    assert np.array_equal(idx, select_indices(n, cap, mode, seed=3, key="KOR"))
    if mode == "first":
        assert np.array_equal(idx, np.arange(len(idx)))


def test_random_cap_depends_on_seed_and_source():
    a = select_indices(1000, 10, "random", seed=0, key="KOR")
    assert not np.array_equal(a, select_indices(1000, 10, "random", seed=1, key="KOR"))
    assert not np.array_equal(a, select_indices(1000, 10, "random", seed=0, key="LAT"))


def _layout(root, names, split="training"):
    for name in names:
        with LmdbWriter(root / split / name) as w:
            w.add(b"x", name)


def test_mix_from_select_data_resolves_layout(tmp_path):
    _layout(tmp_path, ["KOR", "LAT", "SynthMLT_KOR"])
    spec = mix_from_select_data(tmp_path, "lang_KL-SynthMLT_K", caps="LAT=2000,SynthMLT=5")
    assert [(s.name, s.cap) for s in spec.sources] == [("KOR", None), ("LAT", 2000), ("SynthMLT_KOR", 5)]
    resolved = spec.resolve()
    expected = [tmp_path / "training" / n for n in ("KOR", "LAT", "SynthMLT_KOR")]
    assert [p for _, paths in resolved for p in paths] == expected
    assert [s.script for s, _ in resolved] == ["KOR", "LAT", "KOR"]
    # The reference passes the split folder itself (--train_data data/training).
    spec2 = mix_from_select_data(tmp_path / "training", "lang_K")
    assert spec2.resolve()[0][1] == [tmp_path / "training" / "KOR"]


def test_unknown_folder_and_stray_cap_are_errors(tmp_path):
    _layout(tmp_path, ["KOR"])
    with pytest.raises(MixSpecError, match="'LAT'.*does not exist"):
        mix_from_select_data(tmp_path, "lang_KL").resolve()
    with pytest.raises(MixSpecError, match="cap 'LATT' matches no selected source"):
        mix_from_select_data(tmp_path, "lang_K", caps="LATT=10")
    with pytest.raises(MixSpecError, match="2 values for 1 sources"):
        mix_from_select_data(tmp_path, "lang_K", batch_ratio="0.5-0.5")


def test_all_sources_and_nested_lmdbs(tmp_path):
    _layout(tmp_path, ["KOR", "MLT/ARA", "MLT/BEN"], split="evaluation")
    spec = mix_from_select_data(tmp_path, "/", split="evaluation")
    resolved = spec.resolve()
    assert [s.name for s, _ in resolved] == ["KOR", "MLT"]
    assert [p.name for p in resolved[1][1]] == ["ARA", "BEN"]


YAML_SPEC = """
root: data
seed: 7
mix: ratio
sources:
  - {name: KOR, cap: 100, cap_mode: random, ratio: 3}
  - {name: extra, path: ../other/LAT, ratio: 1, script: LAT}
"""

TOML_SPEC = """
root = "data"
select_data = "lang_KL"
total_cap = 50
[caps]
LAT = 20
"""


def test_yaml_and_toml_mixture_files(tmp_path):
    _layout(tmp_path / "data", ["KOR", "LAT"])
    _layout(tmp_path / "other", ["LAT"], split="")
    (tmp_path / "mix.yaml").write_text(YAML_SPEC)
    spec = load_mix_spec(tmp_path / "mix.yaml")
    assert spec.mix == "ratio" and spec.seed == 7 and spec.ratios() == [0.75, 0.25]
    assert spec.sources[0] == SourceSpec(name="KOR", cap=100, cap_mode="random", ratio=3.0)
    resolved = spec.resolve()
    assert [p.resolve() for p in resolved[1][1]] == [tmp_path / "other" / "LAT"] and resolved[1][0].script == "LAT"
    (tmp_path / "mix.toml").write_text(TOML_SPEC)
    spec = load_mix_spec(tmp_path / "mix.toml")
    assert [(s.name, s.cap) for s in spec.sources] == [("KOR", None), ("LAT", 20)] and spec.total_cap == 50


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("sources: [{name: A, cap: 1}]\nmixx: concat\n", r"unknown key\(s\) \['mixx'\]"),
        ("sources: [{name: A, capp: 1}]\n", r"sources\[0\] \('A'\) unknown key"),
        ("sources: [{name: A, cap_mode: last}]\n", "cap_mode must be one of"),
        ("mix: ratio\nsources: [{name: A, ratio: 1}, {name: B}]\n", r"\['B'\] have no ratio"),
        ("sources: [{name: A}, {name: A}]\n", "appear twice"),
        ("sources: []\n", "at least one source"),
        ("sources: [{name: A, ratio: x}]\n", "ratio must be a number"),
        ("select_data: lang_Q\n", "'Q'"),
        ("- a\n", "mapping at top level"),
        ("a: [\n", "cannot parse"),
    ],
)
def test_mixture_file_errors_name_the_file(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(MixSpecError, match=match):
        load_mix_spec(p)


def test_mixture_file_extension_and_missing(tmp_path):
    with pytest.raises(MixSpecError, match="not found"):
        load_mix_spec(tmp_path / "none.yaml")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(MixSpecError, match="extension"):
        load_mix_spec(tmp_path / "m.json")


def test_batch_ratio_parsing():
    assert parse_batch_ratio("0.5-0.5", 2) == [0.5, 0.5]
    assert parse_batch_ratio([3, 1], 2) == [0.75, 0.25]
    with pytest.raises(MixSpecError, match="non-negative"):
        parse_batch_ratio([1, -1], 2)


@given(st.integers(1, 300), st.lists(st.floats(0, 10), min_size=1, max_size=8))
def test_split_batch_sums_to_batch(batch, ratios):
    if sum(ratios) <= 0:
        with pytest.raises(ValueError):
            split_batch(batch, ratios)
        return
    counts = split_batch(batch, ratios)
    assert sum(counts) == batch and all(c >= 0 for c in counts)
    positive = [i for i, r in enumerate(ratios) if r > 0]
    if len(positive) <= batch:
        assert all(counts[i] >= 1 for i in positive)


def test_ratio_sampler_shares_and_determinism():
    source_ids = np.array([0] * 1000 + [1] * 10 + [2] * 50)
    sampler = RatioBatchSampler(source_ids, [0.5, 0.25, 0.25], batch_size=16, num_batches=20, seed=1)
    batches = list(sampler)
    assert len(batches) == 20
    for b in batches:
        assert [int((source_ids[b] == s).sum()) for s in range(3)] == [8, 4, 4]
    small = [i for b in batches for i in b if source_ids[i] == 1]
    assert set(small) == set(range(1000, 1010))  # the small source cycles through all of its samples
    again = RatioBatchSampler(source_ids, [0.5, 0.25, 0.25], batch_size=16, num_batches=20, seed=1)
    assert list(again) == batches
    assert list(sampler) != batches  # the next epoch draws a new stream
    with pytest.raises(ValueError, match="no samples"):
        RatioBatchSampler(np.zeros(5, dtype=int), [0.5, 0.5], batch_size=4)


def test_mixspec_needs_root_or_path():
    with pytest.raises(MixSpecError, match="no path and the mixture has no root"):
        MixSpec(sources=[SourceSpec("KOR")]).resolve()
