"""Contact sheet of synthetic crops: one row per script, each crop with its label drawn under it.

Meant for eyeballing shaping and appearance (``cllstr synth preview --out sheet.png``). Labels are drawn with the
script's own font through raqm, so a wrong label/crop pairing or a shaping failure is visible at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from cllstr.scripts import get_script
from cllstr.synth.fonts import find_fonts, load_font
from cllstr.synth.render import Renderer

__all__ = ["contact_sheet", "write_contact_sheet"]

_BG = (245, 245, 245)
_INK = (20, 20, 20)


def contact_sheet(
    scripts: Sequence[str],
    *,
    per_script: int = 8,
    styles: Sequence[str] = ("real", "synthmlt"),
    seed: int = 0,
    font_set: str = "full",
    font_dir: str | None = None,
    bg_dir: str | None = None,
    cell_h: int = 48,
    max_w: int = 1600,
) -> Image.Image:
    """Render ``per_script`` crops per (script, style) and tile them with their labels.

    Args:
        scripts: Script names, one block of rows each.
        per_script: Crops per row.
        styles: Style names; each gets its own row.
        seed: Renderer seed.
        font_set: Catalogue font set of the renderer (``noto``, ``small``, ``full``, ``none``).
        font_dir: Folder of extra fonts mixed into the font set.
        bg_dir: Folder of background images.
        cell_h: Height crops are scaled to on the sheet.
        max_w: Rows wrap beyond this width.

    Returns:
        RGB sheet.
    """
    head_font = load_font(*_face_for("LAT", font_dir), 14)
    rows: list[Image.Image] = []
    for name in scripts:
        script = get_script(name)
        label_font = load_font(*_face_for(script.name, font_dir), 16)
        for style in styles:
            renderer = Renderer(script.name, style, seed=seed, font_set=font_set, font_dir=font_dir, bg_dir=bg_dir)
            cells = []
            for i in range(per_script):
                s = renderer(i)
                crop = s.image.resize((max(1, round(s.image.width * cell_h / s.image.height)), cell_h))
                cell = Image.new("RGB", (max(crop.width, 40), cell_h + 26), _BG)
                cell.paste(crop, (0, 0))
                ImageDraw.Draw(cell).text(
                    (2, cell_h + 2), s.label, fill=_INK, font=label_font, language=script.fontconfig_lang
                )
                cells.append(cell)
            rows.extend(_wrap(f"{script.name} / {style}", cells, head_font, max_w))
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows)), _BG)
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet


def _face_for(script: str, font_dir: str | None) -> tuple[str, int]:
    # Labels are drawn in the script's first Noto face when installed, else in the first face of the folder.
    try:
        face = find_fonts(get_script(script))[0]
    except FileNotFoundError:
        face = find_fonts(get_script(script), font_dir)[0] if font_dir else find_fonts(get_script(script))[0]
    return face.path, face.index


def _wrap(title: str, cells: list[Image.Image], font, max_w: int) -> list[Image.Image]:
    head_w, gap = 150, 6
    lines: list[list[Image.Image]] = [[]]
    x = head_w
    for c in cells:
        if lines[-1] and x + c.width > max_w:
            lines.append([])
            x = head_w
        lines[-1].append(c)
        x += c.width + gap
    out = []
    for k, line in enumerate(lines):
        h = max(c.height for c in line) + gap
        w = head_w + sum(c.width + gap for c in line)
        row = Image.new("RGB", (w, h), _BG)
        if k == 0:
            ImageDraw.Draw(row).text((4, 4), title, fill=_INK, font=font)
        x = head_w
        for c in line:
            row.paste(c, (x, 0))
            x += c.width + gap
        out.append(row)
    return out


def write_contact_sheet(out: str | Path, scripts: Sequence[str], **kwargs) -> Path:
    """Build :func:`contact_sheet` and save it (format from the suffix, e.g. ``.png``); returns the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(scripts, **kwargs).save(path)
    return path
