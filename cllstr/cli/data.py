"""``cllstr data``: create, inspect, validate LMDB stores and build charsets from them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cllstr.cli.errors import fail, one_line
from cllstr.cli.examples import epilog
from cllstr.text.charset import Charset

app = typer.Typer(help="LMDB stores: create, inspect, validate, charset.", no_args_is_help=True)
console = Console()


def _load_charset(path: Path | None, reference: bool) -> Charset | None:
    if path is None:
        return None
    try:
        return Charset.from_reference_file(path) if reference else Charset.from_file(path)
    except (OSError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--charset") from None


@app.command("create", epilog=epilog("data create"))
def create(
    image_dir: Path = typer.Argument(..., help="Folder the ground-truth image paths are relative to."),
    gt_file: Path = typer.Argument(..., help="UTF-8 file of 'path<TAB>label' lines."),
    output: Path = typer.Argument(..., help="LMDB directory to create."),
    check: bool = typer.Option(True, "--check/--no-check", help="Decode every image; skip undecodable ones."),
    reference_labels: bool = typer.Option(
        True, "--reference-labels/--raw-labels", help="Join the reference's tab-joined grapheme tokens."
    ),
    unshape_arabic: bool = typer.Option(False, help="Map Arabic presentation forms to base letters."),
    script: str | None = typer.Option(None, help="Script name stored in the meta key (ARA, BEN, ...)."),
    overwrite: bool = typer.Option(False, help="Replace an existing LMDB."),
    resume: bool = typer.Option(False, help="Continue an interrupted run."),
    commit_every: int = typer.Option(1000, min=1, help="Records per transaction."),
) -> None:
    """Create an LMDB store (published format) from an image folder and a ground-truth file."""
    from cllstr.data.store.create import create_lmdb
    from cllstr.scripts import get_script

    if script is not None:
        try:
            get_script(script)
        except KeyError as e:
            raise typer.BadParameter(e.args[0], param_hint="--script") from None
    try:
        rep = create_lmdb(
            image_dir, gt_file, output, check=check, reference_labels=reference_labels,
            unshape_arabic=unshape_arabic, script=script, overwrite=overwrite, resume=resume,
            commit_every=commit_every,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        fail(str(e))
    for lineno, text in rep.bad_lines[:10]:
        console.print(f"[yellow]{gt_file}:{lineno}: no 'path<TAB>label': {text[:60]!r}[/yellow]")
    for lineno, rel in rep.missing_files[:10]:
        console.print(f"[yellow]{gt_file}:{lineno}: image not found: {rel}[/yellow]")
    for lineno, rel, why in rep.invalid_images[:10]:
        console.print(f"[yellow]{gt_file}:{lineno}: invalid image {rel}: {why}[/yellow]")
    skipped = len(rep.bad_lines) + len(rep.missing_files) + len(rep.invalid_images)
    console.print(f"wrote {rep.written} records to {rep.path} ({skipped} skipped, resumed from {rep.resumed_from})")


@app.command("inspect", epilog=epilog("data inspect"))
def inspect(
    paths: list[Path] = typer.Argument(..., help="LMDB directories."),
    charset: Path | None = typer.Option(None, help="Charset file to measure coverage against."),
    reference_charset: bool = typer.Option(False, help="Prepend the reference special tokens to --charset."),
    mode: str = typer.Option("grapheme", help="Tokenizer for lengths: grapheme or codepoint."),
    limit: int | None = typer.Option(None, min=1, help="Inspect the first N records only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Counts, scripts, label lengths, image sizes and charset coverage of LMDB stores."""
    from cllstr.data.store.format import LmdbFormatError
    from cllstr.data.store.inspection import inspect_lmdb

    cs = _load_charset(charset, reference_charset)
    reports = []
    for p in paths:
        try:
            reports.append(inspect_lmdb(p, cs, mode=mode, limit=limit).to_dict())
        except (FileNotFoundError, LmdbFormatError, KeyError) as e:
            fail(one_line(e))
    if as_json:
        typer.echo(json.dumps(reports, ensure_ascii=False, indent=2))
        return
    table = Table(title="LMDB stores")
    for col in ("path", "samples", "scripts", "label len (min/mean/max)", "image WxH (mean)", "formats", "coverage"):
        table.add_column(col)
    for r in reports:
        scripts = ", ".join(f"{k} {v}" for k, v in list(r["scripts"].items())[:4])
        ll, w, h = r["label_length"], r["width"], r["height"]
        cov = "-" if r["coverage"] is None else f"{100 * r['coverage']:.2f}%"
        table.add_row(
            r["path"], str(r["num_samples"]), scripts, f"{ll['min']}/{ll['mean']}/{ll['max']}",
            f"{w['mean']}x{h['mean']}", ", ".join(f"{k} {v}" for k, v in r["formats"].items()), cov,
        )
    console.print(table)
    for r in reports:
        if r["unknown_chars"]:
            top = " ".join(f"{k!r}:{v}" for k, v in list(r["unknown_chars"].items())[:20])
            console.print(f"{r['path']}: out-of-charset tokens: {top}")


@app.command("validate", epilog=epilog("data validate"))
def validate(
    paths: list[Path] = typer.Argument(..., help="LMDB directories."),
    charset: Path | None = typer.Option(None, help="Report characters outside this charset file."),
    reference_charset: bool = typer.Option(False, help="Prepend the reference special tokens to --charset."),
    max_len: int | None = typer.Option(None, min=1, help="Report labels longer than this many tokens."),
    mode: str = typer.Option("grapheme", help="Tokenizer for --max-len without a charset."),
    allow: bool = typer.Option(False, "--allow", help="Exit 0 even when errors are found."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON reports."),
) -> None:
    """Decode every record; report corrupt images, empty/over-long labels, out-of-charset characters."""
    from cllstr.data.store.validate import validate_lmdb

    cs = _load_charset(charset, reference_charset)
    reports = [validate_lmdb(p, cs, max_len, mode=mode) for p in paths]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        for r in reports:
            status = "[green]ok[/green]" if r.ok else "[red]errors[/red]"
            console.print(f"{r.path}: {r.num_samples} records, {status}")
            for line in r.errors():
                console.print(f"  [red]error[/red]: {line}")
            for line in r.warnings():
                console.print(f"  [yellow]warning[/yellow]: {line}")
            if r.unknown_chars:
                top = " ".join(f"{k!r}:{v}" for k, v in r.unknown_chars.most_common(20))
                console.print(f"  out-of-charset: {top}")
    if not allow and not all(r.ok for r in reports):
        raise typer.Exit(1)


@app.command("charset", epilog=epilog("data charset"))
def charset(
    paths: list[Path] = typer.Argument(..., help="LMDB directories."),
    output: Path = typer.Option(..., "--output", "-o", help="Charset file to write (one token per line)."),
    mode: str = typer.Option("grapheme", help="grapheme or codepoint tokens."),
    min_count: int = typer.Option(1, min=1, help="Drop tokens seen fewer times."),
    script: list[str] | None = typer.Option(None, help="Keep only tokens of these scripts (repeatable)."),
    keep_neutral: bool = typer.Option(True, help="With --script, keep digits, punctuation and symbols too."),
    unshape_arabic: bool = typer.Option(False, help="Map Arabic presentation forms to base letters first."),
) -> None:
    """Build a charset file from the labels of LMDB stores."""
    from cllstr.data.store.charsets import charset_from_lmdbs
    from cllstr.data.store.format import LmdbFormatError

    try:
        cs, dropped = charset_from_lmdbs(
            paths, mode=mode, min_count=min_count, scripts=script, keep_neutral=keep_neutral, unshape=unshape_arabic
        )
    except (FileNotFoundError, LmdbFormatError, KeyError, ValueError) as e:
        fail(one_line(e))
    cs.save(output)
    console.print(f"wrote {len(cs)} tokens ({cs.mode}) to {output}; left out {len(dropped)} distinct tokens")
