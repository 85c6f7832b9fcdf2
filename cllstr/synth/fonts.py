"""Font discovery and glyph coverage for the synthetic renderer.

Fonts are found through fontconfig (``fc-list``) by the family names of the script registry, or by scanning a user
folder (``--font-dir``). Every face is addressed as ``(file, index)`` so the right face of a ``.ttc`` collection is
used per language (``Noto Sans CJK`` holds JP/KR/SC/TC/HK faces in one file). Coverage comes from the face's cmap
(:mod:`cllstr.synth.cmap`, fontTools as the fallback), so a word whose characters the face lacks is rejected before
rendering: no tofu boxes in the data.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont, features

from cllstr.scripts import Script
from cllstr.synth.cmap import read_cmap

__all__ = [
    "FontFace",
    "RaqmMissingError",
    "FontNotFoundError",
    "require_raqm",
    "find_fonts",
    "fontconfig_faces",
    "scan_font_dir",
    "face_cmap",
    "missing_glyphs",
    "load_font",
    "faces_covering",
]

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


class RaqmMissingError(RuntimeError):
    """Pillow was built without libraqm, so complex scripts would be rendered unshaped (wrong)."""


class FontNotFoundError(FileNotFoundError):
    """No usable font face was found for a script."""


@dataclass(frozen=True)
class FontFace:
    """One face of a font file.

    Attributes:
        path: Font file (``.ttf``/``.otf``/``.ttc``).
        index: Face index inside a collection (0 for single-face files).
        family: Family name as fontconfig or the ``name`` table reports it.
        style: Style name (``Regular``, ``Bold``...).
    """

    path: str
    index: int
    family: str
    style: str = "Regular"

    @property
    def bold(self) -> bool:
        """Whether the style is bold or heavier."""
        s = self.style.lower()
        return any(k in s for k in ("bold", "black", "heavy"))

    @property
    def serif(self) -> bool:
        """Whether the family is a serif / calligraphic design (used by the style profiles)."""
        f = self.family.lower()
        return any(k in f for k in ("serif", "naskh", "kufi"))

    def __str__(self) -> str:
        return f"{self.family} {self.style} ({Path(self.path).name}#{self.index})"


def require_raqm() -> None:
    """Raise :class:`RaqmMissingError` unless Pillow can shape text with libraqm."""
    if not features.check("raqm"):
        raise RaqmMissingError(
            "Pillow has no libraqm support, so Arabic joining/right-to-left and Indic conjuncts cannot be shaped. "
            "Install libraqm (Debian: `apt-get install libraqm0`, conda: `conda install libraqm`) and reinstall "
            "Pillow, then check with `python -c \"from PIL import features; print(features.check('raqm'))\"`."
        )


def _run_fc_list(pattern: str = "") -> list[str]:
    exe = shutil.which("fc-list")
    if exe is None:
        return []
    fmt = "%{file}\\t%{index}\\t%{family}\\t%{style}\\n"
    try:
        args = [exe, "--format", fmt] + ([pattern] if pattern else [])
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in out.stdout.splitlines() if line.strip()]


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


@functools.lru_cache(maxsize=1)
def _fontconfig_index() -> dict[str, tuple[FontFace, ...]]:
    """Every face fontconfig knows, by each of its family names (one ``fc-list`` call per process)."""
    index: dict[str, set[FontFace]] = {}
    for line in _run_fc_list():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[0].lower().endswith(FONT_SUFFIXES):
            continue
        # fc-list escapes '-', ',' and ':' in names with a backslash ("Oxygen\\-Sans"): split on bare commas only.
        style = _unescape(re.split(r"(?<!\\),", parts[3])[0]).strip() or "Regular"
        for family in {_unescape(f).strip() for f in re.split(r"(?<!\\),", parts[2]) if f.strip()}:
            index.setdefault(family, set()).add(FontFace(parts[0], int(parts[1] or 0), family, style))
    return {k: tuple(sorted(v, key=lambda f: (f.path, f.index))) for k, v in index.items()}


def fontconfig_faces(family: str) -> tuple[FontFace, ...]:
    """All faces fontconfig knows for exactly ``family`` (one of a face's family names), sorted, deduplicated."""
    return _fontconfig_index().get(family, ())


def _face_names(path: Path) -> list[tuple[int, str, str]]:
    """``(index, family, style)`` of every face in a font file, read with fontTools."""
    from fontTools.ttLib import TTCollection, TTFont

    def names(font: TTFont) -> tuple[str, str]:
        table = font["name"]
        family = table.getDebugName(16) or table.getDebugName(1) or path.stem
        style = table.getDebugName(17) or table.getDebugName(2) or "Regular"
        return family, style

    if path.suffix.lower() in (".ttc", ".otc"):
        with TTCollection(str(path), lazy=True) as coll:
            return [(i, *names(f)) for i, f in enumerate(coll.fonts)]
    with TTFont(str(path), lazy=True) as font:
        return [(0, *names(font))]


@functools.lru_cache(maxsize=16)
def scan_font_dir(font_dir: str) -> tuple[FontFace, ...]:
    """Every face of every font file under ``font_dir`` (recursively).

    Raises:
        FontNotFoundError: ``font_dir`` does not exist or holds no font file.
    """
    root = Path(font_dir)
    if not root.is_dir():
        raise FontNotFoundError(f"--font-dir {font_dir!r} is not a directory")
    faces = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in FONT_SUFFIXES:
            continue
        try:
            faces.extend(FontFace(str(p), i, fam, sty) for i, fam, sty in _face_names(p))
        except Exception as exc:  # noqa: BLE001 - a broken file must not stop the scan; it is reported instead
            raise FontNotFoundError(f"cannot read font file {p}: {exc}") from exc
    if not faces:
        raise FontNotFoundError(f"--font-dir {font_dir!r} holds no {'/'.join(FONT_SUFFIXES)} file")
    return tuple(faces)


@functools.lru_cache(maxsize=2048)  # a font set holds hundreds of faces: each cmap is read once per process
def face_cmap(path: str, index: int = 0) -> frozenset[int]:
    """Code points the face maps to a real glyph (its best Unicode cmap, ``.notdef`` entries left out)."""
    from fontTools.ttLib import TTFont

    fast = read_cmap(path, index)  # the cmap table alone; fontTools (glyph names and all) when it cannot tell
    if fast is not None:
        return fast
    with TTFont(path, fontNumber=index, lazy=True) as font:
        cmap = font.getBestCmap() or {}
    # A code point mapped to .notdef draws the tofu box: it is not covered.
    return frozenset(cp for cp, glyph in cmap.items() if glyph != ".notdef")


def _needs_glyph(ch: str) -> bool:
    # Format controls (ZWJ/ZWNJ, bidi marks) and spaces are consumed by the shaper and need no visible glyph.
    return not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc")


def missing_glyphs(text: str, face: FontFace) -> set[str]:
    """Characters of ``text`` that ``face`` cannot draw (empty set: fully covered)."""
    cmap = face_cmap(face.path, face.index)
    return {ch for ch in text if _needs_glyph(ch) and ord(ch) not in cmap}


def _probe_coverage(face: FontFace, probe: str) -> float:
    chars = [c for c in set(probe) if _needs_glyph(c)]
    if not chars:
        return 0.0
    cmap = face_cmap(face.path, face.index)
    return sum(ord(c) in cmap for c in chars) / len(chars)


def _region_rank(face: FontFace, families: Sequence[str]) -> int:
    # A collection face whose family is one of the script's preferred families ranks first (CJK SC for CHI...).
    for rank, fam in enumerate(families):
        if face.family == fam or fam.split()[-1] in face.family.split():
            return rank
    return len(families)


def find_fonts(
    script: Script,
    font_dir: str | Path | None = None,
    *,
    probe: str = "",
    min_coverage: float = 0.9,
) -> list[FontFace]:
    """Faces able to render ``script``, best first.

    With ``font_dir`` the folder is scanned and every face covering at least ``min_coverage`` of ``probe`` (sample
    text of the script, e.g. frequent words) is kept; inside a ``.ttc`` the face of the script's region (``CJK SC``
    for CHI, ``CJK JP`` for JPN...) is preferred and the other regional faces of the same file are dropped. Without it
    fontconfig is asked for the registry's families (``Script.fonts``).

    Raises:
        FontNotFoundError: nothing usable was found; the message names the families or the folder searched.
    """
    if font_dir is not None:
        faces = [f for f in scan_font_dir(str(font_dir)) if not probe or _probe_coverage(f, probe) >= min_coverage]
        best_per_file: dict[tuple[str, str], FontFace] = {}
        for f in sorted(faces, key=lambda f: (_region_rank(f, script.fonts), f.index)):
            best_per_file.setdefault((f.path, f.style), f)
        found = sorted(best_per_file.values(), key=lambda f: (_region_rank(f, script.fonts), f.path))
        if not found:
            raise FontNotFoundError(
                f"no font in --font-dir {str(font_dir)!r} covers {min_coverage:.0%} of the {script.name} sample text"
            )
        return found
    found = [face for fam in script.fonts for face in fontconfig_faces(fam)]
    if not found:
        hint = "fonts-noto-cjk" if script.name in ("CHI", "JPN", "KOR") else "fonts-noto-core"
        raise FontNotFoundError(
            f"no font for {script.name}: fontconfig knows none of {', '.join(script.fonts)} "
            f"(install Debian `{hint}` or pass --font-dir)"
        )
    return found


@functools.lru_cache(maxsize=512)
def load_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    """A raqm-layout ``FreeTypeFont``, cached per process by ``(file, face index, pixel size)``."""
    return ImageFont.truetype(path, size=size, index=index, layout_engine=ImageFont.Layout.RAQM)


def faces_covering(text: str, faces: Iterable[FontFace]) -> list[FontFace]:
    """The faces of ``faces`` that can draw every character of ``text``."""
    return [f for f in faces if not missing_glyphs(text, f)]
