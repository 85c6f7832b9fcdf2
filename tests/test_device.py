"""cllstr.device: what ``precision="auto"`` means on each device."""

from __future__ import annotations

import pytest
import torch

from cllstr import device as dev


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch, native):
    monkeypatch.setattr(dev, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert dev.resolve_amp_dtype("auto", cpu) is (torch.bfloat16 if native else None)
    # an explicit request is honoured either way
    assert dev.resolve_amp_dtype("bf16", cpu) is torch.bfloat16
    assert dev.resolve_amp_dtype("fp32", cpu) is None


def test_native_bf16_probe_matches_torch(monkeypatch):
    expected = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert dev.cpu_has_native_bf16() is bool(expected)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert dev.cpu_has_native_bf16() is False  # a torch without the probes: fp32 unless asked


def test_bad_precision_names_the_choices():
    with pytest.raises(ValueError, match="auto, bf16, fp16, fp32"):
        dev.resolve_amp_dtype("int8", torch.device("cpu"))
    with pytest.raises(ValueError, match="fp16 is not supported on CPU"):
        dev.resolve_amp_dtype("fp16", torch.device("cpu"))
