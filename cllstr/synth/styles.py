"""Appearance profiles of the synthetic renderer.

A :class:`Style` is a set of distributions (font families, backgrounds, contrast, geometry, degradations). Two
profiles imitate the two data sources of the CLL-STR study and differ on purpose, so that a model trained on one sees
a domain gap on the other, as between MLT19 (real photos) and SynthMLT (SynthText-style renderings):

* ``real``: camera-like crops. Mostly sans/bold sign fonts, flat or gently textured backgrounds with lighting
  gradients, tight boxes, perspective, low resolution upscaled, blur, sensor noise and strong JPEG compression.
* ``synthmlt``: rendered-on-texture look. More serif faces, busy textures/stripes, outlines and drop shadows, curved
  baselines, looser boxes and lower colour contrast, clean JPEG.

``clean`` draws plain dark-on-light text with no degradation (previews of shaping, benchmarks of the raw renderer).

``realistic`` (issue #20) is ``real`` plus the scene-realism effects of :mod:`cllstr.synth.effects`: text colour from
the background's colour clusters, lighting gradients and cast shadows, stronger perspective and curved baselines,
partial occlusion and crop cut-offs, pixelation, motion/defocus blur, sensor noise, low JPEG quality, multi-word and
digit/punctuation-heavy strings, and vertical CJK text. Each effect is one group of fields (:data:`EFFECTS`) and can be
switched off by name (:func:`without`) or any field set from the command line (:func:`with_overrides`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["Style", "STYLES", "EFFECTS", "get_style", "register_style", "without", "with_overrides"]


@dataclass(frozen=True)
class Style:
    """Distributions a :class:`~cllstr.synth.render.Renderer` samples from.

    Ranges are ``(low, high)`` for uniform draws; probabilities are per sample. Lengths relative to the text height.

    Attributes:
        name: Registry key.
        height: Final image height range in pixels (inclusive).
        serif_prob: Probability to pick a serif / calligraphic face when the script has one.
        bold_prob: Probability to pick a bold face when one exists.
        backgrounds: Background name -> weight (see ``appearance.BACKGROUNDS``); ``--bg-dir`` crops replace them
            with the renderer's ``bg_image_prob``.
        contrast: WCAG contrast-ratio range between text and background colours.
        dark_on_light: Force black-ish text on white-ish background (``clean``).
        outline_prob: Probability of a coloured outline; ``outline_width`` its width.
        shadow_prob: Probability of a drop shadow; ``shadow_offset`` its offset, ``shadow_blur`` its softness.
        rotation: Standard deviation of the rotation in degrees (clipped at 3 sigma).
        perspective: Max corner displacement of the perspective warp.
        curve_prob: Probability of a curved baseline; ``curve_amp`` its amplitude.
        pad: Padding range added on each side (independently: padding jitter).
        lowres_prob: Probability to render at ``lowres_factor`` of the size and upscale (blocky, soft strokes).
        blur_prob: Probability of Gaussian blur; ``blur_radius`` in output pixels.
        noise_prob: Probability of Gaussian noise; ``noise_sigma`` in grey levels.
        jpeg_quality: JPEG quality range of the stored crop.
        muted_prob: Probability to pull the background colour towards grey (walls, paper, asphalt, not primaries).
        color_from_bg_prob: Probability to take the text colour from the background's colour clusters (the
            background is drawn first).
        lighting_prob: Probability of uneven illumination; ``lighting_strength`` its gain amplitude.
        cast_shadow_prob: Probability of a shadow cast across the crop; ``cast_shadow_darkness`` how dark.
        occlusion_prob: Probability that a block or bar covers ``occlusion_frac`` of the text box.
        cutoff_prob: Probability that the crop cuts into the text top or bottom by ``cutoff_frac`` of its height.
        pixelate_prob: Probability to lose resolution after rendering (``pixelate_factor`` down, then up).
        motion_blur_prob: Probability of motion blur over ``motion_blur_len`` output pixels.
        defocus_prob: Probability of disk (defocus) blur of ``defocus_radius`` output pixels.
        sensor_noise_prob: Probability of per-channel read + shot noise of ``sensor_noise_sigma`` grey levels.
        multiword_prob: Probability that a label is two words (space-separated; CJK: concatenated).
        digit_heavy_prob: Probability of a digit/punctuation-heavy string (price, date, phone, code, percentage).
        vertical_prob: CHI/JPN/KOR: probability of vertical text (see :func:`cllstr.synth.effects.vertical_mask`).
    """

    name: str
    height: tuple[int, int] = (16, 64)
    serif_prob: float = 0.3
    bold_prob: float = 0.4
    backgrounds: dict[str, float] = field(default_factory=lambda: {"flat": 1.0})
    contrast: tuple[float, float] = (3.0, 21.0)
    dark_on_light: bool = False
    outline_prob: float = 0.0
    outline_width: tuple[float, float] = (0.03, 0.08)
    shadow_prob: float = 0.0
    shadow_offset: tuple[float, float] = (0.03, 0.08)
    shadow_blur: tuple[float, float] = (0.0, 0.05)
    rotation: float = 0.0
    perspective: tuple[float, float] = (0.0, 0.0)
    curve_prob: float = 0.0
    curve_amp: tuple[float, float] = (0.1, 0.35)
    pad: tuple[float, float] = (0.05, 0.2)
    lowres_prob: float = 0.0
    lowres_factor: tuple[float, float] = (0.4, 0.8)
    blur_prob: float = 0.0
    blur_radius: tuple[float, float] = (0.3, 1.2)
    noise_prob: float = 0.0
    noise_sigma: tuple[float, float] = (2.0, 10.0)
    jpeg_quality: tuple[int, int] = (90, 95)
    muted_prob: float = 0.0
    color_from_bg_prob: float = 0.0
    lighting_prob: float = 0.0
    lighting_strength: tuple[float, float] = (0.15, 0.45)
    cast_shadow_prob: float = 0.0
    cast_shadow_darkness: tuple[float, float] = (0.2, 0.5)
    occlusion_prob: float = 0.0
    occlusion_frac: tuple[float, float] = (0.03, 0.1)
    cutoff_prob: float = 0.0
    cutoff_frac: tuple[float, float] = (0.04, 0.14)
    pixelate_prob: float = 0.0
    pixelate_factor: tuple[float, float] = (0.35, 0.7)
    motion_blur_prob: float = 0.0
    motion_blur_len: tuple[float, float] = (2.0, 5.0)
    defocus_prob: float = 0.0
    defocus_radius: tuple[float, float] = (0.8, 1.8)
    sensor_noise_prob: float = 0.0
    sensor_noise_sigma: tuple[float, float] = (1.5, 6.0)
    multiword_prob: float = 0.0
    digit_heavy_prob: float = 0.0
    vertical_prob: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.height
        if not 8 <= lo <= hi <= 256:
            raise ValueError(f"style {self.name!r}: height range {self.height} must satisfy 8 <= low <= high <= 256")
        if not self.backgrounds or min(self.backgrounds.values()) < 0 or sum(self.backgrounds.values()) <= 0:
            raise ValueError(f"style {self.name!r}: backgrounds need positive weights, got {self.backgrounds}")
        if not 1.0 <= self.contrast[0] <= self.contrast[1] <= 21.0:
            raise ValueError(f"style {self.name!r}: contrast range {self.contrast} must lie in [1, 21]")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= v <= 1.0:
                raise ValueError(f"style {self.name!r}: {f.name}={v} must lie in [0, 1]")


#: Realism effects by name -> the probability fields that switch them on (``without(style, name)`` zeroes them).
EFFECTS: dict[str, tuple[str, ...]] = {
    "color_from_bg": ("color_from_bg_prob", "muted_prob"),
    "lighting": ("lighting_prob", "cast_shadow_prob"),
    "geometry": ("curve_prob",),
    "occlusion": ("occlusion_prob", "cutoff_prob"),
    "lowres": ("lowres_prob", "pixelate_prob"),
    "blur": ("blur_prob", "motion_blur_prob", "defocus_prob"),
    "noise": ("noise_prob", "sensor_noise_prob"),
    "text": ("multiword_prob", "digit_heavy_prob"),
    "vertical": ("vertical_prob",),
}


def without(style: Style, *effects: str) -> Style:
    """``style`` with the named :data:`EFFECTS` switched off (probabilities 0), renamed ``<name>-no-<effect>``.

    Raises:
        KeyError: unknown effect (lists the known ones).
    """
    changes: dict[str, float] = {}
    for e in effects:
        if e not in EFFECTS:
            raise KeyError(f"unknown effect {e!r}; known effects: {', '.join(EFFECTS)}")
        changes.update(dict.fromkeys(EFFECTS[e], 0.0))
    return dataclasses.replace(style, name="-no-".join([style.name, *effects]), **changes)


def _parse_value(text: str, current: object) -> object:
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true/false, got {text!r}")
        return text.lower() in ("true", "1")
    if isinstance(current, tuple):
        parts = [p for p in text.replace(":", ",").split(",") if p]
        if len(parts) != len(current):
            raise ValueError(f"expected {len(current)} numbers like 'lo:hi', got {text!r}")
        return tuple(type(c)(float(p)) if isinstance(c, int) else float(p) for p, c in zip(parts, current, strict=True))
    if isinstance(current, (int, float)):
        return type(current)(float(text))
    raise ValueError(f"cannot set a field of type {type(current).__name__} from the command line")


def with_overrides(style: Style, overrides: str | None) -> Style:
    """``style`` with fields set from ``"field=value;field=lo:hi"`` (``;``-separated), e.g. ``occlusion_prob=0``.

    Raises:
        ValueError: unknown field or a value of the wrong shape (the message names the field).
    """
    if not overrides:
        return style
    names = {f.name for f in dataclasses.fields(style)} - {"name", "backgrounds"}
    changes: dict[str, object] = {}
    for item in (x.strip() for x in overrides.split(";")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in names:
            raise ValueError(f"--style-set {item!r}: expected field=value with field one of {', '.join(sorted(names))}")
        try:
            changes[key] = _parse_value(value.strip(), getattr(style, key))
        except ValueError as e:
            raise ValueError(f"--style-set {key}: {e}") from None
    return dataclasses.replace(style, name=f"{style.name}+{overrides}", **changes)


STYLES: dict[str, Style] = {}


def register_style(style: Style) -> Style:
    """Add ``style`` to :data:`STYLES` (names must be unique)."""
    if style.name in STYLES:
        raise ValueError(f"style {style.name!r} is already registered")
    STYLES[style.name] = style
    return style


def get_style(name: str | Style) -> Style:
    """Look a style up by name, raising ``KeyError`` that lists the known styles."""
    if isinstance(name, Style):
        return name
    if name not in STYLES:
        raise KeyError(f"unknown synth style {name!r}; known styles: {', '.join(STYLES)}")
    return STYLES[name]


register_style(
    Style(
        "real",
        serif_prob=0.15,
        bold_prob=0.55,
        backgrounds={"flat": 0.35, "gradient": 0.35, "texture": 0.15, "noise": 0.15},
        contrast=(2.5, 21.0),
        outline_prob=0.05,
        shadow_prob=0.05,
        rotation=2.0,
        perspective=(0.0, 0.18),
        curve_prob=0.03,
        curve_amp=(0.05, 0.15),
        pad=(0.02, 0.15),
        lowres_prob=0.45,
        lowres_factor=(0.35, 0.8),
        blur_prob=0.45,
        blur_radius=(0.3, 1.1),
        noise_prob=0.5,
        noise_sigma=(2.0, 9.0),
        jpeg_quality=(35, 92),
    )
)

register_style(
    Style(
        "synthmlt",
        serif_prob=0.5,
        bold_prob=0.3,
        backgrounds={"texture": 0.4, "stripes": 0.15, "gradient": 0.2, "noise": 0.15, "flat": 0.1},
        contrast=(1.8, 12.0),
        outline_prob=0.3,
        outline_width=(0.03, 0.07),
        shadow_prob=0.3,
        shadow_offset=(0.03, 0.09),
        shadow_blur=(0.0, 0.06),
        rotation=3.5,
        perspective=(0.0, 0.08),
        curve_prob=0.25,
        curve_amp=(0.1, 0.4),
        pad=(0.05, 0.3),
        lowres_prob=0.1,
        blur_prob=0.2,
        blur_radius=(0.3, 0.8),
        noise_prob=0.15,
        noise_sigma=(1.0, 5.0),
        jpeg_quality=(75, 95),
    )
)

register_style(
    Style(
        "clean",
        height=(32, 32),
        serif_prob=0.0,
        bold_prob=0.0,
        backgrounds={"flat": 1.0},
        dark_on_light=True,
        pad=(0.1, 0.1),
        jpeg_quality=(95, 95),
    )
)

register_style(
    Style(
        "realistic",
        height=(12, 64),
        serif_prob=0.25,
        bold_prob=0.5,
        backgrounds={"flat": 0.15, "gradient": 0.25, "texture": 0.25, "noise": 0.1, "stripes": 0.05, "fractal": 0.2},
        contrast=(2.5, 21.0),
        outline_prob=0.08,
        shadow_prob=0.1,
        rotation=3.0,
        perspective=(0.0, 0.3),
        curve_prob=0.12,
        curve_amp=(0.05, 0.3),
        pad=(0.0, 0.18),
        lowres_prob=0.4,
        lowres_factor=(0.3, 0.8),
        blur_prob=0.3,
        blur_radius=(0.3, 1.2),
        noise_prob=0.2,
        noise_sigma=(2.0, 8.0),
        jpeg_quality=(15, 90),
        muted_prob=0.6,
        color_from_bg_prob=0.5,
        lighting_prob=0.45,
        cast_shadow_prob=0.15,
        occlusion_prob=0.1,
        cutoff_prob=0.15,
        pixelate_prob=0.2,
        motion_blur_prob=0.15,
        defocus_prob=0.1,
        sensor_noise_prob=0.35,
        multiword_prob=0.06,
        digit_heavy_prob=0.06,
        vertical_prob=0.04,
    )
)
