"""``cllstr predict``: recognise image files (or a folder) with a checkpoint; prints or writes JSON / TSV."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cllstr.atomic import atomic_write_text

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def predict(
    images: list[Path] = typer.Argument(None, help="Image files."),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-m", help="A cllstr checkpoint."),
    folder: Path | None = typer.Option(None, "--folder", "-f", help="Recognise every image in this folder."),
    fmt: str = typer.Option("tsv", "--format", help="tsv | json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    batch_size: int = typer.Option(256, "--batch-size", "-b"),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto"),
) -> None:
    """Print ``path<TAB>text<TAB>confidence`` (or a JSON list); Arabic text comes out in logical order."""
    from cllstr.recognizer import Recognizer

    if fmt not in ("tsv", "json"):
        raise typer.BadParameter(f"--format must be tsv or json, got {fmt!r}")
    paths = list(images or [])
    if folder is not None:
        if not folder.is_dir():
            raise typer.BadParameter(f"folder not found: {folder}", param_hint="--folder")
        paths += sorted(p for p in folder.iterdir() if p.suffix.lower() in _EXTENSIONS)
    if not paths:
        raise typer.BadParameter("give image files or --folder")
    try:
        rec = Recognizer.from_checkpoint(checkpoint, device=device, precision=precision, batch_size=batch_size)
        preds = rec.predict(paths)
    except (FileNotFoundError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    if fmt == "json":
        text = json.dumps([{"path": str(p), "text": r.text, "confidence": round(r.confidence, 6)}
                           for p, r in zip(paths, preds, strict=False)], ensure_ascii=False, indent=2) + "\n"
    else:
        text = "".join(f"{p}\t{r.text}\t{r.confidence:.6f}\n" for p, r in zip(paths, preds, strict=False))
    if output is not None:
        atomic_write_text(output, text)
    else:
        typer.echo(text, nl=False)
