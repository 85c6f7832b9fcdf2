"""Statistics of an LMDB store for ``cllstr data inspect``: counts, scripts, label lengths, image sizes, coverage.

Image sizes come from the image headers (no full decode), so inspecting is cheap; ``cllstr data validate`` is the
full check.
"""

from __future__ import annotations

import collections
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cllstr.data.store.reader import LmdbReader
from cllstr.scripts import guess_script
from cllstr.text.charset import Charset, tokenize
from cllstr.text.normalize import from_reference_label

__all__ = ["InspectReport", "inspect_lmdb"]


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {
        "min": min(values),
        "mean": round(statistics.fmean(values), 2),
        "median": float(statistics.median(values)),
        "max": max(values),
    }


@dataclass
class InspectReport:
    """Statistics of one store (over the first ``inspected`` records).

    Attributes:
        path: The store.
        num_samples: ``num-samples``.
        inspected: Records looked at.
        meta: The ``meta`` JSON.
        scripts: Guessed script of each label → count (``?`` for none).
        label_lengths: Token counts of the labels.
        widths: Image widths (header).
        heights: Image heights (header).
        unreadable_headers: Records whose image header does not parse.
        formats: Image format → count.
        chars: Token → count.
        charset_size: Tokens of the charset given, else 0.
        unknown_chars: Tokens outside the charset → count.
        with_image_path: Records that have an ``imagepath-`` key.
    """

    path: Path
    num_samples: int
    inspected: int
    meta: dict[str, Any]
    scripts: collections.Counter[str] = field(default_factory=collections.Counter)
    label_lengths: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    unreadable_headers: int = 0
    formats: collections.Counter[str] = field(default_factory=collections.Counter)
    chars: collections.Counter[str] = field(default_factory=collections.Counter)
    charset_size: int = 0
    unknown_chars: collections.Counter[str] = field(default_factory=collections.Counter)
    with_image_path: int = 0

    @property
    def coverage(self) -> float | None:
        """Fraction of label tokens inside the charset (None without a charset)."""
        if not self.charset_size:
            return None
        total = sum(self.chars.values())
        return 1.0 if total == 0 else 1.0 - sum(self.unknown_chars.values()) / total

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "path": str(self.path),
            "num_samples": self.num_samples,
            "inspected": self.inspected,
            "meta": self.meta,
            "scripts": dict(self.scripts.most_common()),
            "label_length": _summary(self.label_lengths),
            "width": _summary(self.widths),
            "height": _summary(self.heights),
            "unreadable_headers": self.unreadable_headers,
            "formats": dict(self.formats),
            "distinct_tokens": len(self.chars),
            "charset_size": self.charset_size,
            "coverage": self.coverage,
            "unknown_chars": dict(self.unknown_chars.most_common(50)),
            "with_image_path": self.with_image_path,
        }


def inspect_lmdb(
    path: str | Path, charset: Charset | None = None, *, mode: str = "grapheme", limit: int | None = None
) -> InspectReport:
    """Collect statistics of an LMDB store.

    Args:
        path: LMDB directory.
        charset: Measure coverage against it (its tokenizer then counts lengths).
        mode: Tokenizer for lengths and token counts without a charset.
        limit: Look at the first ``limit`` records only.
    """
    reader = LmdbReader(path)
    n = len(reader)
    count = n if limit is None else min(n, limit)
    rep = InspectReport(path=Path(path), num_samples=n, inspected=count, meta=reader.meta)
    for i in range(count):
        rec = reader[i]
        label = from_reference_label(rec.label, unshape=False)
        rep.scripts[guess_script(label) or "?"] += 1
        if charset is not None:
            pieces = charset.split(label)
            rep.chars.update(t for t, _ in pieces)
            rep.unknown_chars.update(t for t, c in pieces if c is None)
            rep.label_lengths.append(len(pieces))
        else:
            toks = tokenize(label, mode)
            rep.chars.update(toks)
            rep.label_lengths.append(len(toks))
        if rec.image_path is not None:
            rep.with_image_path += 1
        try:
            with Image.open(io.BytesIO(rec.image)) as img:
                rep.widths.append(img.width)
                rep.heights.append(img.height)
                rep.formats[img.format or "?"] += 1
        except (OSError, ValueError, SyntaxError):
            rep.unreadable_headers += 1
    rep.charset_size = len(charset) if charset is not None else 0
    reader.close()
    return rep
