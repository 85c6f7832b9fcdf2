"""Word sampling for the synthetic renderer: wordfreq vocabularies plus casing, digits and punctuation.

Each script draws from the wordfreq lists of its languages (``Script.wordfreq_langs``; LAT mixes en/fr/de/it). Words
are kept only if all their letters belong to the script, then sampled with a flattened Zipf law so that scene-like
vocabulary (names, nouns) appears, not only function words. Casing variants (cased scripts only), numbers and
punctuation are mixed in at rates given by :class:`MixRates`. Everything is drawn from a caller-supplied numpy
``Generator``, so a word is a pure function of the generator state.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

from cllstr.scripts import Script, get_script

__all__ = ["MixRates", "TextRules", "TEXT_RULES", "WordSampler", "vocabulary"]


@dataclass(frozen=True)
class TextRules:
    """What a script's scene text looks like besides plain words.

    Attributes:
        cased: The script has upper/lower case (casing variants apply).
        punct: Punctuation that sticks to words in this script (trailing unless in ``leading``).
        leading: Punctuation that goes before a word (opening brackets/quotes).
        native_digits: The script's own digits (mixed in with ASCII digits), empty if none are used.
        join_words: Scene text of this script is often a run of several dictionary words (CJK signs).
    """

    cased: bool = False
    punct: str = ".,!?:"
    leading: str = ""
    native_digits: str = ""
    join_words: bool = False


#: Per-script text rules, keyed by script name; scripts not listed use the defaults.
TEXT_RULES: dict[str, TextRules] = {
    "ARA": TextRules(punct="،؟.!:", native_digits="٠١٢٣٤٥٦٧٨٩"),
    "BEN": TextRules(punct="।,!?:-", native_digits="০১২৩৪৫৬৭৮৯"),
    "CHI": TextRules(punct="。，！？：、", leading="「《（", join_words=True),
    "HIN": TextRules(punct="।,!?:-", native_digits="०१२३४५६७८९"),
    "JPN": TextRules(punct="。、！？・ー", leading="「（", join_words=True),
    "KOR": TextRules(punct=".,!?:~", leading='("'),
    "LAT": TextRules(cased=True, punct=".,!?:;'-&", leading="(\"'"),
}

_CLOSING = {"(": ")", '"': '"', "'": "'", "「": "」", "《": "》", "（": "）"}


@dataclass(frozen=True)
class MixRates:
    """Probabilities of the non-word variants (each drawn independently per sample).

    Attributes:
        number: The sample is a number (price, year, phone fragment) instead of a word.
        digits_in_word: Digits are appended or prepended to the word (``B2``, ``24h``).
        punct: A punctuation mark is attached.
        upper: Cased scripts: the word is upper-cased (signs are often all caps).
        title: Cased scripts: the word is title-cased.
        join: Scripts with ``join_words``: two dictionary words are concatenated.
        zipf_alpha: Exponent of the rank-based sampling law ``p(rank) ~ (rank + 10) ** -alpha``.
        multiword: The label is two words separated by a space (``join_words`` scripts: concatenated).
        digit_heavy: The label is a digit/punctuation-heavy string: price, date, phone, time range, percentage,
            code, or a word with a number (``Gate 12``).
    """

    number: float = 0.06
    digits_in_word: float = 0.03
    punct: float = 0.08
    upper: float = 0.25
    title: float = 0.3
    join: float = 0.35
    zipf_alpha: float = 0.6
    multiword: float = 0.0
    digit_heavy: float = 0.0


@functools.lru_cache(maxsize=32)
def vocabulary(script_name: str, top_n: int = 20000, min_len: int = 1, max_len: int = 20) -> tuple[str, ...]:
    """NFC words of the script's wordfreq languages, most frequent first, interleaved across languages.

    Only words made entirely of the script's letters (plus combining marks) are kept; duplicates are dropped.

    Raises:
        ValueError: no word survived the filters (names the script and languages).
    """
    from wordfreq import top_n_list

    script = get_script(script_name)
    per_lang = [top_n_list(lang, top_n) for lang in script.wordfreq_langs]
    seen: set[str] = set()
    words: list[str] = []
    for rank in range(max(map(len, per_lang), default=0)):
        for lst in per_lang:
            if rank >= len(lst):
                continue
            w = unicodedata.normalize("NFC", lst[rank])
            if w in seen or not (min_len <= len(w) <= max_len) or not _is_script_word(w, script):
                continue
            seen.add(w)
            words.append(w)
    if not words:
        raise ValueError(f"wordfreq gave no usable {script.name} words for languages {script.wordfreq_langs}")
    return tuple(words)


def _is_script_word(word: str, script: Script) -> bool:
    has_letter = False
    for ch in word:
        cat = unicodedata.category(ch)
        if cat[0] == "L":
            if not script.contains(ch):
                return False
            has_letter = True
        elif cat[0] == "M" or cat == "Cf":
            continue
        else:
            return False
    return has_letter


class WordSampler:
    """Draws scene-like labels for one script.

    Args:
        script: Script name (``"KOR"``) or :class:`Script`.
        rates: Mixing probabilities.
        top_n: Size of each wordfreq list read.
        max_len: Longest label produced (characters).
    """

    def __init__(self, script: str | Script, rates: MixRates | None = None, top_n: int = 20000, max_len: int = 24):
        if max_len < 20:
            raise ValueError(f"max_len must be at least 20 (the longest vocabulary word), got {max_len}")
        self.script = script if isinstance(script, Script) else get_script(script)
        self.rates = rates or MixRates()
        self.rules = TEXT_RULES.get(self.script.name, TextRules())
        self.words = vocabulary(self.script.name, top_n)
        self.max_len = max_len
        w = (np.arange(len(self.words), dtype=np.float64) + 10.0) ** -self.rates.zipf_alpha
        self._cdf = np.cumsum(w / w.sum())

    @property
    def probabilities(self) -> np.ndarray:
        """Sampling probability of each vocabulary word (``(len(words),)``, sums to 1)."""
        return np.diff(self._cdf, prepend=0.0)

    def _word(self, rng: np.random.Generator) -> str:
        i = int(np.searchsorted(self._cdf, rng.random(), side="right"))
        return self.words[min(i, len(self.words) - 1)]

    def _digits(self, rng: np.random.Generator, n: int) -> str:
        pool = "0123456789"
        if self.rules.native_digits and rng.random() < 0.3:
            pool = self.rules.native_digits
        return "".join(pool[int(k)] for k in rng.integers(0, 10, n))

    def _number(self, rng: np.random.Generator) -> str:
        kind = rng.integers(0, 5)
        if kind == 0:
            return self._digits(rng, int(rng.integers(1, 5)))
        if kind == 1:
            return str(int(rng.integers(1950, 2031)))
        if kind == 2:
            return f"{self._digits(rng, int(rng.integers(1, 4)))}.{self._digits(rng, 2)}"
        if kind == 3:
            return f"{self._digits(rng, int(rng.integers(2, 5)))}-{self._digits(rng, 4)}"
        return f"{self._digits(rng, 2)}:{self._digits(rng, 2)}"

    def _digit_heavy(self, rng: np.random.Generator) -> str:
        d = self._digits
        kind = int(rng.integers(0, 7))
        if kind == 0:
            cur = "$€£¥" if self.rules.cased else "$"
            c = cur[int(rng.integers(0, len(cur)))]
            price = f"{d(rng, int(rng.integers(1, 4)))}{'.,'[int(rng.integers(0, 2))]}{d(rng, 2)}"
            return c + price if rng.random() < 0.6 else price + c
        if kind == 1:
            sep = "/.-"[int(rng.integers(0, 3))]
            return sep.join((d(rng, 2), d(rng, 2), d(rng, int(rng.choice([2, 4])))))
        if kind == 2:
            return f"+{d(rng, 2)} {d(rng, int(rng.integers(2, 4)))} {d(rng, int(rng.integers(4, 7)))}"
        if kind == 3:
            return f"{d(rng, 2)}:{d(rng, 2)}-{d(rng, 2)}:{d(rng, 2)}"
        if kind == 4:
            return f"{'-' if rng.random() < 0.4 else ''}{d(rng, int(rng.integers(1, 3)))}%"
        if kind == 5:
            if self.rules.cased:
                letters = "".join(chr(65 + int(k)) for k in rng.integers(0, 26, int(rng.integers(1, 3))))
                return f"{letters}{d(rng, int(rng.integers(1, 4)))}-{d(rng, int(rng.integers(1, 3)))}"
            return f"#{d(rng, int(rng.integers(2, 5)))}-{d(rng, int(rng.integers(1, 3)))}"
        word = self._word(rng)
        num = d(rng, int(rng.integers(1, 4)))
        sep = "" if self.rules.join_words else " "
        return f"{word}{sep}{num}" if rng.random() < 0.7 else f"{num}{sep}{word}"

    def sample(self, rng: np.random.Generator) -> str:
        """One NFC label drawn from ``rng``."""
        r, rules = self.rates, self.rules
        if r.digit_heavy > 0 and rng.random() < r.digit_heavy:
            return unicodedata.normalize("NFC", self._digit_heavy(rng))
        if r.multiword > 0 and rng.random() < r.multiword:
            sep = "" if rules.join_words else " "
            text = self._word(rng) + sep + self._word(rng)
            return unicodedata.normalize("NFC", text if len(text) <= self.max_len else self._word(rng))
        if rng.random() < r.number:
            text = self._number(rng)
        else:
            text = self._word(rng)
            if rules.join_words and rng.random() < r.join:
                text += self._word(rng)
            if rules.cased:
                u = rng.random()
                text = text.upper() if u < r.upper else text.title() if u < r.upper + r.title else text
            if rng.random() < r.digits_in_word:
                digits = self._digits(rng, int(rng.integers(1, 3)))
                text = digits + text if rng.random() < 0.5 else text + digits
        if rng.random() < r.punct:
            text = self._punctuate(text, rng)
        if len(text) > self.max_len:
            # Cutting could strand a combining mark; a single dictionary word is always short enough.
            text = self._word(rng)
        return unicodedata.normalize("NFC", text)

    def _punctuate(self, text: str, rng: np.random.Generator) -> str:
        rules = self.rules
        if rules.leading and rng.random() < 0.25:
            opener = rules.leading[int(rng.integers(0, len(rules.leading)))]
            return opener + text + _CLOSING.get(opener, "")
        return text + rules.punct[int(rng.integers(0, len(rules.punct)))]
