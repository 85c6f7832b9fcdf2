"""``cllstr eval``: per-language word accuracy, 1-NED and CER of a checkpoint, as JSON and a Markdown table; with
``--gallery DIR`` also one PNG sheet per language of the worst errors (image, prediction, ground truth, confidence)."""

from __future__ import annotations

from pathlib import Path

import typer

from cllstr.cli.errors import fail, one_line, usage


def evaluate(
    checkpoint: Path = typer.Argument(..., help="A cllstr checkpoint (best.pt / last.pt)."),
    data_root: Path = typer.Option(..., "--data-root", "-d", help="Root with <split>/<LANG> folders."),
    split: str = typer.Option("evaluation", help="Split folder: evaluation | validation | training."),
    langs: str | None = typer.Option(None, help="Comma-separated languages (default: every folder of the split)."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", min=1),
    max_samples: int | None = typer.Option(None, min=1, help="At most N samples per language."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
    md_out: Path | None = typer.Option(None, "--md", help="Write the Markdown table."),
    gallery: Path | None = typer.Option(None, "--gallery", help="Write <LANG>.png sheets of the worst errors here."),
    gallery_size: int = typer.Option(24, "--gallery-size", min=1, help="Errors per language sheet."),
    charset_gt: bool = typer.Option(False, "--charset-gt", help="Reference protocol: drop ground-truth characters "
                                    "outside the model's charset (use with a full benchmark charset)."),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto", help="auto | bf16 | fp16 | fp32."),
) -> None:
    """Evaluate a checkpoint per language; prints the Markdown table (macro and sample-weighted averages)."""
    from cllstr.eval.checkpoint import evaluate_checkpoint
    from cllstr.eval.evaluate import to_markdown, write_report
    from cllstr.eval.gallery import GalleryCollector, write_gallery

    if not checkpoint.is_file():
        usage(f"checkpoint not found: {checkpoint}", "CHECKPOINT")
    if not data_root.is_dir():
        usage(f"data folder not found: {data_root}", "--data-root")
    collector = GalleryCollector(worst_k=gallery_size) if gallery is not None else None
    try:
        names = [s.strip() for s in langs.split(",") if s.strip()] if langs else None
        report = evaluate_checkpoint(checkpoint, data_root, split, names, batch_size, max_samples,
                                     gt_in_charset=charset_gt, device=device, precision=precision,
                                     on_batch=collector)
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(one_line(e))
    write_report(report, json_out, md_out, extra={"checkpoint": str(checkpoint), "split": split})
    typer.echo(to_markdown(report, title=f"{checkpoint} on {split}"))
    if collector is not None:
        paths = write_gallery(collector, gallery, "worst", title=f"worst errors of {checkpoint} on {split}")
        typer.echo(f"gallery: {len(paths)} sheet(s) in {gallery} (index.md)")
