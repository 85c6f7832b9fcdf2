"""Scene-realism effects: each one does what it says on arrays, switches on and off by name, and keeps the renderer
deterministic by (seed, index); the realistic style and its text mixes; --style-set overrides."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from cllstr.synth import effects as fx
from cllstr.synth.appearance import contrast_ratio, encode_image
from cllstr.synth.render import Renderer
from cllstr.synth.styles import EFFECTS, get_style, with_overrides, without
from cllstr.synth.words import MixRates, WordSampler
from tests.common import require_font


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _edges(img: np.ndarray) -> float:
    """Mean absolute horizontal + vertical neighbour difference (high-frequency energy)."""
    x = img.astype(np.float32)
    return float(np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean())


def _checker(h: int = 32, w: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.repeat((((yy // 4 + xx // 4) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def test_dominant_colors_and_text_colour_come_from_the_background():
    bg = np.zeros((20, 40, 3), np.uint8)
    bg[:, :30] = (200, 180, 150)  # dominant wall colour
    bg[:, 30:] = (30, 40, 90)
    cl = fx.dominant_colors(_rng(), bg, k=2)
    assert cl[0] == (200, 180, 150) and cl[1] == (30, 40, 90)
    for seed in range(20):
        fg = fx.color_from_background(_rng(seed), bg, 3.0, 21.0)
        assert contrast_ratio(fg, (200, 180, 150)) >= 3.0


def test_mute_keeps_lightness_and_removes_saturation():
    c = (250, 20, 20)
    grey = 0.299 * 250 + 0.587 * 20 + 0.114 * 20
    assert fx.mute(c, 1.0) == (round(grey),) * 3
    assert fx.mute(c, 0.0) == c


def test_lighting_and_cast_shadow_change_brightness_unevenly():
    flat = np.full((30, 90, 3), 128, np.uint8)
    lit = fx.lighting(flat, _rng(1), 0.4)
    assert lit.shape == flat.shape and lit.std() > 5
    shaded = fx.cast_shadow(flat, _rng(2), 0.5)
    assert shaded.max() <= 128 and shaded.min() < 100  # only darkens, and some of the crop clearly


def test_occlusion_covers_part_of_the_text_box_only():
    img = np.full((40, 120, 3), 255, np.uint8)
    box = (10, 8, 110, 32)
    for seed in range(10):
        out = fx.occlude(img, _rng(seed), box, 0.08, (0, 0, 0))
        inside = (out[8:32, 10:110] != 255).any(-1).mean()
        assert 0.0 < inside < 0.5


def test_blurs_and_pixelation_remove_high_frequencies():
    img = _checker()
    e = _edges(img)
    assert _edges(fx.motion_blur(img, _rng(), 5)) < 0.9 * e  # one direction only: the other edges stay
    assert _edges(fx.defocus(img, 1.5)) < 0.8 * e
    assert _edges(np.asarray(fx.pixelate(Image.fromarray(img), 0.3))) < 0.8 * e
    assert fx.motion_blur(img, _rng(), 5).shape == img.shape


def test_sensor_noise_is_per_channel_and_grows_with_the_signal():
    dark, bright = np.full((40, 40, 3), 10, np.uint8), np.full((40, 40, 3), 200, np.uint8)
    nd, nb = fx.sensor_noise(dark, _rng(), 3.0), fx.sensor_noise(bright, _rng(), 3.0)
    assert nb.astype(float).std() > nd.astype(float).std()
    assert not np.array_equal(nb[..., 0], nb[..., 1])


def test_vertical_mask_stacks_characters_and_turns_them_to_reading_order():
    a, b = Image.new("L", (10, 12), 255), Image.new("L", (8, 12), 0)
    out = fx.vertical_mask([a, b], gap=0.0)
    assert out.size == (24, 10)  # column of height 12 + 12, width 10, turned 90 degrees
    arr = np.asarray(out)
    assert arr[:, :12].max() == 255 and arr[:, 12:].max() == 0  # first character on the left


def test_effects_can_be_switched_off_by_name_and_fields_overridden():
    real = get_style("realistic")
    off = without(real, *EFFECTS)
    for fields in EFFECTS.values():
        assert all(getattr(off, f) == 0.0 for f in fields)
    s = with_overrides(real, "occlusion_prob=0.5; jpeg_quality=20:40; dark_on_light=true")
    assert (s.occlusion_prob, s.jpeg_quality, s.dark_on_light) == (0.5, (20, 40), True)
    with pytest.raises(ValueError, match="jpeg_quality"):
        with_overrides(real, "jpeg_quality=20")
    with pytest.raises(ValueError, match="nope"):
        with_overrides(real, "nope=1")
    with pytest.raises(ValueError, match="must lie in"):
        with_overrides(real, "lighting_prob=1.5")
    with pytest.raises(KeyError, match="known effects"):
        without(real, "sparkles")


@pytest.mark.parametrize("effect", sorted(EFFECTS))
def test_each_effect_changes_the_renders_and_stays_deterministic(effect):
    require_font("Noto Sans")
    script = "JPN" if effect == "vertical" else "LAT"
    if script == "JPN":
        require_font("Noto Sans CJK JP")
    base = without(get_style("realistic"), *EFFECTS)
    on = dataclasses.replace(base, name=f"only-{effect}", **dict.fromkeys(EFFECTS[effect], 1.0))
    r_off, r_on = Renderer(script, base, seed=5, font_set="noto"), Renderer(script, on, seed=5, font_set="noto")
    r_on2 = Renderer(script, on, seed=5, font_set="noto")
    differ = 0
    for i in range(4):
        a, b = r_on(i), r_on2(i)
        assert a.label == b.label and encode_image(a.image, "png") == encode_image(b.image, "png")
        c = r_off(i)
        differ += a.label != c.label or encode_image(a.image, "png") != encode_image(c.image, "png")
    assert differ >= 3


def test_vertical_text_is_only_for_cjk():
    require_font("Noto Sans")
    st = dataclasses.replace(get_style("clean"), name="vert", vertical_prob=1.0)
    lat = Renderer("LAT", st, seed=0, font_set="noto", words={"LAT": ["word"]})
    img = lat(0).image
    assert img.width > 2 * img.height  # laid out horizontally: 4 upright letters


def test_cutoff_crops_into_the_text():
    require_font("Noto Sans")
    st = dataclasses.replace(get_style("clean"), name="cut", height=(64, 64), pad=(0.3, 0.3))
    cut = dataclasses.replace(st, name="cut-on", cutoff_prob=1.0, cutoff_frac=(0.3, 0.3))
    words = {"LAT": ["HHHH"]}
    full = np.asarray(Renderer("LAT", st, font_set="noto", words=words)(0).image.convert("L"))
    part = np.asarray(Renderer("LAT", cut, font_set="noto", words=words)(0).image.convert("L"))
    assert full[0].min() > 128 and full[-1].min() > 128  # padded: no ink on the border rows
    assert min(part[0].min(), part[-1].min()) < 128  # cut: ink touches the top or the bottom


def test_digit_heavy_and_multiword_labels():
    heavy = WordSampler("LAT", MixRates(digit_heavy=1.0))
    rng = _rng(3)
    labels = [heavy.sample(rng) for _ in range(200)]
    share = np.mean([sum(not c.isalpha() for c in s) / len(s) for s in labels])
    assert share > 0.5 and len(set(labels)) > 150
    multi = WordSampler("LAT", MixRates(multiword=1.0))
    assert sum(" " in multi.sample(rng) for _ in range(100)) > 80
    cjk = WordSampler("CHI", MixRates(multiword=1.0))
    assert not any(" " in cjk.sample(rng) for _ in range(50))


def test_realistic_style_turns_the_realism_set_on():
    real = get_style("realistic")
    for fields in EFFECTS.values():
        assert all(getattr(real, f) > 0 for f in fields), fields
    assert real.jpeg_quality[0] <= 20
    assert get_style("real").occlusion_prob == 0.0  # the older styles stay as they were
