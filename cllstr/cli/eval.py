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
    decoder: str = typer.Option("greedy", "--decoder", help="greedy | beam | both (greedy and beam side by side)."),
    beam_width: int = typer.Option(10, "--beam-width", min=1, help="Beams kept per step (beam)."),
    lexicon: str | None = typer.Option(None, "--lexicon", help="Word list file or wordfreq:LANGS[:N] (beam)."),
    oov_penalty: float = typer.Option(-10.0, "--oov-penalty", help="Log-probability a non-word pays (lexicon)."),
) -> None:
    """Evaluate a checkpoint per language; prints the Markdown table (macro and sample-weighted averages)."""
    from cllstr.eval.checkpoint import evaluate_checkpoint, script_id_checkpoint
    from cllstr.eval.gallery import GalleryCollector, write_gallery
    from cllstr.scoring.evaluate import to_markdown, write_report

    if not checkpoint.is_file():
        usage(f"checkpoint not found: {checkpoint}", "CHECKPOINT")
    if not data_root.is_dir():
        usage(f"data folder not found: {data_root}", "--data-root")
    if decoder not in ("greedy", "beam", "both"):
        usage(f"must be greedy, beam or both, got {decoder!r}", "--decoder")
    if lexicon is not None and decoder == "greedy":
        decoder = "beam"
    decoders = _decoders(checkpoint, decoder, beam_width, lexicon, oov_penalty)
    collector = GalleryCollector(worst_k=gallery_size) if gallery is not None else None
    reports = {}
    try:
        names = [s.strip() for s in langs.split(",") if s.strip()] if langs else None
        for kind, dec in decoders.items():
            reports[kind] = evaluate_checkpoint(
                checkpoint, data_root, split, names, batch_size, max_samples, gt_in_charset=charset_gt,
                device=device, precision=precision, on_batch=collector if kind == list(decoders)[-1] else None,
                decoder=dec)
        script_id = script_id_checkpoint(checkpoint, data_root, split, names, batch_size, max_samples, device=device,
                                         precision=precision)
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(one_line(e))
    report = reports[list(decoders)[-1]]
    extra = {"checkpoint": str(checkpoint), "split": split, "decoder": list(decoders)[-1]}
    if len(reports) > 1:
        extra["greedy"] = reports["greedy"].to_dict()
    if script_id is not None:  # models with a script head (grouped)
        extra["script_id"] = script_id.to_dict()
    write_report(report, json_out, md_out, extra=extra)
    for kind, rep in reports.items():
        typer.echo(to_markdown(rep, title=f"{checkpoint} on {split}, {kind} decoding"))
    if len(reports) > 1:
        typer.echo(_side_by_side(reports))
    if script_id is not None:
        typer.echo(script_id.to_markdown())
    if collector is not None:
        paths = write_gallery(collector, gallery, "worst", title=f"worst errors of {checkpoint} on {split}")
        typer.echo(f"gallery: {len(paths)} sheet(s) in {gallery} (index.md)")


def _decoders(checkpoint: Path, decoder: str, beam_width: int, lexicon: str | None, oov_penalty: float) -> dict:
    """``{"greedy": None}``, ``{"beam": DecoderConfig}`` or both, in that order."""
    from cllstr.decoding.ctc import DecoderConfig

    out: dict = {}
    if decoder in ("greedy", "both"):
        out["greedy"] = None
    if decoder in ("beam", "both"):
        lex = None
        if lexicon:
            from cllstr.recognizer import Recognizer
            from cllstr.text.lexicon import load_lexicon

            try:
                charset = Recognizer.from_checkpoint(checkpoint, device="cpu").charset
            except (FileNotFoundError, ValueError, KeyError) as e:
                fail(one_line(e))
            try:
                lex = load_lexicon(lexicon, charset)
            except (OSError, ValueError, KeyError) as e:
                usage(one_line(e), "--lexicon")
        out["beam"] = DecoderConfig("beam", beam_width, 1, lex, oov_penalty)
    return out


def _side_by_side(reports: dict) -> str:
    """Word accuracy and 1-NED per language of each decoder, and the beam's gain."""
    greedy, beam = reports["greedy"], reports["beam"]
    lines = ["| Language | Acc greedy | Acc beam | gain | 1-NED greedy | 1-NED beam | gain |", "|" + "---|" * 7]
    for lang in greedy.languages:
        g, b = greedy.languages[lang], beam.languages[lang]
        cells = [g.accuracy, b.accuracy, b.accuracy - g.accuracy, g.one_minus_ned, b.one_minus_ned,
                 b.one_minus_ned - g.one_minus_ned]
        fmt = ("{:.2f}", "{:.2f}", "{:+.2f}") * 2
        lines.append(f"| {lang} | " + " | ".join(f.format(100 * c) for f, c in zip(fmt, cells, strict=True)) + " |")
    return "\n".join(lines) + "\n"
