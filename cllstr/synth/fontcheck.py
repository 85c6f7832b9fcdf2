"""Automatic acceptance checks of a font face for a script: frequent-character coverage, visible glyphs, shaping.

A face enters the renderer's font set only if it passes all three, so no face is trusted by eye:

* **coverage**: the share of the script's character *mass* (characters weighted by how often the word sampler
  draws them, see :func:`frequent_chars`) that the face's cmap maps to a real glyph (not ``.notdef``);
* **ink**: the most frequent characters draw visible ink (some fonts map code points to empty glyphs);
* **shaping** (scripts in :data:`SHAPING_PROBES`): probe words whose correct rendering needs contextual shaping
  (Arabic joining, Indic conjuncts and half forms) are drawn twice with raqm: as one run, and as the concatenation
  of their pieces drawn one by one at their advances (in visual order). A face that shapes leaves the two clearly
  different (joined forms, ligatures); a face without working ``GSUB`` tables draws the same isolated glyphs both
  ways. Indic probes are also compared with their consonants drawn without the virama (a face that hides the
  virama but forms no conjunct draws "क" + "ष" for "क्ष"), and conjuncts that are ligatures or stacks must come out
  narrower than their consonants side by side (:data:`NARROW`). The face passes when most probes differ from every
  unshaped drawing (ink IoU below :data:`SAME_IOU`) and narrow where they should.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cllstr.synth.fonts import FontFace, face_cmap, load_font

__all__ = [
    "FaceCheck",
    "SHAPING_PROBES",
    "NARROW",
    "SAME_IOU",
    "CHECK_VERSION",
    "frequent_chars",
    "coverage",
    "shaping_score",
    "check_face",
    "save_check_cache",
]

#: Probe words per script, cut into the pieces drawn separately (each piece one shaping cluster without its
#: context: single Arabic letters; Indic consonant + virama, then the next consonant), and whether the correct
#: conjunct is a ligature or stack clearly narrower than its consonants side by side (:data:`NARROW`); Devanagari
#: half forms (स्त, न्द) are not.
SHAPING_PROBES: dict[str, tuple[tuple[tuple[str, ...], bool], ...]] = {
    "ARA": tuple(
        (tuple(w), False) for w in ("سلام", "محمد", "عربي", "كتاب", "بيت")
    ),
    "HIN": ((("क्", "ष"), True), (("स्", "त"), False), (("प्", "र"), True), (("द्", "ध"), True), (("न्", "द"), False)),
    "BEN": ((("ক্", "ষ"), True), (("ন্", "ত"), True), (("স্", "ত"), True), (("ক্", "ত"), True), (("প্", "র"), True)),
}
#: A narrowing conjunct's ink width over the summed advances of its consonants must stay below this.
NARROW = 0.82
#: Ink IoU at or above which the run and its concatenated pieces count as the same drawing (no shaping happened).
SAME_IOU = 0.9
#: Bumped whenever a check changes, so cached results of an older check are not reused.
CHECK_VERSION = 3
_PROBE_SIZE = 40
_VIRAMAS = "\u094d\u09cd"
_INK_CHARS = 24


@dataclass(frozen=True)
class FaceCheck:
    """Outcome of :func:`check_face`.

    Attributes:
        face: The face checked.
        coverage: Share of the script's frequent-character mass the face can draw (0..1).
        shaping: Share of shaping probes that came out shaped (1.0 for scripts without probes).
        ok: The face passed every check.
        reason: Why it was rejected (empty when ``ok``).
    """

    face: FontFace
    coverage: float
    shaping: float
    ok: bool
    reason: str = ""


@functools.lru_cache(maxsize=16)
def frequent_chars(script_name: str, mass: float = 0.995) -> tuple[tuple[str, float], ...]:
    """The script's characters that make up ``mass`` of the sampler's character distribution, with their weights.

    Characters are counted over the vocabulary with the word sampler's Zipf weights (what the renderer draws),
    plus the script's punctuation and native digits at a small weight; weights sum to 1 over the returned set.
    """
    from cllstr.synth.fonts import _needs_glyph
    from cllstr.synth.words import TEXT_RULES, TextRules, WordSampler

    sampler = WordSampler(script_name)
    counts: Counter[str] = Counter()
    for word, p in zip(sampler.words, sampler.probabilities, strict=True):
        for ch in word:
            if _needs_glyph(ch):
                counts[ch] += float(p)
    total = sum(counts.values())
    rules = TEXT_RULES.get(script_name, TextRules())
    for ch in rules.native_digits + "0123456789":
        counts[ch] += 0.002 * total
    total = sum(counts.values())
    out, acc = [], 0.0
    for ch, c in counts.most_common():
        out.append((ch, c / total))
        acc += c / total
        if acc >= mass:
            break
    s = sum(p for _, p in out)
    return tuple((ch, p / s) for ch, p in out)


def coverage(face: FontFace, chars: tuple[tuple[str, float], ...]) -> float:
    """Weighted share of ``chars`` (``(char, weight)`` pairs) the face maps to a glyph."""
    cmap = face_cmap(face.path, face.index)
    return float(sum(p for ch, p in chars if ord(ch) in cmap))


def _ink(draw_fn, width: int, height: int) -> np.ndarray:
    img = Image.new("L", (width, height), 0)
    draw_fn(ImageDraw.Draw(img))
    return np.asarray(img) > 96


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def shaping_score(face: FontFace, script_name: str, language: str | None = None) -> float:
    """Share of the script's shaping probes that ``face`` draws differently as a run than as separate pieces.

    1.0 for scripts without probes. Pieces are placed at their raqm advances, in visual order (right to left for
    Arabic), on the same baseline as the run, so a face whose shaping does nothing draws the same pixels twice.
    """
    probes = SHAPING_PROBES.get(script_name)
    if not probes:
        return 1.0
    font = load_font(face.path, face.index, _PROBE_SIZE)
    rtl = script_name == "ARA"
    shaped = 0
    origin = (2 * _PROBE_SIZE, 2 * _PROBE_SIZE)
    for pieces, narrows in probes:
        word = "".join(pieces)
        width = int(sum(font.getlength(p, language=language) for p in pieces) * 1.5) + 4 * _PROBE_SIZE
        height = 3 * _PROBE_SIZE

        def run(d: ImageDraw.ImageDraw, word: str = word) -> None:
            d.text(origin, word, fill=255, font=font, anchor="ls", language=language)

        def parts(d: ImageDraw.ImageDraw, pieces: tuple[str, ...] = pieces) -> None:
            x = float(origin[0])
            for p in reversed(pieces) if rtl else pieces:
                d.text((x, origin[1]), p, fill=255, font=font, anchor="ls", language=language)
                x += font.getlength(p, language=language)

        variants = [pieces]
        stripped = tuple(p.strip(_VIRAMAS) for p in pieces)
        if stripped != pieces:
            variants.append(stripped)
        a = _ink(run, width, height)
        if not a.any() or any(_iou(a, _ink(lambda d, v=v: parts(d, v), width, height)) >= SAME_IOU for v in variants):
            continue
        if narrows:
            cols = np.flatnonzero(a.any(axis=0))
            consonants = sum(font.getlength(p, language=language) for p in stripped)
            if (cols[-1] - cols[0] + 1) >= NARROW * consonants:
                continue
        shaped += 1
    return shaped / len(probes)


def _blank_chars(face: FontFace, chars: list[str]) -> list[str]:
    font = load_font(face.path, face.index, _PROBE_SIZE)
    return [ch for ch in chars if font.getmask(ch).getbbox() is None]


def _cache_path() -> Path:
    root = os.environ.get("CLLSTR_CACHE_DIR") or Path.home() / ".cache" / "cllstr"
    return Path(root) / f"fontcheck-v{CHECK_VERSION}.json"


@functools.cache
def _disk_cache() -> dict[str, list]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


_DIRTY: list[bool] = [False]


def save_check_cache() -> None:
    """Write new check results to ``$CLLSTR_CACHE_DIR/fontcheck-v<N>.json`` (default ``~/.cache/cllstr``).

    Entries are keyed by file path, face index, size and modification time, script and threshold, so an updated
    font file is checked again. A cache that cannot be written is skipped silently (the checks just run again).
    """
    if not _DIRTY[0]:
        return
    from cllstr.atomic import atomic_write_json

    try:
        _cache_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(_cache_path(), _disk_cache())
        _DIRTY[0] = False
    except OSError:
        pass


@functools.lru_cache(maxsize=4096)
def check_face(face: FontFace, script_name: str, min_coverage: float = 0.98, language: str | None = None) -> FaceCheck:
    """Run the coverage, ink and shaping checks of ``face`` for ``script_name`` (cached per process and on disk)."""
    try:
        st = os.stat(face.path)
        key = f"{face.path}|{face.index}|{st.st_size}|{st.st_mtime_ns}|{script_name}|{min_coverage}|{language}"
    except OSError:
        key = None
    cache = _disk_cache()
    if key is not None and key in cache:
        cov, shp, ok, reason = cache[key]
        return FaceCheck(face, cov, shp, ok, reason)
    res = _check_face(face, script_name, min_coverage, language)
    if key is not None:
        cache[key] = [res.coverage, res.shaping, res.ok, res.reason]
        _DIRTY[0] = True
    return res


def _check_face(face: FontFace, script_name: str, min_coverage: float, language: str | None) -> FaceCheck:
    chars = frequent_chars(script_name)
    try:
        cov = coverage(face, chars)
        if cov < min_coverage:
            return FaceCheck(face, cov, 0.0, False, f"covers {cov:.1%} of frequent characters (< {min_coverage:.0%})")
        cmap = face_cmap(face.path, face.index)
        top = [ch for ch, _ in chars if ord(ch) in cmap][:_INK_CHARS]
        blank = _blank_chars(face, top)
        if blank:
            return FaceCheck(face, cov, 0.0, False, f"draws no ink for {''.join(blank[:8])!r}")
        shp = shaping_score(face, script_name, language)
    except OSError as exc:  # unreadable or unsupported font file: reported, not fatal
        return FaceCheck(face, 0.0, 0.0, False, f"cannot load: {exc}")
    if shp < 0.6:
        return FaceCheck(face, cov, shp, False, f"shaping: only {shp:.0%} of joining/conjunct probes shaped")
    return FaceCheck(face, cov, shp, True)
