"""The font catalogue: free font families per script, the Debian package of each, and the font sets built from them.

Scene text comes in hundreds of typefaces; the renderer samples *families* (then a face of the family), so a family
with twelve weights counts as much as one with a single face. Families are named as fontconfig reports them and come
in three tiers:

* ``noto``: the registry's families (``Script.fonts``, Debian ``fonts-noto-core``/``fonts-noto-cjk``/
  ``fonts-dejavu-core``), the engine's font set before the catalogue;
* ``small``: one or two more families per script from small packages (``make fonts`` installs them);
* ``full``: every family below (``make fonts-full``).

A font *set* is a tier and every tier under it. Which families of a set are installed is up to the machine; a missing
family is skipped and listed by ``cllstr synth fonts`` with the package that provides it. Every face is still
checked (:mod:`cllstr.synth.fontcheck`) before use, so a family listed here can be rejected on a machine whose
version of the font shapes wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

from cllstr.scripts import SCRIPT_ORDER, get_script

__all__ = ["Family", "TIERS", "FONT_SETS", "catalog", "families", "packages", "get_font_set"]

TIERS: tuple[str, ...] = ("noto", "small", "full")
#: Font set name -> tiers it includes.
FONT_SETS: dict[str, tuple[str, ...]] = {t: TIERS[: i + 1] for i, t in enumerate(TIERS)}


@dataclass(frozen=True)
class Family:
    """One font family of the catalogue.

    Attributes:
        name: Family name as fontconfig reports it (``fc-list : family``).
        package: Debian package that installs it.
        tier: ``noto``, ``small`` or ``full``.
        serif: Serif / calligraphic / brush design (the styles' ``serif_prob`` applies to these).
        weight: Relative sampling weight of the family (decorative designs are drawn less often).
    """

    name: str
    package: str
    tier: str
    serif: bool = False
    weight: float = 1.0


def _fams(package: str, tier: str, names: str, serif: str = "", rare: str = "") -> list[Family]:
    serifs, rares = set(serif.split("|")) - {""}, set(rare.split("|")) - {""}
    out = []
    for n in names.split("|"):
        out.append(Family(n, package, tier, n in serifs, 0.5 if n in rares else 1.0))
    return out


_ARA = [
    *_fams("fonts-kacst-one", "small", "KacstOne"),
    *_fams("fonts-sil-scheherazade", "full", "Scheherazade", serif="Scheherazade"),
    *_fams("fonts-sil-lateef", "full", "Lateef", serif="Lateef"),
    *_fams("fonts-sil-harmattan", "full", "Harmattan"),
    *_fams("fonts-hosny-amiri", "full", "Amiri", serif="Amiri"),
    *_fams("fonts-hosny-thabit", "full", "Thabit"),
    *_fams("fonts-lemonada", "full", "Lemonada"),
    *_fams("fonts-farsiweb", "full", "Homa|Nazli|Titr", serif="Nazli"),
    *_fams(
        "fonts-kacst", "full",
        "KacstArt|KacstBook|KacstDecorative|KacstDigital|KacstFarsi|KacstLetter|KacstNaskh|KacstOffice|KacstPen|"
        "KacstPoster|KacstQurn|KacstScreen|KacstTitle|KacstTitleL",
        serif="KacstBook|KacstNaskh|KacstQurn|KacstLetter|KacstPen",
        rare="KacstArt|KacstDecorative|KacstDigital|KacstQurn",
    ),
    *_fams(
        "fonts-arabeyes", "full",
        "AlArabiya|AlBattar|AlHor|AlManzomah|AlYarmook|Cortoba|Furat|Granada|Hor|Khalid|Nada|Ouhod|Petra|Salem|"
        "Sindbad|Tarablus",
        serif="Furat|Khalid|Salem|Sindbad",
    ),
    *_fams("fonts-freefont-ttf", "full", "FreeSerif", serif="FreeSerif"),
    *_fams("fonts-dejavu-core", "full", "DejaVu Sans"),
]
_BEN = [
    *_fams("fonts-lohit-beng-bengali", "small", "Lohit Bengali"),
    *_fams("fonts-lohit-beng-assamese", "full", "Lohit Assamese"),
    *_fams("fonts-beng-extra", "full", "Ani|Jamrul|Likhan|Mitra|Mukti", serif="Mitra", rare="Likhan"),
    *_fams("fonts-freefont-ttf", "small", "FreeSans|FreeSerif", serif="FreeSerif"),
]
_HIN = [
    *_fams("fonts-lohit-deva", "small", "Lohit Devanagari"),
    *_fams("fonts-lohit-deva-marathi", "full", "Lohit Marathi"),
    *_fams("fonts-lohit-deva-nepali", "full", "Lohit Nepali"),
    *_fams("fonts-deva-extra", "full", "Chandas|Kalimati|Samanata", serif="Chandas"),
    *_fams("fonts-samyak-deva", "full", "Samyak Devanagari"),
    *_fams("fonts-sarai", "full", "Sarai", rare="Sarai"),
    *_fams("fonts-gargi", "full", "Gargi"),
    *_fams("fonts-nakula", "full", "Nakula"),
    *_fams("fonts-sahadeva", "full", "Sahadeva", serif="Sahadeva"),
    *_fams("fonts-kalapi", "full", "Kalapi", rare="Kalapi"),
    *_fams("fonts-freefont-ttf", "small", "FreeSans|FreeSerif", serif="FreeSerif"),
]
_CHI = [
    *_fams("fonts-wqy-microhei", "small", "WenQuanYi Micro Hei"),
    *_fams("fonts-wqy-zenhei", "full", "WenQuanYi Zen Hei"),
    *_fams("fonts-arphic-uming", "full", "AR PL UMing CN", serif="AR PL UMing CN"),
    *_fams("fonts-arphic-ukai", "full", "AR PL UKai CN", serif="AR PL UKai CN"),
    *_fams("fonts-arphic-gbsn00lp", "full", "AR PL SungtiL GB", serif="AR PL SungtiL GB"),
    *_fams("fonts-arphic-gkai00mp", "full", "AR PL KaitiM GB", serif="AR PL KaitiM GB"),
    *_fams("fonts-droid-fallback", "full", "Droid Sans Fallback"),
]
_JPN = [
    *_fams("fonts-ipafont-gothic", "small", "IPAGothic|IPAPGothic"),
    *_fams("fonts-ipafont-mincho", "full", "IPAMincho", serif="IPAMincho"),
    *_fams("fonts-ipaexfont-gothic", "full", "IPAexGothic"),
    *_fams("fonts-ipaexfont-mincho", "full", "IPAexMincho", serif="IPAexMincho"),
    *_fams("fonts-mplus", "full", "M PLUS 1|M PLUS 2"),
    *_fams("fonts-hanazono", "full", "HanaMinA", serif="HanaMinA"),
    *_fams("fonts-vlgothic", "full", "VL Gothic"),
    *_fams("fonts-motoya-l-cedar", "full", "MotoyaLCedar"),
    *_fams("fonts-motoya-l-maruberi", "full", "MotoyaLMaru"),
    *_fams("fonts-sawarabi-gothic", "full", "Sawarabi Gothic"),
    *_fams("fonts-sawarabi-mincho", "full", "Sawarabi Mincho", serif="Sawarabi Mincho"),
    *_fams("fonts-kouzan-mouhitsu", "full", "KouzanBrushFont", serif="KouzanBrushFont", rare="KouzanBrushFont"),
    *_fams("fonts-seto", "full", "SetoFont", rare="SetoFont"),
    *_fams("fonts-umeplus", "full", "UmePlus Gothic"),
    *_fams("fonts-konatu", "full", "Konatu", rare="Konatu"),
    *_fams("fonts-droid-fallback", "full", "Droid Sans Fallback"),
]
_KOR = [
    *_fams("fonts-nanum", "small", "NanumGothic|NanumMyeongjo", serif="NanumMyeongjo"),
    *_fams("fonts-nanum", "full", "NanumBarunGothic|NanumSquare|NanumSquareRound"),
    *_fams("fonts-nanum-extra", "full", "Nanum Brush Script|Nanum Pen Script|NanumBarunpen",
           serif="Nanum Brush Script", rare="Nanum Brush Script|Nanum Pen Script"),
    *_fams("fonts-baekmuk", "full", "Baekmuk Batang|Baekmuk Dotum|Baekmuk Gulim|Baekmuk Headline",
           serif="Baekmuk Batang"),
    *_fams("fonts-unfonts-core", "full", "UnBatang|UnDinaru|UnDotum|UnGraphic|UnGungseo|UnPilgi",
           serif="UnBatang|UnGungseo", rare="UnPilgi"),
    *_fams("fonts-unfonts-extra", "full", "UnPen|UnPenheulim|UnShinmun|UnTaza|UnVada|UnYetgul", rare="UnPen|UnYetgul"),
    *_fams("fonts-alee", "full", "Bandal|Bangwool|Eunjin|Guseul", rare="Bandal|Bangwool"),
    *_fams("fonts-lexi-gulim", "full", "LexiGulim"),
    *_fams("fonts-lexi-saebom", "full", "LexiSaebomR"),
]
_LAT = [
    *_fams("fonts-liberation2", "small", "Liberation Sans|Liberation Serif", serif="Liberation Serif"),
    *_fams("fonts-freefont-ttf", "small", "FreeSans|FreeSerif", serif="FreeSerif"),
    *_fams("fonts-dejavu-core", "full", "DejaVu Serif", serif="DejaVu Serif"),
    *_fams("fonts-noto-core", "full", "Noto Sans Display|Noto Serif Display", serif="Noto Serif Display"),
    *_fams("fonts-urw-base35", "full", "C059|Nimbus Roman|Nimbus Sans|Nimbus Sans Narrow|P052|URW Bookman|URW Gothic",
           serif="C059|Nimbus Roman|P052|URW Bookman"),
    *_fams("fonts-lato", "full", "Lato"),
    *_fams("fonts-cantarell", "full", "Cantarell"),
    *_fams("fonts-open-sans", "full", "Open Sans|Open Sans Condensed"),
    *_fams("fonts-roboto-unhinted", "full", "Roboto|Roboto Condensed"),
    *_fams("fonts-linuxlibertine", "full", "Linux Libertine O|Linux Biolinum O", serif="Linux Libertine O"),
    *_fams("fonts-crosextra-caladea", "full", "Caladea", serif="Caladea"),
    *_fams("fonts-crosextra-carlito", "full", "Carlito"),
    *_fams("fonts-comfortaa", "full", "Comfortaa"),
    *_fams("fonts-oxygen", "full", "Oxygen-Sans"),
    *_fams("fonts-go", "full", "Go|Go Mono", rare="Go Mono"),
    *_fams("fonts-league-spartan", "full", "League Spartan"),
    *_fams("fonts-quicksand", "full", "Quicksand"),
    *_fams("fonts-lobster", "full", "Lobster Two", serif="Lobster Two", rare="Lobster Two"),
    *_fams("fonts-texgyre", "full", "TeX Gyre Adventor|TeX Gyre Bonum|TeX Gyre Heros|TeX Gyre Pagella|TeX Gyre Schola|"
           "TeX Gyre Termes|TeX Gyre Heros Cn",
           serif="TeX Gyre Bonum|TeX Gyre Pagella|TeX Gyre Schola|TeX Gyre Termes"),
    *_fams("fonts-sil-gentium", "full", "Gentium", serif="Gentium"),
    *_fams("fonts-sil-andika", "full", "Andika"),
    *_fams("fonts-ebgaramond", "full", "EB Garamond", serif="EB Garamond"),
    *_fams("fonts-junicode", "full", "Junicode Two Beta", serif="Junicode Two Beta", rare="Junicode Two Beta"),
    *_fams("fonts-femkeklaver", "full", "femkeklaver", rare="femkeklaver"),
]
_EXTRA: dict[str, list[Family]] = {
    "ARA": _ARA, "BEN": _BEN, "CHI": _CHI, "HIN": _HIN, "JPN": _JPN, "KOR": _KOR, "LAT": _LAT,
}
_NOTO_PACKAGE = {"Noto Sans CJK": "fonts-noto-cjk", "Noto Serif CJK": "fonts-noto-cjk", "DejaVu": "fonts-dejavu-core"}


def _noto(script_name: str) -> list[Family]:
    out = []
    for name in get_script(script_name).fonts:
        pkg = next((p for k, p in _NOTO_PACKAGE.items() if name.startswith(k)), "fonts-noto-core")
        serif = any(k in name for k in ("Serif", "Naskh", "Kufi"))
        out.append(Family(name, pkg, "noto", serif))
    return out


def catalog(script_name: str) -> tuple[Family, ...]:
    """Every family of the catalogue for ``script_name``, ``noto`` tier first.

    Raises:
        KeyError: unknown script.
    """
    name = get_script(script_name).name
    return tuple(_noto(name) + _EXTRA.get(name, []))


def get_font_set(name: str) -> tuple[str, ...]:
    """The tiers of font set ``name``, raising ``KeyError`` that lists the known sets."""
    if name not in FONT_SETS:
        raise KeyError(f"unknown font set {name!r}; known font sets: {', '.join(FONT_SETS)}")
    return FONT_SETS[name]


def families(script_name: str, font_set: str = "full") -> tuple[Family, ...]:
    """The families of ``font_set`` for ``script_name`` (installed or not)."""
    tiers = get_font_set(font_set)
    return tuple(f for f in catalog(script_name) if f.tier in tiers)


def packages(font_set: str = "full", scripts: tuple[str, ...] = SCRIPT_ORDER) -> list[str]:
    """Sorted Debian packages that install ``font_set`` for ``scripts`` (what ``make fonts``/``fonts-full`` install)."""
    return sorted({f.package for s in scripts for f in families(s, font_set)})
