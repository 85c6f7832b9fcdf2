"""Fast reading of a font's Unicode coverage straight from its ``cmap`` table (no glyph names).

fontTools' ``getBestCmap`` decodes the whole table into code point -> glyph *name*, which builds the glyph order
from ``post`` or ``CFF`` names: ~10 ms per face, and the realistic font set holds hundreds of faces per script
(LAT 252), so a fresh synthesis worker spent most of its first thousand samples there. Coverage needs only which
code points map to a glyph other than glyph 0 (``.notdef``, the tofu box), which the table gives directly.

:func:`read_cmap` parses the sfnt table directory (plain ``.ttf``/``.otf`` and ``.ttc``/``.otc`` collections), picks
the subtable fontTools' ``getBestCmap`` would pick (``(3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1),
(0, 0)``) and decodes formats 0, 4, 6, 12 and 13 with numpy. It returns ``None`` for anything else (WOFF, an
unknown subtable format, a damaged table), and the caller falls back to fontTools.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

__all__ = ["read_cmap", "BEST_CMAP_ORDER"]

#: Subtable preference, the same as fontTools' ``TTFont.getBestCmap``.
BEST_CMAP_ORDER: tuple[tuple[int, int], ...] = ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0))

_SFNT_TAGS = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"typ1")


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated font file")
    return data


def _table(f: BinaryIO, index: int, tag: bytes) -> bytes | None:
    """Table ``tag`` of face ``index``, reading only the headers and that table."""
    offset = 0
    head = _read(f, 0, 12)
    if head[:4] == b"ttcf":
        (n,) = struct.unpack_from(">I", head, 8)
        if not 0 <= index < n:
            return None
        (offset,) = struct.unpack(">I", _read(f, 12 + 4 * index, 4))
        head = _read(f, offset, 12)
    elif index != 0:
        return None
    if head[:4] not in _SFNT_TAGS:
        return None
    (num,) = struct.unpack_from(">H", head, 4)
    directory = _read(f, offset + 12, 16 * num)
    for k in range(num):
        t, _, off, length = struct.unpack_from(">4sIII", directory, 16 * k)
        if t == tag:
            return _read(f, off, length)
    return None


def _ranges(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every code point of the inclusive ranges ``start[i]..end[i]`` and the index ``i`` of its range."""
    lengths = np.maximum(end - start + 1, 0)
    seg = np.repeat(np.arange(len(start)), lengths)
    first = np.cumsum(lengths) - lengths
    return start[seg] + (np.arange(len(seg)) - first[seg]), seg


def _format4(sub: bytes) -> np.ndarray:
    seg2 = struct.unpack_from(">H", sub, 6)[0]
    n = seg2 // 2
    end = np.frombuffer(sub, ">u2", n, 14).astype(np.int64)
    start = np.frombuffer(sub, ">u2", n, 16 + seg2).astype(np.int64)
    delta = np.frombuffer(sub, ">u2", n, 16 + 2 * seg2).astype(np.int64)
    range_off = np.frombuffer(sub, ">u2", n, 16 + 3 * seg2).astype(np.int64)
    glyph_base = 16 + 4 * seg2  # byte offset of glyphIdArray; it runs to the end of the table (the 16-bit length
    # field of a large subtable overflows in some fonts, so it is not trusted)
    glyphs = np.frombuffer(sub, ">u2", max(0, (len(sub) - glyph_base) // 2), glyph_base).astype(np.int64)
    cps, seg = _ranges(start, np.minimum(end, 0xFFFE))  # 0xFFFF is the table's end marker, never a character
    direct = range_off[seg] == 0
    gid = np.where(direct, (cps + delta[seg]) & 0xFFFF, 0)
    # idRangeOffset counts bytes from its own slot (16 + 3 * seg2 + 2 i) to the glyph index of ``start``.
    idx = (16 + 3 * seg2 + 2 * seg + range_off[seg] - glyph_base) // 2 + (cps - start[seg])
    via = ~direct & (idx >= 0) & (idx < len(glyphs))
    g = glyphs[idx[via]]
    gid[via] = np.where(g != 0, (g + delta[seg[via]]) & 0xFFFF, 0)
    return cps[gid != 0]


def _groups(sub: bytes, constant: bool) -> np.ndarray:
    (n,) = struct.unpack_from(">I", sub, 12)
    g = np.frombuffer(sub, ">u4", 3 * n, 16).reshape(n, 3).astype(np.int64)
    g = g[(g[:, 0] <= g[:, 1]) & (g[:, 1] <= 0x10FFFF)]
    cps, seg = _ranges(g[:, 0], g[:, 1])
    gid = g[seg, 2] if constant else g[seg, 2] + (cps - g[seg, 0])
    return cps[gid != 0]


def _decode(sub: bytes) -> np.ndarray | None:
    (fmt,) = struct.unpack_from(">H", sub, 0)
    if fmt == 0:
        gid = np.frombuffer(sub, np.uint8, 256, 6)
        return np.flatnonzero(gid)
    if fmt == 4:
        return _format4(sub)
    if fmt == 6:
        first, count = struct.unpack_from(">HH", sub, 6)
        gid = np.frombuffer(sub, ">u2", count, 10)
        return first + np.flatnonzero(gid)
    if fmt in (12, 13):
        return _groups(sub, constant=fmt == 13)
    return None


def read_cmap(path: str, index: int = 0) -> frozenset[int] | None:
    """Code points that face ``index`` of font file ``path`` maps to a glyph other than ``.notdef``.

    The same set as ``{cp for cp, g in TTFont(path, fontNumber=index).getBestCmap().items() if g != ".notdef"}``
    (tests/test_synth_cmap.py checks it on every installed face); ``None`` when this reader cannot tell (WOFF,
    unknown subtable format, truncated table): use fontTools then. Raises ``OSError`` when the file cannot be read.
    """
    with open(path, "rb") as f:
        try:
            cmap = _table(f, index, b"cmap")
        except (struct.error, ValueError):
            return None
    if cmap is None:
        return None
    try:
        (n,) = struct.unpack_from(">H", cmap, 2)
        subs = {}
        for k in range(n):
            plat, enc, off = struct.unpack_from(">HHI", cmap, 4 + 8 * k)
            subs.setdefault((plat, enc), off)
        for key in BEST_CMAP_ORDER:
            if key in subs:
                cps = _decode(cmap[subs[key] :])
                return None if cps is None else frozenset(cps.tolist())
        return frozenset()
    except (struct.error, ValueError, IndexError):
        return None
