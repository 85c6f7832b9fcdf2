"""Synthetic word-crop throughput: cllstr's renderer vs a bare Pillow renderer (and trdg when installed), same run.

Every generator renders the same samples: sample ``i`` is word ``i`` of a list drawn by cllstr's wordfreq sampler,
in the ``i``-th of the script's font faces (the same Noto files, via fontconfig), 32 px high, encoded to JPEG
(quality 90) in memory. Settings:

* ``plain``: dark text on a flat light background, no effects (cllstr style ``clean``; trdg ``-b 1``, no skew/blur).
* ``augmented``: the same effects everywhere: Gaussian-noise background, random rotation of about +-3 degrees
  (trdg: uniform integer degrees; cllstr and Pillow: normal, sigma 1.73 = the same spread), random blur up to 1 px.
* ``real``: cllstr's full ``real`` style at 32 px (textures, perspective, low-res, noise, JPEG...) against the
  baselines' ``augmented`` setting; cllstr does strictly more work per image here.

Baselines: ``pillow`` is the least a renderer can do for the setting (``ImageDraw.text`` with raqm shaping at the
crop height, pad, rotate, blur, JPEG) — the floor cllstr's extra steps (glyph-coverage check, per-sample RNG,
compositing, padding draws) are measured against. ``trdg`` (TextRecognitionDataGenerator, PyPI) is timed on
throughput only, with the work described above; it draws character by character without a shaper, so Devanagari
and Bengali are left out and Arabic goes through trdg's own ``arabic_reshaper`` + ``python-bidi`` path. trdg 1.8.0
calls ``FreeTypeFont.getsize``, removed in Pillow 10; :func:`_patch_trdg` swaps in ``getbbox(text)[3]``, nothing else.

Fair by construction: one process, one thread for every generator (no pool; torch, if loaded, pinned to 1 thread;
printed). Before timing, the first samples of each generator are decoded and checked: all 32 px high with visible ink,
and a median width within 2x of cllstr's (printed); ``real`` crops may have low contrast by design, so there "visible"
means a grey range of 8 rather than 64. Timed rounds render the same ``--n`` samples with each
generator in rotating order; each round gives a ratio and the script prints the median (at least 3 rounds).

``--engine`` (issue #20) times the whole engine instead, the way ``cllstr synth`` runs it (``Renderer(i)``: word,
family and face draw, glyph check, render, JPEG at the style's quality), one process and one thread, in the same run:
``today`` (style ``real``, font set ``noto``: the engine before the realism work) against ``realistic`` (style
``realistic``, font set ``full``), and with ``--effects`` the realistic style with each effect switched off, to show
what each costs. Rates are images per second of this process's CPU time (``time.process_time``; one thread), i.e.
img/s per core, which stays meaningful on a loaded machine where wall-clock rates do not; the ratio
realistic/today is the median over rounds of the same run. It checks the bar of 400 img/s per core for ``realistic``.

    python benchmarks/bench_synth.py                         # 200 samples x 3 rounds per (setting, script, generator)
    python benchmarks/bench_synth.py --n 500 --rounds 5 --scripts LAT,ARA
    python benchmarks/bench_synth.py --engine --effects --n 300 --scripts ARA,BEN,CHI,HIN,JPN,KOR,LAT
    pytest benchmarks/bench_synth.py --benchmark-enable
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import time
from collections.abc import Callable
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from cllstr.scripts import get_script
from cllstr.synth.appearance import encode_image
from cllstr.synth.fonts import FontFace
from cllstr.synth.render import Renderer
from cllstr.synth.styles import EFFECTS, get_style, without
from cllstr.synth.words import WordSampler

TRDG_SCRIPTS = ("LAT", "CHI", "JPN", "KOR", "ARA")
HEIGHT = 32
ROTATION_SIGMA = 1.73  # degrees: the spread of trdg's uniform integer skew in [-3, 3]
WIDTH_TOL = 2.0  # a baseline's median crop width within this factor of cllstr's
Maker = Callable[[int], bytes]


def words_for(script: str, n: int, seed: int = 0) -> list[str]:
    """``n`` labels of ``script`` from cllstr's sampler (shared by every generator)."""
    sampler = WordSampler(script)
    rng = np.random.default_rng(seed)
    return [sampler.sample(rng) for _ in range(n)]


def faces_for(renderer: Renderer, script: str) -> list[FontFace]:
    """The script's faces as cllstr's renderer finds them, in a fixed order."""
    return sorted(renderer.faces(get_script(script)).faces, key=lambda f: (f.path, f.index))


def cllstr_maker(script: str, words: list[str], setting: str) -> tuple[Maker, list[FontFace]]:
    """Sample ``i``: cllstr's ``Renderer.render`` of word ``i`` in face ``i``; also returns the faces."""
    clean = get_style("clean")
    styles = {
        "plain": clean,
        "augmented": dataclasses.replace(clean, name="trdg-like", backgrounds={"noise": 1.0}, rotation=ROTATION_SIGMA,
                                         blur_prob=1.0, blur_radius=(0.0, 1.0)),
        "real": dataclasses.replace(get_style("real"), name="real32", height=(HEIGHT, HEIGHT)),
    }
    r = Renderer(script, styles[setting], seed=0, words={script: words}, font_set="noto")
    sc, faces = get_script(script), faces_for(r, script)

    def make(i: int) -> bytes:
        img, _ = r.render(words[i % len(words)], sc, faces[i % len(faces)], r.rng(i))
        return encode_image(img, "jpeg", 90)

    return make, faces


@cache
def _font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.RAQM)


def pillow_maker(script: str, words: list[str], setting: str, faces: list[FontFace]) -> Maker:
    """The bare-Pillow baseline for ``setting`` (``real`` gets the ``augmented`` work)."""
    lang = get_script(script).fontconfig_lang
    plain = setting == "plain"

    def make(i: int) -> bytes:
        rng = np.random.default_rng([0, i])
        face, text = faces[i % len(faces)], words[i % len(words)]
        font = _font(face.path, face.index, HEIGHT)
        x0, y0, x1, y1 = font.getbbox(text, language=lang)
        w, h = x1 - x0 + 4, y1 - y0 + 4
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).text((2 - x0, 2 - y0), text, fill=255, font=font, language=lang)
        bg = tuple(int(v) for v in rng.integers(215, 256, 3))
        fg = tuple(int(v) for v in rng.integers(0, 40, 3))
        if plain:
            canvas = Image.new("RGB", (w, h), bg)
        else:
            mask = mask.rotate(float(rng.normal(0.0, ROTATION_SIGMA)), Image.Resampling.BICUBIC, expand=True)
            w, h = mask.size
            noise = rng.normal(0.0, 10.0, (h, w, 1)) + np.asarray(bg, np.float64)
            canvas = Image.fromarray(noise.clip(0, 255).astype(np.uint8))
        canvas.paste(Image.new("RGB", (w, h), fg), (0, 0), mask)
        img = canvas.resize((max(1, round(w * HEIGHT / h)), HEIGHT), Image.Resampling.BILINEAR)
        if not plain:
            img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.0))))
        return encode_image(img, "jpeg", 90)

    return make


def _patch_trdg() -> None:
    """trdg 1.8.0 uses ``FreeTypeFont.getsize`` (removed in Pillow 10): give it the same number via ``getbbox``."""
    from trdg import computer_text_generator, utils

    def get_text_height(image_font, text: str) -> int:
        return image_font.getbbox(text)[3]

    utils.get_text_height = get_text_height
    computer_text_generator.get_text_height = get_text_height


def trdg_maker(script: str, words: list[str], setting: str, faces: list[FontFace]) -> Maker:
    """trdg's ``FakeTextDataGenerator.generate`` for ``setting`` (``real`` gets ``augmented``), JPEG 90."""
    _patch_trdg()
    from trdg.data_generator import FakeTextDataGenerator

    fonts = [f.path for f in faces]
    strings = words
    if get_script(script).rtl:
        from arabic_reshaper import ArabicReshaper
        from bidi.algorithm import get_display

        shaper = ArabicReshaper(configuration={"delete_harakat": False})
        strings = [get_display(shaper.reshape(w)) for w in words]  # what trdg's GeneratorFromStrings(rtl=True) does
    plain = setting == "plain"

    def make(i: int) -> bytes:
        img = FakeTextDataGenerator.generate(
            i, strings[i % len(strings)], fonts[i % len(fonts)], None, HEIGHT, "jpg",
            0 if plain else 3, not plain, 0 if plain else 1, not plain, 1 if plain else 0,
            0, 0, False, 0, -1, 0, "#282828", 0, 1.0, 0, (2, 2, 2, 2), False, False, False, None,
        )
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    return make


def check_samples(makers: dict[str, Maker], k: int, min_contrast: int) -> str:
    """Exit unless every generator's first ``k`` samples are ``HEIGHT`` px high with ink (grey range at least
    ``min_contrast``) and of comparable width; returns the median widths."""
    widths = {}
    for name, make in makers.items():
        ws = []
        for i in range(k):
            a = np.asarray(Image.open(io.BytesIO(make(i))).convert("L"))
            if a.shape[0] != HEIGHT or int(a.max()) - int(a.min()) < min_contrast:
                raise SystemExit(f"{name} sample {i}: {a.shape[1]}x{a.shape[0]}, contrast {int(a.max()) - int(a.min())}"
                                 f" (want {HEIGHT} px high with visible ink)")
            ws.append(a.shape[1])
        widths[name] = statistics.median(ws)
    base = widths["cllstr"]
    for name, w in widths.items():
        if not base / WIDTH_TOL <= w <= base * WIDTH_TOL:
            raise SystemExit(f"{name}: median width {w} px, cllstr's {base} px (tolerance {WIDTH_TOL}x)")
    return ", ".join(f"{name} {w:.0f}" for name, w in widths.items())


def compare(makers: dict[str, Maker], n: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Images/s of each maker over ``rounds`` rounds of the same ``n`` samples, rotating order, and the median
    per-round ratio of cllstr to each."""
    names = list(makers)
    totals = {name: [0, 0.0] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        ips = {}
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            for i in range(n):
                makers[name](i)
            sec = time.perf_counter() - t0
            totals[name][0] += n
            totals[name][1] += sec
            ips[name] = n / sec
        for name in names:
            ratios[name].append(ips["cllstr"] / ips[name])
    return {name: (totals[name][0] / totals[name][1], statistics.median(ratios[name])) for name in names}


REALISTIC_BAR = 400.0  # img/s per core with the realistic style (issue #20)


def engine_makers(script: str, effects: bool, with_trdg: bool) -> dict[str, Maker]:
    """Whole-engine generators (``Renderer(i)`` + JPEG at the drawn quality): today's vs the realistic engine, and
    trdg's ``augmented`` setting on today's faces when trdg is importable (not for BEN/HIN: trdg does not shape)."""
    configs = {"today": ("real", "noto"), "realistic": ("realistic", "full")}
    makers: dict[str, Maker] = {}
    for name, (style, font_set) in configs.items():
        makers[name] = _engine(Renderer(script, style, seed=0, font_set=font_set))
    if with_trdg and script in TRDG_SCRIPTS:
        faces = faces_for(Renderer(script, "real", font_set="noto"), script)
        makers["trdg"] = trdg_maker(script, words_for(script, 500), "augmented", faces)
    if effects:
        for e in EFFECTS:
            makers[f"-{e}"] = _engine(Renderer(script, without(get_style("realistic"), e), seed=0, font_set="full"))
    return makers


def _engine(r: Renderer) -> Maker:
    from cllstr.synth.fonts import face_cmap

    for script in r.scripts:  # one-off per process (what a long run amortises): read every face's cmap
        for f in r.faces(script).faces:
            face_cmap(f.path, f.index)

    def make(i: int) -> bytes:
        s = r(i)
        return encode_image(s.image, "jpeg", s.quality)

    return make


def engine_main(args: argparse.Namespace) -> None:
    """``--engine``: realistic vs today's engine per script, same run, 1 thread; exits 1 below the bar."""
    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"engine mode: 1 process, 1 thread; {args.n} samples x {args.rounds} rounds per generator, rotating order; "
          f"load average at start {load[0]:.2f} on {os.cpu_count()} cores" if load else "")
    try:
        import trdg  # noqa: F401

        with_trdg = True
    except ImportError as e:
        with_trdg = False
        print(f"trdg is not importable ({e}): no trdg column")
    slow = []
    for script in args.scripts.split(","):
        makers = engine_makers(script, args.effects, with_trdg)
        for make in makers.values():  # warm-up: fonts, font checks, word lists
            for i in range(10):
                make(i)
        names = list(makers)
        secs = {n: 0.0 for n in names}
        ratio: list[float] = []
        for r in range(args.rounds):
            ips = {}
            for name in names[r % len(names) :] + names[: r % len(names)]:
                # CPU time of this (single-threaded) process: img/s per core even on a shared, loaded machine.
                t0 = time.process_time()
                for i in range(args.n):
                    makers[name](r * args.n + i)
                dt = time.process_time() - t0
                secs[name] += dt
                ips[name] = args.n / dt
            ratio.append(ips["realistic"] / ips["today"])
        rate = {n: args.n * args.rounds / secs[n] for n in names}
        extra = "".join(f"  {n} {rate[n]:.0f}" for n in names[2:])
        if "trdg" in rate:
            extra += f" (realistic x{rate['realistic'] / rate['trdg']:.2f} of trdg)"
        print(f"{script}: today {rate['today']:.0f} img/s, realistic {rate['realistic']:.0f} img/s "
              f"(x{statistics.median(ratio):.2f} of today, median of rounds){extra}", flush=True)
        if rate["realistic"] < REALISTIC_BAR:
            slow.append(script)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"load average at end {load[0]:.2f}" if load else "")
    if slow:
        print(f"below {REALISTIC_BAR:.0f} img/s per core with the realistic style: {', '.join(slow)}")
        raise SystemExit(1)
    print(f"realistic style >= {REALISTIC_BAR:.0f} img/s per core for every script")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="samples per round and (setting, script, generator)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (each generator renders --n per round)")
    ap.add_argument("--scripts", default=",".join(TRDG_SCRIPTS))
    ap.add_argument("--settings", default="plain,augmented,real")
    ap.add_argument("--engine", action="store_true", help="time the whole engine: realistic vs today's (issue #20)")
    ap.add_argument("--effects", action="store_true", help="with --engine: also realistic minus each effect")
    args = ap.parse_args()
    if args.engine:
        if args.rounds < 3:
            ap.error("--rounds must be at least 3 (the ratio is a median)")
        engine_main(args)
        return
    if args.rounds < 3:
        ap.error("--rounds must be at least 3 (the ratio is a median)")
    torch_threads = "torch not loaded"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
        torch_threads = f"torch threads {sys.modules['torch'].get_num_threads()}"
    try:
        import trdg  # noqa: F401

        has_trdg = True
    except ImportError as e:
        has_trdg = False
        print(f"trdg is not installed ({e}): timing cllstr against the Pillow baseline only")
    print(f"threads: 1 process, 1 thread for every generator (no pool; {torch_threads}); {HEIGHT} px, JPEG 90; "
          f"{args.n} samples x {args.rounds} rounds per generator; ratios are cllstr/baseline, medians of rounds")
    gens = ["cllstr", "pillow"] + (["trdg"] if has_trdg else [])
    head = "".join(f"{g + ' img/s':>14s}" for g in gens) + "".join(f"{'x ' + g:>10s}" for g in gens[1:])
    print(f"{'setting':10s} {'script':6s}{head}   median widths (px)")
    ratios: dict[tuple[str, str], list[float]] = {}
    for setting in args.settings.split(","):
        for script in args.scripts.split(","):
            words = words_for(script, 500)
            ours, faces = cllstr_maker(script, words, setting)
            makers = {"cllstr": ours, "pillow": pillow_maker(script, words, setting, faces)}
            if has_trdg:
                makers["trdg"] = trdg_maker(script, words, setting, faces)
            # Also the warm-up: fonts and caches load here.
            widths = check_samples(makers, min(args.n, 20), 8 if setting == "real" else 64)
            res = compare(makers, args.n, args.rounds)
            row = "".join(f"{res[g][0]:14.1f}" for g in gens) + "".join(f"{res[g][1]:9.2f}x" for g in gens[1:])
            print(f"{setting:10s} {script:6s}{row}   {widths}", flush=True)
            for g in gens[1:]:
                ratios.setdefault((setting, g), []).append(res[g][1])
    for (setting, g), r in ratios.items():
        gmean = float(np.exp(np.mean(np.log(r))))
        print(f"{setting}: geometric-mean ratio cllstr/{g} {gmean:.2f}x over {len(r)} scripts (1 thread each)")


def test_bench_cllstr_render_lat(benchmark):
    make, _ = cllstr_maker("LAT", words_for("LAT", 100), "augmented")
    benchmark(lambda: [make(i) for i in range(20)])


if __name__ == "__main__":
    main()
