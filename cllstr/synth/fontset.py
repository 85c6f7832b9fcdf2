"""Checked font sets per script: the catalogue's installed families plus a user's ``--font-dir``, sampled by family.

:func:`resolve_fonts` finds the faces of every family of a font set (fontconfig) and of a font folder (grouped by
the family name in each file), runs :func:`~cllstr.synth.fontcheck.check_face` on every face and keeps the families
with at least one accepted face. :meth:`ScriptFonts.pick` draws a family by weight (serif or not first, as the style
asks), then a face of it (bold or not), so sampling is across families, not faces. Everything is sorted, so the same
installed fonts give the same draws for the same generator state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from cllstr.scripts import get_script
from cllstr.synth.catalog import Family, families, get_font_set
from cllstr.synth.fontcheck import FaceCheck, check_face, save_check_cache
from cllstr.synth.fonts import FontFace, FontNotFoundError, _region_rank, fontconfig_faces, scan_font_dir

__all__ = ["FamilyFaces", "ScriptFonts", "resolve_fonts", "describe", "FONT_DIR_SOURCE"]

#: ``FamilyFaces.source`` of a family found in ``--font-dir``.
FONT_DIR_SOURCE = "font-dir"


@dataclass(frozen=True)
class FamilyFaces:
    """The accepted faces of one family.

    Attributes:
        name: Family name.
        source: Debian package of a catalogue family, or :data:`FONT_DIR_SOURCE`.
        serif: Serif / calligraphic design.
        weight: Relative sampling weight.
        faces: Accepted faces, sorted.
    """

    name: str
    source: str
    serif: bool
    weight: float
    faces: tuple[FontFace, ...]


@dataclass(frozen=True)
class ScriptFonts:
    """The font set of one script after the checks.

    Attributes:
        script: Script name.
        font_set: Font set name (``noto``/``small``/``full``) or ``"none"`` for a font folder alone.
        families: Families with at least one accepted face, catalogue order then font-folder families.
        rejected: Checks of the faces that failed.
        missing: Catalogue families of the set that are not installed.
        accepted: Checks of the faces that passed.
    """

    script: str
    font_set: str
    families: tuple[FamilyFaces, ...]
    rejected: tuple[FaceCheck, ...] = ()
    missing: tuple[Family, ...] = ()
    accepted: tuple[FaceCheck, ...] = field(default=(), repr=False)

    @property
    def faces(self) -> list[FontFace]:
        """Every accepted face, family by family."""
        return [f for fam in self.families for f in fam.faces]

    def pick(self, rng: np.random.Generator, serif_prob: float = 0.3, bold_prob: float = 0.4) -> FontFace:
        """Draw a face: serif or not (``serif_prob``, when both kinds exist), a family by weight, bold or not."""
        serif = rng.random() < serif_prob
        bold = rng.random() < bold_prob
        pool = [f for f in self.families if f.serif == serif] or list(self.families)
        w = np.asarray([f.weight for f in pool], dtype=np.float64)
        k = int(np.searchsorted(np.cumsum(w / w.sum()), rng.random(), side="right").clip(0, len(pool) - 1))
        faces = [f for f in pool[k].faces if f.bold == bold] or list(pool[k].faces)
        return faces[int(rng.integers(0, len(faces)))]


def _dir_families(script_name: str, font_dir: str) -> dict[str, list[FontFace]]:
    """Faces of a font folder grouped by family; inside a ``.ttc`` only the face of the script's region is kept."""
    script = get_script(script_name)
    best: dict[tuple[str, str], FontFace] = {}
    for f in sorted(scan_font_dir(font_dir), key=lambda f: (_region_rank(f, script.fonts), f.path, f.index)):
        best.setdefault((f.path, f.style), f)
    out: dict[str, list[FontFace]] = {}
    for f in sorted(best.values(), key=lambda f: (f.family, f.path, f.index)):
        out.setdefault(f.family, []).append(f)
    return out


@functools.lru_cache(maxsize=64)
def resolve_fonts(script_name: str, font_set: str = "full", font_dir: str | None = None) -> ScriptFonts:
    """The checked font set of a script: ``font_set``'s installed catalogue families plus ``font_dir``'s families.

    Args:
        script_name: Script name.
        font_set: ``noto``, ``small``, ``full`` (see :mod:`cllstr.synth.catalog`) or ``none`` (only ``font_dir``).
        font_dir: Folder of user fonts, mixed in as more families (checked the same way).

    Raises:
        KeyError: unknown script or font set.
        FontNotFoundError: no face survived (the message names the set, the folder and the packages to install).
    """
    script = get_script(script_name)
    if font_set != "none":
        get_font_set(font_set)
    elif font_dir is None:
        raise ValueError("font set 'none' needs --font-dir")
    lang = script.fontconfig_lang
    fams: list[FamilyFaces] = []
    accepted: list[FaceCheck] = []
    rejected: list[FaceCheck] = []
    missing: list[Family] = []
    seen: set[tuple[str, int]] = set()

    def add(name: str, source: str, serif: bool, weight: float, faces: list[FontFace]) -> None:
        ok = []
        for face in faces:
            if (face.path, face.index) in seen:
                continue
            seen.add((face.path, face.index))
            res = check_face(face, script.name, language=lang)
            (accepted if res.ok else rejected).append(res)
            if res.ok:
                ok.append(face)
        if ok:
            fams.append(FamilyFaces(name, source, serif, weight, tuple(ok)))

    for fam in families(script.name, font_set) if font_set != "none" else ():
        faces = list(fontconfig_faces(fam.name))
        if not faces:
            missing.append(fam)
            continue
        add(fam.name, fam.package, fam.serif, fam.weight, faces)
    if font_dir is not None:
        for name, faces in _dir_families(script.name, str(font_dir)).items():
            add(name, FONT_DIR_SOURCE, faces[0].serif, 1.0, faces)
    save_check_cache()
    if not fams:
        where = f"font set {font_set!r}" + (f" and --font-dir {str(font_dir)!r}" if font_dir else "")
        pkgs = " ".join(sorted({f.package for f in missing})) or "fonts-noto-core fonts-noto-cjk"
        why = f"; rejected: {rejected[0].face}: {rejected[0].reason}" if rejected else ""
        raise FontNotFoundError(
            f"no usable {script.name} font in {where} (install Debian `{pkgs}` with `make fonts`, or pass a "
            f"--font-dir){why}"
        )
    return ScriptFonts(script.name, font_set, tuple(fams), tuple(rejected), tuple(missing), tuple(accepted))


def describe(sf: ScriptFonts) -> list[str]:
    """Lines for ``cllstr synth fonts``: every family with its faces and coverage, then rejections and missing."""
    cov = {r.face: r for r in sf.accepted}
    lines = [f"{sf.script}: {len(sf.families)} families, {len(sf.faces)} faces (font set {sf.font_set})"]
    for fam in sf.families:
        c = min(cov[f].coverage for f in fam.faces)
        kind = "serif" if fam.serif else "sans"
        styles = ", ".join(sorted({f.style for f in fam.faces}))
        lines.append(f"  {fam.name} [{fam.source}, {kind}, w={fam.weight:g}] {len(fam.faces)} faces, coverage "
                     f">= {c:.1%}: {styles}")
    for r in sf.rejected:
        lines.append(f"  rejected {r.face}: {r.reason}")
    if sf.missing:
        pkgs = sorted({f.package for f in sf.missing})
        lines.append(f"  not installed: {len(sf.missing)} families ({', '.join(f.name for f in sf.missing[:6])}"
                     f"{'...' if len(sf.missing) > 6 else ''}) from {' '.join(pkgs)}")
    return lines
