"""Property-based fuzzing of what users type or write: select-data, cap and batch-ratio strings, mixture files, study
files and training configs (whole files and ``--set`` overrides). Every input either parses into something that
satisfies the format's invariants or raises the format's own error type with a message: never another exception."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cllstr.data.mixture.select_data import (
    MixSpecError,
    parse_batch_ratio,
    parse_caps,
    parse_select_data,
    select_indices,
)
from cllstr.data.mixture.spec import MixSpec
from cllstr.scripts import SCRIPTS
from cllstr.study.spec import StudyError, load_study, study_from_dict
from cllstr.train.config import TrainConfig, apply_overrides, config_from_dict, config_to_dict, load_config
from tests.common import fuzz_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "studies"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Pieces that select-data strings are made of, so that most draws are near-misses rather than noise.
select_pieces = st.sampled_from(["lang_", "SynthMLT_", "SynthMLT", "-", "/", "..", "KOR", "LAT", "CBHJAKL", "k",
                                 "Z", " ", "", "\\", "_", "lang_L", "a/b"])


@fuzz_settings(300)
@given(st.one_of(st.lists(select_pieces, max_size=8).map("".join), st.text(max_size=30),
                 st.lists(st.one_of(st.text(max_size=10), st.integers()), max_size=4)))
def test_select_data(select) -> None:
    try:
        names = parse_select_data(select)
    except MixSpecError as e:
        assert str(e)
        return
    assert names and len(set(names)) == len(names)
    for n in names:
        assert isinstance(n, str) and n.strip() == n and n
        assert not n.startswith("/") or n == "/"
        assert ".." not in n.split("/") and "\\" not in n
        if n.startswith("SynthMLT_"):
            assert n.removeprefix("SynthMLT_") in SCRIPTS or "/" in n or not n.removeprefix("SynthMLT_").isupper()


cap_strings = st.lists(
    st.tuples(st.sampled_from(["LAT", "SynthMLT", "total", "", " ", "a=b", "KOR"]),
              st.sampled_from(["=", "", "=="]),
              st.one_of(st.integers(-5, 10**30).map(str), st.sampled_from(["all", "ALL", "1.5", "1e3", "nan", "inf",
                                                                          "", " 7 ", "-0", "٣"]))),
    max_size=4,
).map(lambda parts: ",".join(k + s + v for k, s, v in parts))


@fuzz_settings(300)
@given(st.one_of(cap_strings, st.text(max_size=30), st.dictionaries(st.text(max_size=6), json_values, max_size=3),
                 st.lists(st.one_of(st.text(max_size=10), st.integers(), st.none()), max_size=3), json_values))
def test_caps(caps) -> None:
    try:
        parsed = parse_caps(caps)
    except MixSpecError as e:
        assert str(e)
        return
    for key, n in parsed.items():
        assert isinstance(key, str) and key and type(n) is int and n >= 0


ratio_parts = st.one_of(st.floats(), st.integers(-3, 10**400).map(str), st.sampled_from(["", "x", "1e999"]))


@fuzz_settings(300)
@given(st.one_of(st.lists(ratio_parts, max_size=5).map(lambda v: "-".join(map(str, v))),
                 st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=4), st.none()), max_size=5),
                 json_values),
       st.integers(1, 5))
def test_batch_ratio(ratio, n) -> None:
    try:
        shares = parse_batch_ratio(ratio, n)
    except MixSpecError as e:
        assert str(e)
        return
    if ratio is None:
        assert shares is None
        return
    assert len(shares) == n and all(math.isfinite(s) and s >= 0 for s in shares)
    assert math.isclose(sum(shares), 1.0, rel_tol=1e-9)


@fuzz_settings(200)
@given(st.integers(0, 10**6), st.one_of(st.none(), st.integers(-3, 10**7)), st.sampled_from(["first", "random"]),
       st.integers(0, 2**64), st.text(max_size=10))
def test_select_indices(n, cap, mode, seed, key) -> None:
    if cap is not None and cap < 0:
        cap = None
    kept = select_indices(min(n, 5000), cap, mode, seed, key)
    n = min(n, 5000)
    assert len(kept) == (n if cap is None else min(cap, n))
    assert (kept[1:] > kept[:-1]).all() and (len(kept) == 0 or (kept[0] >= 0 and kept[-1] < n))


def _mutate(draw, node, depth: int = 0):
    """A copy of ``node`` with random subtrees replaced, dropped or given unknown keys."""
    if isinstance(node, dict) and node and depth < 4:
        node = dict(node)
        key = draw(st.sampled_from(sorted(node, key=str)))
        action = draw(st.sampled_from(["recurse", "replace", "drop", "add"]))
        if action == "recurse":
            node[key] = _mutate(draw, node[key], depth + 1)
        elif action == "replace":
            node[key] = draw(json_values)
        elif action == "drop":
            del node[key]
        else:
            node[draw(st.text(max_size=6))] = draw(json_values)
        return node
    if isinstance(node, list) and node and depth < 4:
        node = list(node)
        i = draw(st.integers(0, len(node) - 1))
        node[i] = _mutate(draw, node[i], depth + 1) if draw(st.booleans()) else draw(json_values)
        return node
    return draw(json_values)


def _load_examples() -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))]


STUDIES = _load_examples()
MIXTURES = [
    {"select_data": "lang_KL-SynthMLT_K", "caps": "LAT=10,SynthMLT=5,total=12", "mix": "concat", "seed": 3},
    {"root": "data", "mix": "ratio", "sources": [{"name": "LAT", "ratio": 0.5, "cap": 7, "cap_mode": "random"},
                                                 {"name": "KOR", "ratio": 0.5, "script": "KOR"}]},
]


@fuzz_settings(250)
@given(st.data())
def test_study_files(data) -> None:
    spec_dict = copy.deepcopy(data.draw(st.sampled_from(STUDIES)))
    for _ in range(data.draw(st.integers(1, 3))):
        spec_dict = _mutate(data.draw, spec_dict)
    try:
        spec = study_from_dict(spec_dict)
    except StudyError as e:
        assert str(e)
        return
    assert spec.mixtures and spec.seeds and spec.models
    assert study_from_dict(spec.to_dict()).to_dict() == spec.to_dict()  # what it wrote reads back the same


@fuzz_settings(100)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 st.sampled_from(STUDIES).map(lambda d: yaml.safe_dump(d).encode()[: len(yaml.safe_dump(d)) // 2])),
       st.sampled_from([".yaml", ".toml", ".json"]))
def test_study_file_bytes(raw, suffix) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"study{suffix}"
        path.write_bytes(raw)
        with pytest.raises(StudyError):
            load_study(path)


@fuzz_settings(250)
@given(st.data())
def test_mixture_files(data) -> None:
    mix = copy.deepcopy(data.draw(st.sampled_from(MIXTURES)))
    for _ in range(data.draw(st.integers(1, 3))):
        mix = _mutate(data.draw, mix)
    try:
        spec = MixSpec.from_dict(mix)
    except MixSpecError as e:
        assert str(e)
        return
    assert spec.sources
    for s in spec.sources:
        assert s.cap is None or (type(s.cap) is int and s.cap >= 0)
        assert s.ratio is None or (math.isfinite(s.ratio) and s.ratio >= 0)
    shares = spec.ratios()
    assert all(math.isfinite(r) and r >= 0 for r in shares) and math.isclose(sum(shares), 1.0, rel_tol=1e-9)


CONFIG = config_to_dict(TrainConfig())


@fuzz_settings(250)
@given(st.data())
def test_config_files(data) -> None:
    cfg = copy.deepcopy(CONFIG)
    for _ in range(data.draw(st.integers(1, 3))):
        cfg = _mutate(data.draw, cfg)
    suffix = data.draw(st.sampled_from([".json", ".yaml"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"train{suffix}"
        try:
            path.write_text(json.dumps(cfg) if suffix == ".json" else yaml.safe_dump(cfg), encoding="utf-8")
        except (ValueError, yaml.YAMLError, UnicodeEncodeError):  # not representable in the format (NaN keys...)
            return
        try:
            loaded = load_config(path)
        except ValueError as e:
            assert str(e)
            return
    assert isinstance(loaded, TrainConfig)
    assert config_from_dict(TrainConfig, config_to_dict(loaded)) == loaded


override_keys = st.sampled_from(["optim.lr", "data.caps", "data.caps.LAT", "model_kwargs.x", "threads", "data",
                                 "data.root.x", "nope", "optim.betas", "iterations", "", ".", "data..caps"])
override_values = st.one_of(st.sampled_from(["", "1", "-1", "5e-4", "[1, 2]", "{LAT: 3}", "{", "[", "null", "true",
                                             "'x", "a: b: c", "!!python/object:os.system", "*anchor", "%"]),
                            st.text(max_size=12))


@fuzz_settings(300)
@given(st.lists(st.tuples(override_keys, st.sampled_from(["=", ""]), override_values), min_size=1, max_size=3))
def test_config_overrides(items) -> None:
    overrides = [k + s + v for k, s, v in items]
    try:
        cfg = apply_overrides(TrainConfig(), overrides)
    except (ValueError, KeyError, TypeError) as e:
        assert str(e)
        return
    assert isinstance(cfg, TrainConfig)
