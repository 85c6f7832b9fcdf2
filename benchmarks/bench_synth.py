"""Synthetic word-crop throughput per core: cllstr's renderer vs trdg (TextRecognitionDataGenerator, PyPI).

Both run in one process (images/s per core), at the same image height (32 px), on the same word lists (drawn by
cllstr's wordfreq sampler), with the same font files (Noto, via fontconfig), and both encode every crop to JPEG
(quality 90) in memory. Two settings:

* ``plain``: dark text on a flat light background, no effects (cllstr style ``clean``; trdg ``-b 1``, no skew/blur).
* ``augmented``: the same effects on both sides: Gaussian-noise background, random rotation of about +-3 degrees
  (trdg: uniform integer degrees; cllstr: normal, sigma 1.73 = the same spread), random blur up to 1 px.
* ``real``: cllstr's full ``real`` style at 32 px (textures, perspective, low-res, noise, JPEG...) against trdg's
  ``augmented`` setting; cllstr does strictly more work per image here.

Scripts: those trdg can draw. trdg draws character by character without a shaper, so Devanagari and Bengali come
out wrong and are left out; Arabic goes through trdg's own ``arabic_reshaper`` + ``python-bidi`` path (``rtl=True``).
trdg 1.8.0 calls ``FreeTypeFont.getsize``, removed in Pillow 10; this benchmark patches that one helper with the
equivalent ``getbbox(text)[3]`` (see :func:`_patch_trdg`), nothing else.

    python benchmarks/bench_synth.py --n 300            # prints images/s and the ratio, measured in this run
    pytest benchmarks/bench_synth.py --benchmark-enable
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import time
from collections.abc import Callable

import numpy as np

from cllstr.scripts import get_script
from cllstr.synth.appearance import encode_image
from cllstr.synth.fonts import find_fonts
from cllstr.synth.render import Renderer
from cllstr.synth.styles import get_style
from cllstr.synth.words import WordSampler

TRDG_SCRIPTS = ("LAT", "CHI", "JPN", "KOR", "ARA")
HEIGHT = 32


def words_for(script: str, n: int, seed: int = 0) -> list[str]:
    """``n`` labels of ``script`` from cllstr's sampler (shared by both generators)."""
    sampler = WordSampler(script)
    rng = np.random.default_rng(seed)
    return [sampler.sample(rng) for _ in range(n)]


def cllstr_maker(script: str, words: list[str], setting: str) -> Callable[[int], bytes]:
    clean = get_style("clean")
    styles = {
        "plain": clean,
        "augmented": dataclasses.replace(
            clean, name="trdg-like", backgrounds={"noise": 1.0}, rotation=1.73, blur_prob=1.0, blur_radius=(0.0, 1.0)
        ),
        "real": dataclasses.replace(get_style("real"), name="real32", height=(HEIGHT, HEIGHT)),
    }
    style = styles[setting]
    r = Renderer(script, style, seed=0, words={script: words})

    def make(i: int) -> bytes:
        return encode_image(r(i).image, "jpeg", 90)

    return make


def _patch_trdg() -> None:
    """trdg 1.8.0 uses ``FreeTypeFont.getsize`` (removed in Pillow 10): give it the same number via ``getbbox``."""
    from trdg import computer_text_generator, utils

    def get_text_height(image_font, text: str) -> int:
        return image_font.getbbox(text)[3]

    utils.get_text_height = get_text_height
    computer_text_generator.get_text_height = get_text_height


def trdg_maker(script: str, words: list[str], setting: str) -> Callable[[int], bytes]:
    _patch_trdg()
    from trdg.data_generator import FakeTextDataGenerator

    fonts = [f.path for f in find_fonts(get_script(script))]
    strings = words
    if get_script(script).rtl:
        from arabic_reshaper import ArabicReshaper
        from bidi.algorithm import get_display

        shaper = ArabicReshaper(configuration={"delete_harakat": False})
        strings = [get_display(shaper.reshape(w)) for w in words]  # what trdg's GeneratorFromStrings(rtl=True) does
    plain = setting == "plain"

    def make(i: int) -> bytes:
        img = FakeTextDataGenerator.generate(
            i,
            strings[i % len(strings)],
            fonts[i % len(fonts)],
            None,
            HEIGHT,
            "jpg",
            0 if plain else 3,
            not plain,
            0 if plain else 1,
            not plain,
            1 if plain else 0,
            0,
            0,
            False,
            0,
            -1,
            0,
            "#282828",
            0,
            1.0,
            0,
            (2, 2, 2, 2),
            False,
            False,
            False,
            None,
        )
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    return make


def throughput(make: Callable[[int], bytes], n: int, warmup: int = 10) -> float:
    """Images per second of ``make`` over ``n`` calls (after ``warmup`` calls that load fonts and caches)."""
    for i in range(warmup):
        make(i)
    t0 = time.perf_counter()
    for i in range(n):
        make(i)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="images per (script, setting, generator)")
    ap.add_argument("--scripts", default=",".join(TRDG_SCRIPTS))
    ap.add_argument("--settings", default="plain,augmented,real")
    args = ap.parse_args()
    try:
        import trdg  # noqa: F401
    except ImportError as e:
        raise SystemExit(
            f"trdg is not installed ({e}); `pip install --no-deps trdg opencv-python-headless "
            "arabic-reshaper python-bidi`"
        ) from e
    print(f"{'setting':10s} {'script':6s} {'cllstr img/s':>12s} {'trdg img/s':>10s} {'ratio':>6s}")
    ratios: dict[str, list[float]] = {}
    for setting in args.settings.split(","):
        for script in args.scripts.split(","):
            words = words_for(script, 500)
            ours = throughput(cllstr_maker(script, words, setting), args.n)
            theirs = throughput(trdg_maker(script, words, setting), args.n)
            ratios.setdefault(setting, []).append(ours / theirs)
            print(f"{setting:10s} {script:6s} {ours:12.1f} {theirs:10.1f} {ours / theirs:6.2f}x")
    for setting, r in ratios.items():
        gmean = float(np.exp(np.mean(np.log(r))))
        print(f"{setting}: geometric-mean ratio cllstr/trdg {gmean:.2f}x over {len(r)} scripts")


def test_bench_cllstr_render_lat(benchmark):
    make = cllstr_maker("LAT", words_for("LAT", 100), "augmented")
    benchmark(lambda: [make(i) for i in range(20)])


if __name__ == "__main__":
    main()
