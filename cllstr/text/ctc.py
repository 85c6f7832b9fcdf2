"""The CTC label codec: labels → class-id targets (visual order, unknown characters counted) and ids → text.

Class 0 is the CTC blank; a :class:`~cllstr.text.charset.Charset` maps tokens to classes 1..K. CTC aligns targets
with image columns left to right, so models learn right-to-left scripts (Arabic) in visual order: encoding reverses
their token sequences (as the reference ``CTCLabelConverter`` does) and decoding reverses them back, so every
prediction comes out in logical (reading) order, the order of the labels in the LMDB files. A target with ``L`` tokens
and ``R`` adjacent repeats (``"ll"`` in ``"hello"``) needs at least ``L + R`` frames (:func:`required_frames`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from cllstr.scripts import is_rtl

__all__ = ["EncodedTargets", "encode_targets", "ids_to_text", "required_frames"]


def required_frames(ids: Sequence[int]) -> int:
    """Minimum number of CTC frames for target ``ids``: its length plus its number of adjacent repeats."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:], strict=False) if a == b)


@dataclass
class EncodedTargets:
    """A batch of CTC targets.

    Attributes:
        targets: ``(sum(lengths),)`` int64 class ids (1-based; 0 is the blank), concatenated.
        lengths: ``(B,)`` int64 target lengths.
        frames: Required frames per sample (see :func:`required_frames`).
        unknown: Number of label characters that the charset does not know (skipped).
    """

    targets: torch.Tensor
    lengths: torch.Tensor
    frames: list[int] = field(default_factory=list)
    unknown: int = 0


def encode_targets(charset: object, labels: Sequence[str], scripts: Sequence[str] | None = None) -> EncodedTargets:
    """Encode ``labels`` with ``charset`` in visual order. Unknown characters map to the charset's ``[UNK]`` class
    when it has one (the reference converter's behaviour), else they are skipped; both are counted."""
    flat: list[int] = []
    lengths: list[int] = []
    frames: list[int] = []
    on_unknown = "unk" if hasattr(charset, "placeholder_ids") and "[UNK]" in charset else "skip"
    before = sum(charset.unknown.values()) if hasattr(charset, "unknown") else 0
    for i, label in enumerate(labels):
        ids = list(charset.encode(label, on_unknown=on_unknown))
        if is_rtl(label, scripts[i] if scripts else None):
            ids.reverse()
        flat.extend(ids)
        lengths.append(len(ids))
        frames.append(required_frames(ids))
    after = sum(charset.unknown.values()) if hasattr(charset, "unknown") else 0
    return EncodedTargets(torch.tensor(flat, dtype=torch.long), torch.tensor(lengths, dtype=torch.long), frames,
                          after - before)


def ids_to_text(ids: Sequence[int], charset: object) -> str:
    """Class ids (visual order, no blanks) → text in logical order: right-to-left text is decoded reversed. The
    reference's ``[UNK]`` / ``[PAD]`` placeholders give no text (its evaluation deletes ``[UNK]`` too)."""
    placeholders = getattr(charset, "placeholder_ids", None)
    if placeholders:
        ids = [i for i in ids if int(i) not in placeholders]
    text = charset.decode(list(ids))
    return charset.decode(list(ids)[::-1]) if is_rtl(text) else text
