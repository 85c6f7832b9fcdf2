"""``cllstr prune``: shrink each head of a grouped model to the characters of the scripts assigned to it."""

from __future__ import annotations

from pathlib import Path

import typer

from cllstr.cli.errors import fail, one_line, usage


def prune(
    checkpoint: Path = typer.Argument(..., help="A grouped-model checkpoint (best.pt / last.pt of a --heads M run)."),
    out: Path = typer.Option(..., "-o", "--out", help="Write the pruned inference checkpoint here."),
) -> None:
    """Prune every head's classifier to its scripts' characters (plus the blank and neutral characters such as digits
    and punctuation) and print the parameters per head before and after. The pruned checkpoint works with eval,
    predict and export as it is."""
    from cllstr.train.prune import format_report, prune_checkpoint

    if out.resolve() == checkpoint.resolve():
        usage("must differ from CHECKPOINT (the original is kept)", "'-o' / '--out'")
    if out.is_dir():
        usage(f"{out} is a directory; give a file name such as {out / 'pruned.pt'}", "'-o' / '--out'")
    if not checkpoint.is_file():
        fail(f"checkpoint not found: {checkpoint}")
    try:
        report = prune_checkpoint(checkpoint, out)
    except (ValueError, KeyError) as e:
        fail(one_line(e))
    typer.echo(format_report(report))
    typer.echo(f"wrote {out}")
