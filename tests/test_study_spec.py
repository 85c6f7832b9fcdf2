"""Study specs: grid expansion, run-hash stability, cascade dependencies, validation errors, presets, schedules."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from cllstr.scripts import SCRIPT_ORDER
from cllstr.study.presets import get_preset, list_presets, scaled_count, schedule
from cllstr.study.spec import StudyError, expand, load_study, study_from_dict

BASE = {
    "name": "t",
    "data": {"profile": "mlt19-mini", "scale": 0.01},
    "base": {"iterations": 4, "batch_size": 4},
    "models": ["cnn_ctc", {"name": "crnn", "label": "CRNN"}],
    "seeds": [21, 22],
    "mixtures": [
        {"name": "LAT only", "select_data": "lang_L", "row": "Monolingual"},
        {"name": "HIN only", "select_data": "lang_H", "row": "Monolingual"},
        {"name": "All", "select_data": "lang_CBHJAKL"},
        {"name": "LAT->HIN", "select_data": "lang_H", "init": "LAT only", "overrides": {"iterations": 2}},
    ],
    "inits": [{"name": "init"}, {"name": "freeze", "freeze": True}],
    "report": {"baseline": "Monolingual"},
}


def spec_of(**changes: object):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return study_from_dict(data)


def test_grid_expansion_counts_and_cells() -> None:
    runs = expand(spec_of())
    # per model and seed: 3 scratch mixtures + 1 cascade x 2 init modes
    assert len(runs) == 2 * 2 * (3 + 2)
    cells = {(r.model, r.mixture, r.init, r.seed) for r in runs}
    assert ("CRNN", "LAT->HIN", "freeze", 22) in cells and ("cnn_ctc", "All", "scratch", 21) in cells
    casc = [r for r in runs if r.mixture == "LAT->HIN"]
    assert {r.row for r in casc} == {"LAT->HIN (init)", "LAT->HIN (freeze)"}
    assert all(r.config.iterations == 2 for r in casc)
    assert all(r.config.freeze == (r.init == "freeze") for r in casc)
    assert {r.config.model for r in runs} == {"cnn_ctc", "crnn"}
    assert [r.languages for r in runs if r.mixture == "All"][0] == ["CHI", "BEN", "HIN", "JPN", "ARA", "KOR", "LAT"]


def test_cascade_depends_on_parent_of_same_model_and_seed() -> None:
    runs = expand(spec_of())
    by_hash = {r.hash: r for r in runs}
    order = [r.hash for r in runs]
    for r in runs:
        if r.mixture == "LAT->HIN":
            parent = by_hash[r.depends_on]
            assert (parent.mixture, parent.model, parent.seed) == ("LAT only", r.model, r.seed)
            assert order.index(parent.hash) < order.index(r.hash)
        else:
            assert r.depends_on is None


def test_hash_is_stable_and_ignores_placement() -> None:
    a = {r.mixture + r.init + str(r.seed) + r.model: r.hash for r in expand(spec_of())}
    b = {r.mixture + r.init + str(r.seed) + r.model: r.hash for r in expand(spec_of())}
    assert a == b and len(set(a.values())) == len(a)
    placed = spec_of(base={"iterations": 4, "batch_size": 4, "threads": 3, "device": "cpu", "log_interval": 7,
                           "out_dir": "elsewhere", "data": {"root": "/somewhere/else", "workers": 2}})
    assert {r.mixture + r.init + str(r.seed) + r.model: r.hash for r in expand(placed)} == a


@pytest.mark.parametrize("change", [
    {"base": {"iterations": 5, "batch_size": 4}},
    {"base": {"iterations": 4, "batch_size": 4, "optim": {"lr": 5e-4}}},
    {"data": {"profile": "mlt19-mini", "scale": 0.02}},
    {"base": {"iterations": 4, "batch_size": 4, "data": {"batch_ratio": "1-1"}}},
    {"data": {"profile": None, "root": "/data/MLT19"}},
])
def test_hash_changes_with_what_the_run_computes(change: dict) -> None:
    before = {(r.model, r.mixture, r.init, r.seed): r.hash for r in expand(spec_of())}
    after = {(r.model, r.mixture, r.init, r.seed): r.hash for r in expand(spec_of(**change))}
    assert before.keys() == after.keys()
    assert all(before[k] != after[k] for k in before)


def test_hash_of_a_preset_run_is_pinned() -> None:
    """Finished runs are found by hash: a new TrainConfig field at its default must not change the hashes of studies
    run before it existed (see ``HASH_NEUTRAL_DEFAULTS``), or resuming a study would train everything again."""
    first = expand(get_preset("cll-joint", 0.1, 1))[0]
    assert (first.mixture, first.seed, first.hash) == ("ARA only", 21, "bc08bc85679f")


def test_changing_the_parent_changes_the_cascade_hash() -> None:
    mixtures = copy.deepcopy(BASE["mixtures"])
    mixtures[0]["caps"] = {"LAT": 5}
    runs_a, runs_b = expand(spec_of()), expand(spec_of(mixtures=mixtures))
    key = lambda r: (r.model, r.mixture, r.init, r.seed)  # noqa: E731
    a, b = {key(r): r.hash for r in runs_a}, {key(r): r.hash for r in runs_b}
    assert a[("cnn_ctc", "HIN only", "scratch", 21)] == b[("cnn_ctc", "HIN only", "scratch", 21)]
    assert a[("cnn_ctc", "LAT->HIN", "init", 21)] != b[("cnn_ctc", "LAT->HIN", "init", 21)]


@pytest.mark.parametrize("change, needle", [
    ({"mixtures": [{"name": "x", "select_data": "lang_Q"}]}, "mixtures[0]"),
    ({"mixtures": [{"name": "x", "select_data": "lang_L", "init": "nope"}]}, "init 'nope'"),
    ({"mixtures": [{"name": "x", "select_data": "lang_L", "colour": 1}]}, "colour"),
    ({"models": ["no_such_model"]}, "unknown model"),
    ({"report": {"metrics": ["bleu"]}}, "bleu"),
    ({"report": {"baseline": "Nothing"}}, "Nothing"),
    ({"base": {"iterationz": 3}}, "iterationz"),
    ({"seeds": [1, 1]}, "duplicate"),
    ({"mixtures": [{"name": "a", "select_data": "lang_L", "row": "r"},
                   {"name": "b", "select_data": "lang_LH", "row": "r"}]}, "share row"),
    ({"extra_key": 1}, "extra_key"),
])
def test_invalid_specs_name_the_key(change: dict, needle: str) -> None:
    with pytest.raises(StudyError) as err:
        spec_of(**change)
    assert needle in str(err.value)


def test_load_study_yaml_and_toml(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    assert len(expand(load_study(tmp_path / "s.yaml"))) == 20
    (tmp_path / "s.toml").write_text('name = "t"\nseeds = 2\n[[mixtures]]\nname = "L"\nselect_data = "lang_L"\n',
                                     encoding="utf-8")
    spec = load_study(tmp_path / "s.toml")
    assert spec.seeds == [21, 22] and spec.mixtures[0].select_data == "lang_L"
    (tmp_path / "bad.yaml").write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(StudyError, match="bad.yaml"):
        load_study(tmp_path / "bad.yaml")
    with pytest.raises(StudyError, match="not found"):
        load_study(tmp_path / "missing.yaml")


def test_schedule_scales_to_the_reference_at_one() -> None:
    full = schedule(1.0)
    assert (full.iterations, full.batch_size, full.val_interval, full.finetune_iterations) == (100_000, 128, 2000,
                                                                                               10_000)
    small = schedule(0.01)
    assert small.iterations < schedule(0.1).iterations < full.iterations
    assert scaled_count(2000, 1.0) == 2000 and scaled_count(2000, 0.1) == 200
    with pytest.raises(ValueError, match="scale"):
        schedule(0)


def test_presets_expand() -> None:
    assert list_presets() == ["cll-cascade", "cll-joint", "cll-synth-size", "four-stage", "lowres-seqmodel",
                              "task-grouping"]
    joint = get_preset("cll-joint", scale=0.01, seeds=3)
    runs = expand(joint)
    assert len(runs) == 9 * 3
    assert joint.eval.full_gt is True and get_preset("cll-joint", scale=1.0).eval.full_gt is False
    assert {r.row for r in runs} == {"Monolingual", "All", "All but LAT"}
    assert sorted(lang for r in runs if r.row == "Monolingual" and r.seed == 21 for lang in r.languages) == \
        sorted(SCRIPT_ORDER)
    casc = expand(get_preset("cll-cascade", scale=0.01))
    assert {r.mixture for r in casc if r.depends_on} == {"BEN→HIN", "LAT→HIN", "CHI→JPN", "LAT→JPN"}
    synth = expand(get_preset("cll-synth-size", scale=0.1))
    base = [r for r in synth if r.mixture == "Base"][0]
    assert base.config.data.caps == {"LAT": 200}
    two_k = [r for r in synth if r.mixture == "Base + 2K SynthMLT KOR"][0]
    assert two_k.config.data.caps == {"LAT": 200, "SynthMLT": 200} and "SynthMLT_K" in two_k.config.data.select_data
    low = expand(get_preset("lowres-seqmodel", scale=1.0))
    assert {r.config.model for r in low} == {"cnn_ctc", "crnn"}
    assert len(low) == 2 * 3 * 8
    multi = [r for r in low if r.mixture == "multi K=500" and r.model == "CRNN"][0]
    assert multi.baseline == "mono K=500" and multi.config.data.caps["KOR"] == 500
    with pytest.raises(KeyError, match="cll-joint"):
        get_preset("nope")


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].joinpath("examples", "studies").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_example_studies_load_and_expand(path: Path) -> None:
    runs = expand(load_study(path))
    assert runs and all(r.languages for r in runs)
