"""One word -> one scene-like crop, deterministic by ``(seed, index)``.

The :class:`Renderer` holds per-process caches (font faces per script, ``FreeTypeFont`` per (face, size), word
samplers, background images). ``renderer(index)`` seeds a numpy generator from ``(seed, index)`` alone, so the same
pair always yields the same label and pixels whatever the process or the order of calls; this is what makes the
multi-process generator reproducible and resumable.

Text is laid out by libraqm (HarfBuzz + FriBiDi): Arabic is joined and drawn right to left, Indic conjuncts and
pre-base vowel signs are formed. Labels stay in logical order (NFC), never visual order.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from cllstr.scripts import Script, get_script
from cllstr.synth import appearance as ap
from cllstr.synth import effects as fx
from cllstr.synth.fonts import FontFace, load_font, missing_glyphs, require_raqm
from cllstr.synth.fontset import ScriptFonts, resolve_fonts
from cllstr.synth.styles import Style, get_style
from cllstr.synth.words import MixRates, WordSampler

__all__ = ["Sample", "Renderer", "text_mask", "NoCoverableWordError", "VERTICAL_SCRIPTS"]

#: Scripts whose scene text is sometimes set vertically (``Style.vertical_prob``).
VERTICAL_SCRIPTS = frozenset({"CHI", "JPN", "KOR"})


class NoCoverableWordError(RuntimeError):
    """Every word drawn for a sample needed a glyph the chosen fonts lack."""


class _BlankInk(Exception):
    """The face maps every character of the word but draws no ink for it (e.g. a lone conjoining jamo)."""


@dataclass(frozen=True)
class Sample:
    """A rendered crop.

    Attributes:
        image: RGB crop, height in the style's range.
        label: NFC label in logical order.
        script: Script name.
        font: Face used.
        quality: JPEG quality the style drew for this crop.
        skipped: Words rejected (missing glyphs) before this one was accepted.
    """

    image: Image.Image
    label: str
    script: str
    font: FontFace
    quality: int
    skipped: int


def _ink(
    text: str, face: FontFace, size: int, language: str | None, stroke: int
) -> tuple[Image.Image, tuple[int, int]]:
    """Shaped ink bitmap and its offset from the pen origin, from one raqm layout (``getmask2``)."""
    font = load_font(face.path, face.index, size)
    core, offset = font.getmask2(text, "L", language=language, stroke_width=stroke)
    # getmask2 hands back Pillow's internal image core; wrapping it avoids a second layout pass (getbbox + draw).
    return Image.Image()._new(core), offset


def text_mask(text: str, face: FontFace, size: int, language: str | None = None, stroke: int = 0) -> Image.Image:
    """Shaped ink of ``text`` as a tight ``L`` mask (255 = ink); with ``stroke`` > 0 the outlined (fattened) ink.

    Args:
        text: Logical-order text; raqm decides direction and joining.
        face: Font face.
        size: Font size in pixels.
        language: BCP-47-ish tag for language-specific shaping (``"hi"``, ``"zh-cn"``...).
        stroke: Outline width in pixels.
    """
    mask, _ = _ink(text, face, size, language, stroke)
    box = mask.getbbox()
    return mask.crop(box) if box else mask


def _outlined(text: str, face: FontFace, size: int, language: str | None, stroke: int) -> Image.Image:
    """``LA`` image: band L = plain ink, band A = outlined ink, aligned and cropped to the outline."""
    outline, (ox, oy) = _ink(text, face, size, language, stroke)
    fill, (fx, fy) = _ink(text, face, size, language, 0)
    canvas = Image.new("L", outline.size, 0)
    canvas.paste(fill, (fx - ox, fy - oy))
    both = Image.merge("LA", (canvas, outline))
    box = outline.getbbox()
    return both.crop(box) if box else both


def _on(rng: np.random.Generator, prob: float) -> bool:
    """Draw a switch; a probability of 0 draws nothing, so effects that are off leave the random stream unchanged."""
    return prob > 0 and rng.random() < prob


def _cut_off(arr: np.ndarray, rng: np.random.Generator, oy: int, mh: int, frac: tuple[float, float]) -> np.ndarray:
    """Crop into the top or the bottom of the text (rows ``oy .. oy + mh``) by a fraction of its height."""
    cut = max(1, int(round(mh * rng.uniform(*frac))))
    if rng.random() < 0.5:
        return arr[oy + cut :]
    return arr[: oy + mh - cut]


def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], dtype=np.float64)
    return names[int(np.searchsorted(np.cumsum(p / p.sum()), rng.random(), side="right").clip(0, len(names) - 1))]


class Renderer:
    """Renders word crops of one or more scripts in one style.

    Args:
        scripts: Script name(s); a sample's script is drawn with ``weights`` (uniform by default).
        style: Style name or :class:`Style`.
        seed: Base seed; sample ``i`` depends only on ``(seed, i)``.
        weights: Relative frequency of each script.
        font_set: Catalogue font set (``noto``, ``small``, ``full``; ``none``: only ``font_dir``), see
            :mod:`cllstr.synth.catalog`; only installed families that pass the font checks are used.
        font_dir: Folder of user fonts, mixed in as more families.
        bg_dir: Folder of background images; crops replace procedural backgrounds with ``bg_image_prob``.
        bg_image_prob: Probability of an image background when ``bg_dir`` is given.
        rates: Word mixing rates.
        words: Optional fixed word list per script name, used instead of wordfreq.
        max_tries: Words drawn per sample before giving up on glyph coverage.

    Raises:
        RaqmMissingError: Pillow cannot shape complex scripts.
        KeyError: unknown script or style.
    """

    def __init__(
        self,
        scripts: str | Sequence[str],
        style: str | Style = "real",
        *,
        seed: int = 0,
        weights: Sequence[float] | None = None,
        font_set: str = "full",
        font_dir: str | None = None,
        bg_dir: str | None = None,
        bg_image_prob: float = 0.5,
        rates: MixRates | None = None,
        words: Mapping[str, Sequence[str]] | None = None,
        max_tries: int = 50,
    ):
        require_raqm()
        names = [scripts] if isinstance(scripts, str) else list(scripts)
        if not names:
            raise ValueError("Renderer needs at least one script")
        self.scripts: list[Script] = [get_script(n) for n in names]
        self.style = get_style(style)
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.seed = int(seed)
        w = np.ones(len(names)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(names),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights {weights} must be {len(names)} non-negative numbers with a positive sum")
        self._script_cdf = np.cumsum(w / w.sum())
        self.font_set = font_set
        self.font_dir = font_dir
        self.backgrounds = ap.ImageBackgrounds(bg_dir) if bg_dir else None
        self.bg_image_prob = bg_image_prob
        rates = rates or MixRates()
        st = self.style
        if st.multiword_prob or st.digit_heavy_prob:
            rates = dataclasses.replace(rates, multiword=max(rates.multiword, st.multiword_prob),
                                        digit_heavy=max(rates.digit_heavy, st.digit_heavy_prob))
        self.rates = rates
        self.words = {
            get_script(k).name: [unicodedata.normalize("NFC", x) for x in v] for k, v in (words or {}).items()
        }
        self.max_tries = max_tries
        self.skipped: Counter[str] = Counter()
        self.missing: Counter[str] = Counter()
        self._samplers: dict[str, WordSampler] = {}

    def faces(self, script: Script) -> ScriptFonts:
        """The script's checked font families (found and checked once per process, see :func:`resolve_fonts`)."""
        return resolve_fonts(script.name, self.font_set, self.font_dir)

    def _sampler(self, script: Script) -> WordSampler:
        if script.name not in self._samplers:
            self._samplers[script.name] = WordSampler(script, self.rates)
        return self._samplers[script.name]

    def _word(self, script: Script, rng: np.random.Generator) -> str:
        fixed = self.words.get(script.name)
        if fixed:
            return fixed[int(rng.integers(0, len(fixed)))]
        return self._sampler(script).sample(rng)

    def _face(self, script: Script, rng: np.random.Generator) -> FontFace:
        return self.faces(script).pick(rng, self.style.serif_prob, self.style.bold_prob)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` (a pure function of ``(seed, index)``)."""
        return np.random.default_rng([self.seed, int(index)])

    def __call__(self, index: int) -> Sample:
        """Render sample ``index``: draw script, word and face, skipping words with missing glyphs.

        Raises:
            NoCoverableWordError: ``max_tries`` words in a row had missing glyphs.
        """
        rng = self.rng(index)
        script = self.scripts[
            int(np.searchsorted(self._script_cdf, rng.random(), side="right").clip(0, len(self.scripts) - 1))
        ]
        skipped = 0
        for _ in range(self.max_tries):
            text = self._word(script, rng)
            face = self._face(script, rng)
            miss = missing_glyphs(text, face)
            if not miss:
                try:
                    image, quality = self.render(text, script, face, rng)
                    return Sample(image, text, script.name, face, quality, skipped)
                except _BlankInk:
                    miss = set(text)
            skipped += 1
            self.skipped[script.name] += 1
            self.missing.update(miss)
        raise NoCoverableWordError(
            f"sample {index}: {self.max_tries} {script.name} words in a row need glyphs the fonts lack "
            f"(most missing: {''.join(c for c, _ in self.missing.most_common(10))!r})"
        )

    def render(self, text: str, script: Script, face: FontFace, rng: np.random.Generator) -> tuple[Image.Image, int]:
        """Draw ``text`` with ``face`` in this renderer's style; returns the RGB crop and its JPEG quality.

        Realism steps (colour from the background, lighting, occlusion, cut-offs, pixelation, motion/defocus blur,
        sensor noise, vertical text) draw from ``rng`` only when the style switches them on, so a style without them
        renders exactly as before they existed.
        """
        st = self.style
        out_h = int(rng.integers(st.height[0], st.height[1] + 1))
        scale = rng.uniform(*st.lowres_factor) if rng.random() < st.lowres_prob else 1.0
        size = max(8, int(round(out_h * rng.uniform(0.8, 1.0) * scale)))
        lang = script.fontconfig_lang
        stroke = max(1, int(round(size * rng.uniform(*st.outline_width)))) if rng.random() < st.outline_prob else 0
        vertical = _on(rng, st.vertical_prob) if script.name in VERTICAL_SCRIPTS else False

        if vertical:
            stroke = 0
            ink = fx.vertical_mask([text_mask(ch, face, size, lang) for ch in text if not ch.isspace()])
        else:
            ink = _outlined(text, face, size, lang, stroke) if stroke else text_mask(text, face, size, lang, 0)
        if ink.getbbox() is None:
            raise _BlankInk(text)
        ink = self._geometry(ink, rng, size)
        masks = [np.asarray(b) for b in ink.split()]
        body = masks[-1]
        mh, mw = body.shape

        shadow = rng.random() < st.shadow_prob
        sdx = sdy = 0
        if shadow:
            off = max(1, int(round(size * rng.uniform(*st.shadow_offset))))
            sdx, sdy = off * (1 if rng.random() < 0.7 else -1), off
        pl, pr, pt, pb = (rng.uniform(*st.pad, 4) * mh).astype(int) + 1
        ch, cw = mh + pt + pb + abs(sdy), mw + pl + pr + abs(sdx)
        ox, oy = pl + max(0, -sdx), pt + max(0, -sdy)

        if st.dark_on_light:
            fg = tuple(int(v) for v in rng.integers(0, 40, 3))
            bg = tuple(int(v) for v in rng.integers(215, 256, 3))
        else:
            fg, bg = ap.pick_colors(rng, *st.contrast)
        if _on(rng, st.muted_prob):
            bg = fx.mute(bg, rng.uniform(0.3, 0.9))
            fg = ap.contrasting_color(rng, bg, *st.contrast)
        if self.backgrounds is not None and rng.random() < self.bg_image_prob:
            background = self.backgrounds(rng, ch, cw, bg)
        else:
            background = ap.make_background(_pick(rng, st.backgrounds), rng, ch, cw, bg)
        if _on(rng, st.color_from_bg_prob):
            fg = fx.color_from_background(rng, background, *st.contrast)

        def placed(mask: np.ndarray, dx: int = 0, dy: int = 0) -> np.ndarray:
            full = np.zeros((ch, cw), np.uint8)
            full[oy + dy : oy + dy + mh, ox + dx : ox + dx + mw] = mask
            return full

        layers: list[tuple[np.ndarray, ap.Color]] = []
        if shadow:
            soft = Image.fromarray(placed(body, sdx, sdy))
            radius = size * rng.uniform(*st.shadow_blur)
            soft = soft.filter(ImageFilter.GaussianBlur(radius)) if radius >= 0.3 else soft
            layers.append((np.asarray(soft), tuple(int(c * 0.25) for c in bg)))
        if stroke:
            layers.append((placed(body), ap.contrasting_color(rng, fg, 3.0)))
            layers.append((placed(masks[0]), fg))
        else:
            layers.append((placed(body), fg))
        arr = self._scene(ap.compose(background, layers), rng, (ox, oy, ox + mw, oy + mh), fg, bg)
        if _on(rng, st.cutoff_prob):
            arr = _cut_off(arr, rng, oy, mh, st.cutoff_frac)
        img = Image.fromarray(arr)

        out_w = max(1, int(round(img.width * out_h / img.height)))
        img = img.resize((out_w, out_h), Image.BILINEAR)
        if _on(rng, st.pixelate_prob):
            img = fx.pixelate(img, rng.uniform(*st.pixelate_factor))
        if rng.random() < st.blur_prob:
            img = ap.blur(img, rng.uniform(*st.blur_radius))
        if _on(rng, st.motion_blur_prob):
            img = Image.fromarray(fx.motion_blur(np.asarray(img), rng, rng.uniform(*st.motion_blur_len)))
        if _on(rng, st.defocus_prob):
            img = Image.fromarray(fx.defocus(np.asarray(img), rng.uniform(*st.defocus_radius)))
        if rng.random() < st.noise_prob:
            img = Image.fromarray(ap.add_noise(np.asarray(img), rng, rng.uniform(*st.noise_sigma)))
        if _on(rng, st.sensor_noise_prob):
            img = Image.fromarray(fx.sensor_noise(np.asarray(img), rng, rng.uniform(*st.sensor_noise_sigma)))
        quality = int(rng.integers(st.jpeg_quality[0], st.jpeg_quality[1] + 1))
        return img, quality

    def _scene(
        self, arr: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int], fg: ap.Color, bg: ap.Color
    ) -> np.ndarray:
        """Occlusion, lighting and cast shadow on the composed crop (before resizing); ``box`` is the text box."""
        st = self.style
        if _on(rng, st.occlusion_prob):
            color = fg if rng.random() < 0.3 else ap.contrasting_color(rng, fg, 1.5)
            arr = fx.occlude(arr, rng, box, rng.uniform(*st.occlusion_frac), color)
        if _on(rng, st.lighting_prob):
            arr = fx.lighting(arr, rng, rng.uniform(*st.lighting_strength))
        if _on(rng, st.cast_shadow_prob):
            arr = fx.cast_shadow(arr, rng, rng.uniform(*st.cast_shadow_darkness))
        return arr

    def _geometry(self, ink: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
        st = self.style
        if rng.random() < st.curve_prob:
            amp = size * rng.uniform(*st.curve_amp) * (1 if rng.random() < 0.5 else -1)
            ink = ap.curve_mask(ink, amp)
        if st.perspective[1] > 0:
            ink = ap.perspective_mask(ink, rng, rng.uniform(*st.perspective))
        if st.rotation > 0:
            ink = ap.rotate_mask(ink, float(np.clip(rng.normal(0.0, st.rotation), -3 * st.rotation, 3 * st.rotation)))
        return ink
