"""``cllstr export``: a checkpoint's model as ONNX (dynamic batch, for onnxruntime), TorchScript or torch.export."""

from __future__ import annotations

from pathlib import Path

import typer

from cllstr.cli.errors import fail, one_line, usage


def export(
    checkpoint: Path = typer.Argument(..., help="A cllstr checkpoint (trained or imported)."),
    onnx: Path | None = typer.Option(None, "--onnx", help="Write an ONNX model here (dynamic batch)."),
    torchscript: Path | None = typer.Option(None, "--torchscript", help="Write a traced TorchScript module here."),
    program: Path | None = typer.Option(None, "--export", help="Write a torch.export program here (.pt2)."),
    opset: int = typer.Option(17, "--opset", min=16, help="ONNX opset (>= 16: TPS needs GridSample)."),
) -> None:
    """Export the model (images to logits; decoding stays outside, so no custom op is needed)."""
    from cllstr.deploy import export_onnx, export_program, export_torchscript

    if onnx is None and torchscript is None and program is None:
        usage("give --onnx, --torchscript and/or --export")
    if not checkpoint.is_file():
        usage(f"checkpoint not found: {checkpoint}", "CHECKPOINT")
    try:
        if onnx is not None:
            export_onnx(checkpoint, onnx, opset)
            typer.echo(f"wrote {onnx} (ONNX opset {opset}, dynamic batch)")
        if torchscript is not None:
            export_torchscript(checkpoint, torchscript)
            typer.echo(f"wrote {torchscript} (TorchScript)")
        if program is not None:
            export_program(checkpoint, program)
            typer.echo(f"wrote {program} (torch.export, dynamic batch)")
    except ImportError as e:
        fail(f"ONNX export needs the onnx package: pip install 'cllstr[onnx]' ({one_line(e)})")
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(f"checkpoint {checkpoint}: {one_line(e)}")
