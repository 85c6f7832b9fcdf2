"""Build an LMDB store from an image folder and a ``path<TAB>label`` ground-truth file (``cllstr data create``).

The ground-truth format is the one of the public ``create_lmdb_dataset.py``: UTF-8 (a BOM is accepted), one
``relative/image/path<TAB>label`` per line. Labels written as the reference's tab-joined grapheme tokens (ARA/BEN/HIN)
are joined back into plain text. Images are stored byte-for-byte; with ``check=True`` undecodable ones are skipped
and reported.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cllstr.data.store.validate import check_image
from cllstr.data.store.writer import LmdbWriter
from cllstr.text.normalize import from_reference_label, normalize_label

__all__ = ["CreateReport", "create_lmdb", "read_gt_file"]


@dataclass
class CreateReport:
    """What :func:`create_lmdb` did.

    Attributes:
        path: The store written.
        written: Records in the store.
        resumed_from: Records already committed by an interrupted earlier run.
        missing_files: Ground-truth lines whose image does not exist (line number, path).
        invalid_images: Images that do not decode (line number, path, reason).
        bad_lines: Lines without a tab or with an empty path (line number, text).
    """

    path: Path
    written: int = 0
    resumed_from: int = 0
    missing_files: list[tuple[int, str]] = field(default_factory=list)
    invalid_images: list[tuple[int, str, str]] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


def read_gt_file(gt_file: str | Path) -> list[tuple[int, str, str] | tuple[int, None, str]]:
    """Parse a ground-truth file into ``(line number, image path, raw label)``; bad lines get path None."""
    p = Path(gt_file)
    if not p.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"ground-truth file {p} is not UTF-8: {e}") from None
    out: list[Any] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        image_path, sep, label = line.partition("\t")
        out.append((lineno, image_path if sep and image_path.strip() else None, label if sep else line))
    return out


def create_lmdb(
    image_dir: str | Path,
    gt_file: str | Path,
    output: str | Path,
    *,
    check: bool = True,
    reference_labels: bool = True,
    unshape_arabic: bool = False,
    script: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    commit_every: int = 1000,
    store_paths: bool = True,
    meta: dict[str, Any] | None = None,
) -> CreateReport:
    """Write the images listed in ``gt_file`` (relative to ``image_dir``) with their labels into ``output``.

    Args:
        image_dir: Folder the ground-truth paths are relative to.
        gt_file: ``path<TAB>label`` file.
        output: LMDB directory to create.
        check: Decode every image and skip those that fail.
        reference_labels: Join tab-joined reference grapheme tokens (a label's further tabs are separators).
        unshape_arabic: Map Arabic presentation forms to base letters.
        script: Script name stored in ``meta``.
        overwrite: Replace an existing store.
        resume: Continue an interrupted run (already committed records are not written again).
        commit_every: Records per transaction.
        store_paths: Store ``imagepath-%09d`` keys.
        meta: Extra metadata.

    Returns:
        The report of written and skipped entries.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    entries = read_gt_file(gt_file)
    report = CreateReport(path=Path(output))
    info = {"source": str(Path(gt_file).name), **({"script": script.upper()} if script else {}), **(meta or {})}
    with LmdbWriter(output, commit_every=commit_every, resume=resume, overwrite=overwrite, meta=info) as writer:
        report.resumed_from = skip = writer.num_committed
        seen = 0
        for lineno, rel, raw_label in entries:
            if rel is None:
                report.bad_lines.append((lineno, raw_label))
                continue
            img_path = root / rel
            if not img_path.is_file():
                report.missing_files.append((lineno, rel))
                continue
            data = img_path.read_bytes()
            if check:
                try:
                    check_image(data)
                except ValueError as e:
                    report.invalid_images.append((lineno, rel, str(e)))
                    continue
            seen += 1
            if seen <= skip:
                continue
            if reference_labels:
                label = from_reference_label(raw_label, unshape=unshape_arabic)
            else:
                label = normalize_label(raw_label)
            writer.add(data, label, image_path=rel if store_paths else None)
        report.written = writer.num_samples
        if report.written == 0:
            writer.abort()
            shutil.rmtree(writer.tmp, ignore_errors=True)
            raise ValueError(
                f"no record to write from {gt_file}: {len(entries)} ground-truth line(s), "
                f"{len(report.missing_files)} image(s) not found under {root}, {len(report.invalid_images)} "
                f"undecodable, {len(report.bad_lines)} line(s) without 'path<TAB>label'; nothing was written")
    return report
