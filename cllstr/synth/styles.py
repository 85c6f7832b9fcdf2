"""Appearance profiles of the synthetic renderer.

A :class:`Style` is a set of distributions (font families, backgrounds, contrast, geometry, degradations). Two
profiles imitate the two data sources of the CLL-STR study and differ on purpose, so that a model trained on one sees
a domain gap on the other, as between MLT19 (real photos) and SynthMLT (SynthText-style renderings):

* ``real``: camera-like crops. Mostly sans/bold sign fonts, flat or gently textured backgrounds with lighting
  gradients, tight boxes, perspective, low resolution upscaled, blur, sensor noise and strong JPEG compression.
* ``synthmlt``: rendered-on-texture look. More serif faces, busy textures/stripes, outlines and drop shadows, curved
  baselines, looser boxes and lower colour contrast, clean JPEG.

``clean`` draws plain dark-on-light text with no degradation (previews of shaping, benchmarks of the raw renderer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Style", "STYLES", "get_style", "register_style"]


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

    def __post_init__(self) -> None:
        lo, hi = self.height
        if not 8 <= lo <= hi <= 256:
            raise ValueError(f"style {self.name!r}: height range {self.height} must satisfy 8 <= low <= high <= 256")
        if not self.backgrounds or min(self.backgrounds.values()) < 0 or sum(self.backgrounds.values()) <= 0:
            raise ValueError(f"style {self.name!r}: backgrounds need positive weights, got {self.backgrounds}")
        if not 1.0 <= self.contrast[0] <= self.contrast[1] <= 21.0:
            raise ValueError(f"style {self.name!r}: contrast range {self.contrast} must lie in [1, 21]")


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
