"""The one table of scripts (languages) cllstr knows about.

Every other module asks this registry: the data-mixing spec parser (one-letter codes of the reference select-data
strings such as ``lang_CBHJAKL``), the synthetic renderer (fonts, word-list languages, direction), the charset
builder (Unicode ranges) and the evaluation tables (column order).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "Script",
    "SCRIPTS",
    "SCRIPT_ORDER",
    "get_script",
    "script_by_letter",
    "list_scripts",
    "register_script",
    "guess_script",
    "is_rtl",
]


@dataclass(frozen=True)
class Script:
    """One script / language group of a multilingual STR study.

    Attributes:
        name: Upper-case three-letter name used as folder name in the reference layout (``ARA``, ``LAT``...).
        letter: One-letter code of the reference select-data strings (``A`` in ``lang_CBHJAKL``).
        title: Human-readable name.
        ranges: Inclusive Unicode code-point ranges whose characters belong to the script.
        fonts: Default font families (fontconfig names), best first, with the face index to use inside ``.ttc``
            collections resolved by family name at run time.
        fontconfig_lang: Language tag for fontconfig queries (``fc-list :lang=ar``).
        wordfreq_langs: wordfreq language codes whose word lists feed the synthetic engine.
        rtl: Written right to left (labels are stored in logical order regardless).
        grapheme_tokens: The reference code stores labels of this script as tab-joined grapheme clusters.
    """

    name: str
    letter: str
    title: str
    ranges: tuple[tuple[int, int], ...]
    fonts: tuple[str, ...]
    fontconfig_lang: str
    wordfreq_langs: tuple[str, ...]
    rtl: bool = False
    grapheme_tokens: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def contains(self, ch: str) -> bool:
        """Whether the character ``ch`` lies in one of this script's Unicode ranges."""
        cp = ord(ch)
        return any(lo <= cp <= hi for lo, hi in self.ranges)

    def coverage(self, text: str) -> float:
        """Fraction of letters (category L*/M*) of ``text`` that belong to this script; 0 for no letters."""
        letters = [c for c in text if unicodedata.category(c)[0] in "LM"]
        if not letters:
            return 0.0
        return sum(self.contains(c) for c in letters) / len(letters)


_CJK_UNIFIED = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF))
_CJK_PUNCT = ((0x3000, 0x303F), (0xFF00, 0xFFEF))

SCRIPTS: dict[str, Script] = {}


def register_script(script: Script) -> Script:
    """Add ``script`` to the registry; names and letters must be unique."""
    if script.name in SCRIPTS:
        raise ValueError(f"script {script.name!r} is already registered")
    if any(s.letter == script.letter for s in SCRIPTS.values()):
        raise ValueError(f"script letter {script.letter!r} is already used")
    SCRIPTS[script.name] = script
    return script


for _s in (
    Script(
        "ARA", "A", "Arabic",
        ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
        ("Noto Sans Arabic", "Noto Naskh Arabic", "Noto Kufi Arabic", "Noto Sans Arabic UI"),
        "ar", ("ar",), rtl=True, grapheme_tokens=True,
    ),
    Script(
        "BEN", "B", "Bengali", ((0x0980, 0x09FF),),
        ("Noto Sans Bengali", "Noto Serif Bengali", "Noto Sans Bengali UI"),
        "bn", ("bn",), grapheme_tokens=True,
    ),
    Script(
        "CHI", "C", "Chinese", _CJK_UNIFIED + _CJK_PUNCT,
        ("Noto Sans CJK SC", "Noto Serif CJK SC"),
        "zh-cn", ("zh",),
    ),
    Script(
        "HIN", "H", "Hindi (Devanagari)", ((0x0900, 0x097F), (0xA8E0, 0xA8FF)),
        ("Noto Sans Devanagari", "Noto Serif Devanagari", "Noto Sans Devanagari UI"),
        "hi", ("hi",), grapheme_tokens=True,
    ),
    Script(
        "JPN", "J", "Japanese", ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF)) + _CJK_UNIFIED + _CJK_PUNCT,
        ("Noto Sans CJK JP", "Noto Serif CJK JP"),
        "ja", ("ja",),
    ),
    Script(
        "KOR", "K", "Korean", ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)) + _CJK_PUNCT,
        ("Noto Sans CJK KR", "Noto Serif CJK KR"),
        "ko", ("ko",),
    ),
    Script(
        "LAT", "L", "Latin", ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F), (0x1E00, 0x1EFF)),
        ("Noto Sans", "Noto Serif", "DejaVu Sans"),
        "en", ("en", "fr", "de", "it"),
    ),
):
    register_script(_s)

#: Column order of every per-language table (the order of the paper's tables).
SCRIPT_ORDER: tuple[str, ...] = ("ARA", "BEN", "CHI", "HIN", "JPN", "KOR", "LAT")


def list_scripts() -> list[str]:
    """Names of all registered scripts, in table order first, then any user-registered ones."""
    rest = [n for n in SCRIPTS if n not in SCRIPT_ORDER]
    return [n for n in SCRIPT_ORDER if n in SCRIPTS] + rest


def get_script(name: str) -> Script:
    """Look a script up by name (``"kor"``/``"KOR"``), raising ``KeyError`` that lists the known names."""
    key = name.strip().upper()
    if key not in SCRIPTS:
        raise KeyError(f"unknown script {name!r}; known scripts: {', '.join(list_scripts())}")
    return SCRIPTS[key]


def script_by_letter(letter: str) -> Script:
    """Look a script up by its one-letter code of the reference select-data strings (``K`` → KOR)."""
    for s in SCRIPTS.values():
        if s.letter == letter.upper():
            return s
    known = ", ".join(f"{s.letter}={s.name}" for s in SCRIPTS.values())
    raise KeyError(f"unknown script letter {letter!r}; known letters: {known}")


def guess_script(text: str) -> str | None:
    """Name of the script covering most letters of ``text`` (kana → JPN, hangul → KOR, han → CHI); None if none."""
    best, best_cov = None, 0.0
    # JPN and KOR are checked before CHI so kana/hangul decide for them; pure han text falls to CHI.
    for name in ("LAT", "ARA", "BEN", "HIN", "KOR", "JPN", "CHI"):
        s = SCRIPTS.get(name)
        if s is None:
            continue
        if name == "JPN" and not any(0x3040 <= ord(c) <= 0x30FF for c in text):
            continue
        cov = s.coverage(text)
        if cov > best_cov:
            best, best_cov = name, cov
    return best


def is_rtl(text: str, script: str | None = None) -> bool:
    """Whether ``text`` is right-to-left, by its ``script`` name (``ARA``, ``SynthMLT_ARA``) or else its letters."""
    name = script if script else guess_script(text)
    if not name:
        return False
    try:
        return get_script(name.removeprefix("SynthMLT_")).rtl
    except KeyError:
        return False
