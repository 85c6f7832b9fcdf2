"""Validation of an LMDB store: every record is read and every image fully decoded.

:func:`validate_lmdb` reports format errors (missing/malformed ``num-samples``, missing keys, non-UTF-8 labels),
corrupt images, empty or over-long labels and out-of-charset characters; ``cllstr data validate`` prints the report
and exits non-zero on errors. The synthetic engine's tests call it on every store they produce.
"""

from __future__ import annotations

import collections
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cllstr.data.store.format import DECODE_ERRORS, LmdbFormatError, image_key, label_key
from cllstr.data.store.reader import LmdbReader
from cllstr.text.charset import Charset, tokenize
from cllstr.text.normalize import from_reference_label, normalize_label

__all__ = ["ValidationReport", "validate_lmdb", "check_image"]


def check_image(buf: bytes) -> tuple[int, int]:
    """Fully decode ``buf``.

    Returns:
        ``(width, height)``.

    Raises:
        ValueError: for undecodable or empty images, with the decoder's reason.
    """
    try:
        with Image.open(io.BytesIO(buf)) as img:
            img.load()
            size = img.size
    except DECODE_ERRORS as e:
        raise ValueError(f"{type(e).__name__}: {e}") from None
    if size[0] == 0 or size[1] == 0:
        raise ValueError(f"image has zero size {size}")
    return size


@dataclass
class ValidationReport:
    """Result of :func:`validate_lmdb`; record numbers are the 1-based key indices.

    Attributes:
        path: The store.
        num_samples: Value of ``num-samples`` (0 when unreadable).
        format_error: Why the store could not be read at all, else None.
        missing: Keys absent although ``num-samples`` covers them.
        bad_utf8: Records whose label is not UTF-8.
        corrupt_images: Record → decoder message.
        empty_labels: Records with an empty label.
        too_long: Records whose label has more than ``max_len`` tokens.
        unknown_chars: Out-of-charset characters and their counts.
        records_with_unknown: Records holding at least one of them.
        non_nfc: Records whose stored label is not NFC (a warning: cllstr reads them as NFC).
        extra_records: Records present beyond ``num-samples`` (a warning: other tools ignore them).
    """

    path: Path
    num_samples: int = 0
    format_error: str | None = None
    missing: list[str] = field(default_factory=list)
    bad_utf8: list[int] = field(default_factory=list)
    corrupt_images: dict[int, str] = field(default_factory=dict)
    empty_labels: list[int] = field(default_factory=list)
    too_long: list[int] = field(default_factory=list)
    unknown_chars: collections.Counter[str] = field(default_factory=collections.Counter)
    records_with_unknown: list[int] = field(default_factory=list)
    non_nfc: list[int] = field(default_factory=list)
    extra_records: int = 0

    @property
    def num_corrupt(self) -> int:
        """Number of records whose image does not decode."""
        return len(self.corrupt_images)

    @property
    def ok(self) -> bool:
        """No error (warnings allowed)."""
        return not self.errors()

    def errors(self) -> list[str]:
        """One line per kind of error found."""
        out = []
        if self.format_error:
            out.append(self.format_error)
        checks = [
            (self.missing, "missing key(s)"),
            (self.bad_utf8, "label(s) not UTF-8"),
            (self.corrupt_images, "corrupt image(s)"),
            (self.empty_labels, "empty label(s)"),
            (self.too_long, "over-long label(s)"),
            (self.records_with_unknown, "label(s) with out-of-charset characters"),
        ]
        for items, what in checks:
            if items:
                first = list(items)[:5]
                out.append(f"{len(items)} {what} (first: {', '.join(map(str, first))})")
        return out

    def warnings(self) -> list[str]:
        """One line per kind of warning."""
        out = []
        if self.non_nfc:
            out.append(f"{len(self.non_nfc)} label(s) not in NFC (read as NFC)")
        if self.extra_records:
            out.append(f"{self.extra_records} record(s) beyond num-samples (ignored by readers)")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "path": str(self.path),
            "num_samples": self.num_samples,
            "ok": self.ok,
            "errors": self.errors(),
            "warnings": self.warnings(),
            "num_corrupt": self.num_corrupt,
            "num_empty": len(self.empty_labels),
            "num_too_long": len(self.too_long),
            "num_missing": len(self.missing),
            "unknown_chars": dict(self.unknown_chars.most_common()),
        }


def validate_lmdb(
    path: str | Path,
    charset: Charset | None = None,
    max_len: int | None = None,
    *,
    mode: str = "grapheme",
    check_images: bool = True,
    reference_labels: bool = True,
) -> ValidationReport:
    """Read every record of an LMDB store and report what is wrong.

    Args:
        path: LMDB directory.
        charset: Report characters outside it.
        max_len: Report labels with more tokens than this (tokens of ``charset``, else of ``mode``).
        mode: Tokenizer for ``max_len`` when no charset is given.
        check_images: Fully decode every image.
        reference_labels: Read tab-joined reference labels as their joined text.

    Returns:
        The report; ``report.ok`` is False on any error. Never raises for a broken store.
    """
    report = ValidationReport(path=Path(path))
    try:
        reader = LmdbReader(path)
        report.num_samples = len(reader)
    except (LmdbFormatError, FileNotFoundError) as e:
        report.format_error = str(e)
        return report
    for idx in range(1, report.num_samples + 1):
        raw_label, raw_image = reader.get_raw(label_key(idx)), reader.get_raw(image_key(idx))
        if raw_label is None:
            report.missing.append(label_key(idx).decode())
        if raw_image is None:
            report.missing.append(image_key(idx).decode())
        if raw_image is not None and check_images:
            try:
                check_image(raw_image)
            except ValueError as e:
                report.corrupt_images[idx] = str(e)
        if raw_label is None:
            continue
        try:
            label = raw_label.decode("utf-8")
        except UnicodeDecodeError:
            report.bad_utf8.append(idx)
            continue
        if label != normalize_label(label):
            report.non_nfc.append(idx)
        text = from_reference_label(label, unshape=False) if reference_labels else normalize_label(label)
        if not text.strip():
            report.empty_labels.append(idx)
            continue
        if max_len is not None:
            length = len(charset.split(text)) if charset is not None else len(tokenize(text, mode))
            if length > max_len:
                report.too_long.append(idx)
        if charset is not None:
            bad = charset.unknown_chars(text)
            if bad:
                report.unknown_chars.update(bad)
                report.records_with_unknown.append(idx)
    n = report.num_samples
    while reader.get_raw(image_key(n + report.extra_records + 1)) is not None:
        report.extra_records += 1
    reader.close()
    return report
