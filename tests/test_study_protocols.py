"""Preset protocols: ``gpu`` keeps the presets' runs (and hashes), ``cpu`` swaps model, schedule and data scale."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cllstr.cli.main import app
from cllstr.scripts import SCRIPT_ORDER
from cllstr.study.presets import get_preset, list_presets, schedule
from cllstr.study.protocols import CPU_CRNN_KWARGS, get_protocol, list_protocols
from cllstr.study.spec import expand


def _hashes(spec) -> dict[tuple, str]:
    return {(r.model, r.mixture, r.init, r.seed): r.hash for r in expand(spec)}


@pytest.mark.parametrize("name", list_presets())
def test_gpu_protocol_is_the_default_and_keeps_hashes(name: str) -> None:
    default = get_preset(name, 0.1, 2)
    gpu = get_preset(name, 0.1, 2, protocol="gpu")
    assert _hashes(default) == _hashes(gpu)
    assert default.base == schedule(0.1).base()
    cpu = get_preset(name, 0.1, 2, protocol="cpu")
    assert not set(_hashes(cpu).values()) & set(_hashes(gpu).values())


def test_gpu_default_scale_is_unchanged() -> None:
    assert get_preset("cll-joint").data.scale == 0.01
    full = get_preset("cll-joint", 1.0)
    assert full.base["iterations"] == 100_000 and full.base["batch_size"] == 128


def test_cpu_protocol_cll_joint() -> None:
    spec = get_preset("cll-joint", protocol="cpu", seeds=2)
    assert spec.data.scale == 0.2
    runs = expand(spec)
    assert len(runs) == 9 * 2
    for r in runs:
        assert r.config.model == "crnn" and r.config.model_kwargs == CPU_CRNN_KWARGS
        assert (r.config.iterations, r.config.batch_size, r.config.val_interval) == (1500, 64, 250)
        assert r.config.optim.lr == 2e-3 and r.config.optim.pct_start == 0.15
        assert r.config.data.val_samples == 300
    assert get_preset("cll-joint", 0.5, protocol="cpu").data.scale == 0.5  # --scale changes only the data
    assert get_preset("cll-joint", 0.5, protocol="cpu").base["iterations"] == 1500


def test_cpu_protocol_subsets_and_cascade() -> None:
    casc = expand(get_preset("cll-cascade", protocol="cpu"))
    fine = [r for r in casc if r.depends_on]
    assert len(fine) == 4 and {(r.config.iterations, r.config.val_interval) for r in fine} == {(300, 100)}
    synth = expand(get_preset("cll-synth-size", protocol="cpu"))
    assert [r.mixture for r in synth][:3] == ["Base", "Base + 2K SynthMLT CHI", "Base + all SynthMLT CHI"]
    assert len(synth) == 1 + 2 * len(get_protocol("cpu").synth_languages)
    assert synth[1].config.data.caps == {"LAT": 400, "SynthMLT": 400}
    low = get_preset("lowres-seqmodel", protocol="cpu")
    assert low.data.scale == 0.6
    runs = expand(low)
    assert {r.config.model for r in runs} == {"cnn_ctc", "crnn"}
    assert all(r.config.model_kwargs["out_channels"] == 256 for r in runs)
    assert not any(r.config.model_kwargs.get("batch_norm") for r in runs)  # same extractor: BiLSTM or not
    assert len(runs) == 2 * 3 * (len(get_protocol("cpu").lowres_mono) + 1)
    multi = [r for r in runs if r.mixture == "multi K=1000"][0]
    assert multi.config.data.caps == {lang: 1000 for lang in SCRIPT_ORDER}
    assert (multi.config.iterations, multi.config.batch_size) == (1000, 32)
    four = expand(get_preset("four-stage", protocol="cpu", seeds=2))  # one schedule, one row, three models
    assert [r.config.model for r in four] == ["trba", "trba", "crnn", "crnn", "svtr_tiny", "svtr_tiny"]
    assert {(r.config.iterations, r.config.batch_size, r.config.data.select_data) for r in four} == {
        (800, 64, "lang_L")}
    assert four[0].config.model_kwargs == {"out_channels": 256, "hidden_size": 128}
    assert [r.config.model for r in expand(get_preset("four-stage", seeds=1))] == ["trba", "crnn", "svtr_tiny"]


def test_unknown_protocol() -> None:
    assert list_protocols() == ["cpu", "gpu"]
    with pytest.raises(KeyError, match="known protocols: cpu, gpu"):
        get_preset("cll-joint", protocol="tpu")


def test_cli_protocol(tmp_path) -> None:
    cli = CliRunner()
    res = cli.invoke(app, ["study", "run", "--preset", "cll-joint", "--protocol", "cpu", "--out", str(tmp_path),
                           "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.count("1500 it x 64") == 9 and res.output.count("CRNN-h |") == 9
    res = cli.invoke(app, ["study", "run", "--preset", "cll-joint", "--protocol", "tpu", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--protocol" in res.output and "tpu" in res.output
    study = tmp_path / "s.yaml"
    study.write_text("name: s\nmixtures: [{name: LAT, select_data: lang_L}]\n", encoding="utf-8")
    res = cli.invoke(app, ["study", "run", str(study), "--protocol", "cpu", "--out", str(tmp_path), "--dry-run"])
    assert res.exit_code == 2 and "--protocol" in res.output
    res = cli.invoke(app, ["study", "protocols"])
    assert res.exit_code == 0 and res.output.startswith("cpu ") and "gpu " in res.output
