"""Pictures of what a model reads: sheets of evaluation crops with prediction, ground truth, ✓/✗ and confidence.

:class:`GalleryCollector` is handed to :func:`cllstr.scoring.evaluate.evaluate_loaders` (``on_batch=``) and keeps, per
language, the first ``first_k`` samples (the demo's "what does it read" sheet) and the ``worst_k`` worst errors
(largest normalised edit distance, then highest confidence: confident mistakes first — the sheet a researcher
looks at first). :func:`write_gallery` draws one PNG per language; text is drawn with the script's own font through
raqm, so Arabic and Indic predictions are shaped as they would be printed.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from cllstr.atomic import atomic_write_text
from cllstr.scoring.metrics import edit_distance

__all__ = ["GalleryEntry", "GalleryCollector", "render_sheet", "write_gallery", "tensor_to_image"]

_BG = (250, 250, 250)
_INK = (25, 25, 25)
_GOOD = (20, 140, 60)
_BAD = (200, 30, 30)


@dataclass(frozen=True)
class GalleryEntry:
    """One evaluated crop."""

    image: Image.Image
    gt: str
    pred: str
    confidence: float

    @property
    def correct(self) -> bool:
        return self.pred == self.gt

    @property
    def ned(self) -> float:
        """Normalised edit distance (0 = correct, 1 = nothing right)."""
        return edit_distance(self.pred, self.gt) / max(len(self.gt), len(self.pred), 1)


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    """A model input ``(C, H, W)`` in [-1, 1] back to a PIL image (``L`` for one channel, else ``RGB``)."""
    arr = ((x.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), "L")
    return Image.fromarray(arr[:3].permute(1, 2, 0).contiguous().numpy(), "RGB")


class GalleryCollector:
    """Keeps the first and the worst samples of each language during an evaluation.

    Args:
        first_k: Samples kept in order per language (0: none).
        worst_k: Errors kept per language (0: none).
    """

    def __init__(self, first_k: int = 0, worst_k: int = 24) -> None:
        if first_k < 0 or worst_k < 0:
            raise ValueError(f"first_k and worst_k must be >= 0, got {first_k} and {worst_k}")
        self.first_k, self.worst_k = first_k, worst_k
        self.first: dict[str, list[GalleryEntry]] = {}
        self._worst: dict[str, list[tuple[float, float, int, GalleryEntry]]] = {}
        self._tick = itertools.count()

    def __call__(self, language: str, images: torch.Tensor, gts: Sequence[str], preds: Sequence[str],
                 confidences: Sequence[float]) -> None:
        """Record one batch: ``images (B, C, H, W)`` in [-1, 1] and their ground truths, predictions, confidences."""
        first = self.first.setdefault(language, [])
        worst = self._worst.setdefault(language, [])
        for i, (gt, pred, conf) in enumerate(zip(gts, preds, confidences, strict=True)):
            keep_first = len(first) < self.first_k
            is_error = pred != gt and self.worst_k > 0
            if not keep_first and not is_error:
                continue
            entry = GalleryEntry(tensor_to_image(images[i]), gt, pred, float(conf))
            if keep_first:
                first.append(entry)
            if is_error:
                key = (entry.ned, entry.confidence, -next(self._tick), entry)  # earlier samples win ties
                if len(worst) < self.worst_k:
                    heapq.heappush(worst, key)
                elif key[:3] > worst[0][:3]:
                    heapq.heapreplace(worst, key)

    def worst(self, language: str) -> list[GalleryEntry]:
        """The kept errors of ``language``, worst first."""
        return [k[3] for k in sorted(self._worst.get(language, []), key=lambda k: k[:3], reverse=True)]

    @property
    def languages(self) -> list[str]:
        return list(dict.fromkeys([*self.first, *self._worst]))


@functools.lru_cache(maxsize=32)
def _font(script: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from cllstr.scripts import get_script
    from cllstr.synth.fonts import FontNotFoundError, find_fonts, load_font

    for name in (script, "LAT"):
        if not name:
            continue
        try:
            face = find_fonts(get_script(name))[0]
            return load_font(face.path, face.index, size)
        except (FontNotFoundError, KeyError, OSError):
            continue
    return ImageFont.load_default(size)


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, fill: tuple[int, int, int],
               size: int = 18) -> None:
    from cllstr.scripts import get_script, guess_script

    script = guess_script(text)
    lang = None
    if script:
        try:
            lang = get_script(script).fontconfig_lang
        except KeyError:
            lang = None
    try:
        draw.text(xy, text, fill=fill, font=_font(script, size), language=lang)
    except (KeyError, ValueError, OSError):  # no raqm: draw without language-specific shaping
        draw.text(xy, text, fill=fill, font=_font(script, size))


def _mark(draw: ImageDraw.ImageDraw, x: int, y: int, ok: bool, s: int = 22) -> None:
    """A drawn ✓ (green) or ✗ (red): shapes, so no font needs those glyphs."""
    if ok:
        draw.line([(x + 2, y + s // 2), (x + s // 3, y + s - 3), (x + s - 2, y + 3)], fill=_GOOD, width=4)
    else:
        draw.line([(x + 3, y + 3), (x + s - 3, y + s - 3)], fill=_BAD, width=4)
        draw.line([(x + s - 3, y + 3), (x + 3, y + s - 3)], fill=_BAD, width=4)


def render_sheet(entries: Sequence[GalleryEntry], title: str, scale: int = 2, text_w: int = 420) -> Image.Image:
    """One row per entry: the crop (``scale`` times its input size), ✓/✗, the prediction, the ground truth and the
    confidence."""
    head_h, pad = 34, 6
    crop_w = max((e.image.width * scale for e in entries), default=200)
    crop_h = max((e.image.height * scale for e in entries), default=64)
    row_h = max(crop_h, 52) + pad
    width = pad + crop_w + pad + 28 + text_w
    sheet = Image.new("RGB", (width, head_h + row_h * max(len(entries), 1)), _BG)
    draw = ImageDraw.Draw(sheet)
    _draw_text(draw, (pad, 6), title, _INK, 20)
    if not entries:
        _draw_text(draw, (pad, head_h + 10), "(no sample)", _INK)
    for r, e in enumerate(entries):
        y = head_h + r * row_h
        crop = e.image.convert("RGB").resize((e.image.width * scale, e.image.height * scale), Image.Resampling.NEAREST)
        sheet.paste(crop, (pad, y))
        x = pad + crop_w + pad
        _mark(draw, x, y + 4, e.correct)
        x += 28
        _draw_text(draw, (x, y), e.pred or "(empty)", _GOOD if e.correct else _BAD)
        prefix = "gt: "
        _draw_text(draw, (x, y + 26), prefix, _INK, 15)  # Latin label and the text each in their own font
        _draw_text(draw, (x + round(_font("LAT", 15).getlength(prefix)) + 6, y + 26), e.gt, _INK, 15)
        _draw_text(draw, (x + text_w - 70, y + 26), f"{e.confidence:.2f}", _INK, 15)
    return sheet


def write_gallery(collector: GalleryCollector, out_dir: str | Path, kind: str = "worst",
                  title: str = "") -> list[Path]:
    """Write one ``<LANG>.png`` per language (``kind`` ``"worst"`` errors or the ``"first"`` samples) and an
    ``index.md`` linking them; files are written atomically. Returns the PNG paths."""
    if kind not in ("worst", "first"):
        raise ValueError(f"kind must be 'worst' or 'first', got {kind!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, lines = [], [f"# {title or ('worst errors' if kind == 'worst' else 'samples')}", ""]
    for lang in collector.languages:
        entries = collector.worst(lang) if kind == "worst" else collector.first.get(lang, [])
        what = "worst errors" if kind == "worst" else "samples"
        n_ok = sum(e.correct for e in entries)
        head = f"{lang}: {len(entries)} {what}" + (f", {n_ok} read correctly" if kind == "first" else "")
        path = out / f"{lang}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        render_sheet(entries, head).save(tmp, format="PNG")
        tmp.replace(path)
        paths.append(path)
        lines.append(f"## {head}\n\n![{lang}]({path.name})\n")
    atomic_write_text(out / "index.md", "\n".join(lines))
    return paths
