"""``cllstr predict``: recognise image files (or a folder) with a checkpoint; prints or writes JSON / TSV.

Images that cannot be read or decoded are reported on stderr (one line each) and left out of the output; the
command then exits with 1 after writing the others. Files of a ``--folder`` without an image extension are counted in
a warning, never dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cllstr.atomic import atomic_write_bytes
from cllstr.cli.errors import fail, one_line, usage

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pbm", ".pgm",
               ".ppm", ".pnm"}


def _recognise(rec, paths: list[Path], batch_size: int, show_progress: bool) -> tuple[list, list[str]]:
    """Predictions for ``paths`` (None for an unreadable image) and the one-line problems found."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cllstr.data.loading.decode import to_batch_tensor

    preds: list = []
    problems: list[str] = []
    columns = (TextColumn("recognising"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not show_progress, transient=True) as bar:
        task = bar.add_task("predict", total=len(paths))
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            arrays: list = []
            for p in chunk:  # a bad image drops out here; the rest of its batch still runs as one batch
                try:
                    arrays.append(rec.load(p))
                except (OSError, ValueError) as e:
                    arrays.append(None)
                    problems.append(one_line(e))
            good = [a for a in arrays if a is not None]
            done = iter(rec.predict_tensor(to_batch_tensor(good)) if good else ())
            preds.extend(None if a is None else next(done) for a in arrays)
            bar.advance(task, len(chunk))
    return preds, problems


def _list_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """The images of ``folder`` (by extension, sorted) and the other files in it (left out, reported)."""
    files = sorted(p for p in folder.iterdir() if not p.is_dir())
    images = [p for p in files if p.suffix.lower() in _EXTENSIONS]
    return images, [p for p in files if p.suffix.lower() not in _EXTENSIONS]


def _encode(text: str, fmt: str) -> bytes:
    """``text`` as UTF-8. A file name that is not UTF-8 keeps its bytes in TSV (as ``ls`` prints it) and becomes a
    ``\\udcXX`` escape in JSON (``os.fsencode(json.load(...)[i]["path"])`` gives the bytes back)."""
    return text.encode("utf-8", "surrogateescape" if fmt == "tsv" else "backslashreplace")


def predict(
    images: list[Path] = typer.Argument(None, help="Image files."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", "-m", help="A cllstr checkpoint."),
    onnx: Path | None = typer.Option(None, "--onnx", help="Instead of -m: an ONNX file from 'cllstr export' "
                                     "(runs with onnxruntime on the CPU)."),
    folder: Path | None = typer.Option(None, "--folder", "-f", help="Recognise every image in this folder."),
    fmt: str = typer.Option("tsv", "--format", help="tsv | json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", min=1),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr (large inputs)."),
    decoder: str = typer.Option("greedy", "--decoder", help="greedy | beam (prefix beam search)."),
    beam_width: int = typer.Option(10, "--beam-width", min=1, help="Beams kept per step (beam)."),
    lexicon: str | None = typer.Option(None, "--lexicon", help="Word list file or wordfreq:LANGS[:N] (implies beam)."),
    oov_penalty: float = typer.Option(-10.0, "--oov-penalty", help="Log-probability a non-word pays (lexicon)."),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Alternatives per image with their log-probabilities "
                              "(implies beam)."),
) -> None:
    """Print ``path<TAB>text<TAB>confidence`` (or a JSON list); Arabic text comes out in logical order."""
    from cllstr.recognizer import Recognizer

    if fmt not in ("tsv", "json"):
        usage(f"must be tsv or json, got {fmt!r}", "--format")
    if (checkpoint is None) == (onnx is None):
        usage("give one of --checkpoint / -m and --onnx")
    if checkpoint is not None and not checkpoint.is_file():
        usage(f"checkpoint not found: {checkpoint}", "--checkpoint")
    if onnx is not None and not onnx.is_file():
        usage(f"ONNX model not found: {onnx}", "--onnx")
    paths = list(images or [])
    if folder is not None:
        if not folder.is_dir():
            usage(f"folder not found: {folder}", "--folder")
        images_in, others = _list_folder(folder)
        paths += images_in
        if not paths:
            fail(f"no image ({', '.join(sorted(_EXTENSIONS))}) in {folder}")
        if others:
            names = ", ".join(p.name for p in others[:3]) + (", ..." if len(others) > 3 else "")
            typer.echo(f"warning: left out {len(others)} file(s) of {folder} without an image extension: {names}",
                       err=True)
    if not paths:
        usage("give image files or --folder")
    if decoder not in ("greedy", "beam"):
        usage(f"must be greedy or beam, got {decoder!r}", "--decoder")
    if lexicon is not None or top_k > 1:
        decoder = "beam"
    if top_k > beam_width:
        usage(f"must be <= --beam-width ({beam_width}), got {top_k}", "--top-k")
    try:
        if onnx is not None:
            from cllstr.deploy import OnnxModel

            rec = OnnxModel(onnx).recognizer(batch_size)
        else:
            rec = Recognizer.from_checkpoint(checkpoint, device=device, precision=precision, batch_size=batch_size)
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(f"{'ONNX model' if onnx is not None else 'checkpoint'} {onnx or checkpoint}: {one_line(e)}")
    if decoder == "beam" and rec.prediction != "ctc":
        usage(f"beam search needs a CTC model; this model's head is {rec.prediction!r}", "--decoder")
    if decoder == "beam":
        from cllstr.decoding.ctc import DecoderConfig
        from cllstr.text.lexicon import load_lexicon

        try:
            lex = load_lexicon(lexicon, rec.charset) if lexicon else None
        except (OSError, ValueError, KeyError) as e:
            usage(one_line(e), "--lexicon")
        rec.decoder = DecoderConfig("beam", beam_width, top_k, lex, oov_penalty)
    preds, problems = _recognise(rec, paths, batch_size, progress and len(paths) > batch_size)
    done = [(p, r) for p, r in zip(paths, preds, strict=True) if r is not None]
    if fmt == "json":
        rows = []
        for p, r in done:
            row = {"path": str(p), "text": r.text, "confidence": round(r.confidence, 6)}
            if r.script is not None:  # a script head's answer (grouped models) or the recognised letters' script
                row["script"] = r.script
            if r.script_prob is not None:
                row["script_prob"] = round(r.script_prob, 6)
            if top_k > 1:
                row["alternatives"] = [{"text": h.text, "log_prob": round(h.log_prob, 6), "in_lexicon": h.in_lexicon}
                                       for h in r.alternatives]
            rows.append(row)
        text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    else:  # path, text, confidence, [script, script probability,] then (--top-k) alternative/log-probability pairs
        text = "".join(f"{p}\t{r.text}\t{r.confidence:.6f}"
                       + (f"\t{r.script}\t{r.script_prob:.6f}" if r.script_prob is not None else "")
                       + "".join(f"\t{h.text}\t{h.log_prob:.4f}" for h in (r.alternatives if top_k > 1 else ()))
                       + "\n" for p, r in done)
    if output is not None:
        atomic_write_bytes(output, _encode(text, fmt))
    else:
        typer.echo(_encode(text, fmt), nl=False)
    for line in problems:
        typer.echo(f"error: {line}", err=True)
    if problems:
        fail(f"{len(problems)} of {len(paths)} image(s) could not be read; the others were recognised")
