"""``cllstr import``: convert a CLL-STR or deep-text-recognition-benchmark checkpoint into a cllstr checkpoint.

The result works with ``cllstr eval``, ``predict`` and ``train --init-from`` unchanged; it records the reference's
class table and preprocessing, and the architecture details reproduced from the reference (see
:mod:`cllstr.interop`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from cllstr.cli.errors import fail, one_line, usage


def import_checkpoint(
    checkpoint: Path = typer.Argument(..., help="The reference .pth (model.state_dict(), DataParallel or not)."),
    source: str = typer.Option(..., "--from", help="cll-str | dtrb."),
    arch: str = typer.Option(..., "--arch", help="CRNN | SVTR | Trans-Feat-Seq-Pred, e.g. TPS-ResNet-BiLSTM-Attn."),
    output: Path = typer.Option(..., "--output", "-o", help="The cllstr checkpoint to write."),
    charset: Path | None = typer.Option(None, "--charset", help="Charset file, one token per line (CLL-STR: "
                                        "charset/MLT19_charset.txt; DTRB: instead of --character)."),
    character: str | None = typer.Option(None, "--character", help="DTRB's --character string."),
    sensitive: bool = typer.Option(False, "--sensitive", help="DTRB's --sensitive character table."),
    img_h: int = typer.Option(32, "--img-h", min=8, help="The reference --imgH."),
    img_w: int = typer.Option(100, "--img-w", min=8, help="The reference --imgW."),
    pad: bool = typer.Option(False, "--pad", help="The reference --PAD (keep ratio, then pad)."),
    max_length: int = typer.Option(25, "--batch-max-length", min=1, help="The reference --batch_max_length."),
    tps_grid: str = typer.Option("reference", "--tps-grid", help="TPS models: reference (its float32 grid "
                                 "arithmetic, bit-exact in torch) | exact (float64: the same in ONNX Runtime)."),
) -> None:
    """Map the reference state dict onto the matching cllstr model and write a cllstr checkpoint."""
    from cllstr.checkpoint import save_checkpoint
    from cllstr.interop import DTRB_CHARACTERS, SOURCES, import_reference, parse_arch

    if source not in SOURCES:
        usage(f"must be one of {', '.join(SOURCES)}, got {source!r}", "--from")
    if tps_grid not in ("reference", "exact"):
        usage(f"must be reference or exact, got {tps_grid!r}", "--tps-grid")
    try:
        parse_arch(arch)
    except ValueError as e:
        usage(one_line(e), "--arch")
    if not checkpoint.is_file():
        usage(f"checkpoint not found: {checkpoint}", "CHECKPOINT")
    given = [n for n, v in (("--charset", charset), ("--character", character), ("--sensitive", sensitive)) if v]
    if len(given) > 1:
        usage(f"give one of --charset, --character, --sensitive, not {' and '.join(given)}")
    if source == "cll-str" and (character is not None or sensitive):
        usage("CLL-STR reads its class table from a file: use --charset charset/MLT19_charset.txt")
    if source == "cll-str" and charset is None:
        usage("CLL-STR checkpoints need --charset (the charset/MLT19_charset.txt they were trained with)")
    chars: list[str] | None = None
    if charset is not None:
        if not charset.is_file():
            usage(f"charset file not found: {charset}", "--charset")
        try:
            chars = [t[:-1] if t.endswith("\r") else t for t in charset.read_text(encoding="utf-8-sig").split("\n")]
        except (OSError, UnicodeDecodeError) as e:
            fail(f"charset file {charset} cannot be read: {one_line(e)}")
        if chars and chars[-1] == "":
            chars.pop()
        if not chars or any(not t for t in chars):
            fail(f"charset file {charset} has empty lines")
    elif character is not None:
        if not character:
            usage("must not be empty", "--character")
        chars = list(character)
    elif sensitive:
        chars = list(DTRB_CHARACTERS["sensitive"])
    try:
        result = import_reference(checkpoint, source, arch, chars, img_size=(img_h, img_w), pad=pad,
                                  max_length=max_length, tps_grid=tps_grid)
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(f"{checkpoint}: {one_line(e)}")
    save_checkpoint(result.checkpoint, output)
    typer.echo(f"{result.summary()}; wrote {output}")
    for line in result.differences:
        typer.echo(f"  reproduced: {line}")
