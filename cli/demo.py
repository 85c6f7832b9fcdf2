"""``cllstr demo``: the main job on the built-in default — synthesise → train → evaluate → print the table.

1. renders the datasets of the ``mlt19-mini`` synthetic profile that the mixture needs (the reference tree
   ``{training,validation,evaluation}/<LANG>``, and ``training/SynthMLT_<LANG>`` when selected) at ``--scale`` into
   ``OUT/data`` (kept and reused: generation is resumable);
2. trains ``--model`` jointly on all 7 scripts (``lang_CBHJAKL``) into ``OUT/run`` (resumed when interrupted; a
   finished run is not trained again);
3. evaluates the best checkpoint on ``OUT/data/evaluation/<LANG>`` and prints the per-language table, also written to
   ``OUT/eval.json`` and ``OUT/eval.md``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo"), "--out", "-o", help="Folder for the data, the run and the report."),
    scale: float = typer.Option(0.02, help="mlt19-mini scale (0.01 CI, 0.1 default profile, 1.0 full size)."),
    model: str = typer.Option("svtr_tiny", "--model", "-m", help="Model to train (cllstr.models.list_models())."),
    select_data: str = typer.Option("lang_CBHJAKL", "--select-data", "-s", help="Training mixture."),
    iterations: int = typer.Option(300, "--iters", "-n", help="Training iterations (the OneCycle length)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    val_interval: int = typer.Option(100, help="Validate every N iterations."),
    seed: int = typer.Option(0, help="Seed of the data and of the training run."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-j", help="Synthesis processes."),
) -> None:
    """Synthesise a small 7-script dataset, train a recogniser jointly on it, evaluate it per language."""
    from cllstr.data.mixing import parse_select_data, validation_names
    from cllstr.eval.checkpoint import evaluate_checkpoint
    from cllstr.eval.evaluate import to_markdown, write_report
    from cllstr.synth.generate import generate
    from cllstr.synth.profiles import mlt19_mini
    from cllstr.train.config import DataConfig, TrainConfig
    from cllstr.train.engine import train

    if iterations < 1 or batch_size < 1 or scale <= 0:
        raise typer.BadParameter("--iters, --batch-size and --scale must be positive")
    t0 = time.perf_counter()
    data_root, run_dir = out / "data", out / "run"
    typer.echo(f"[1/3] synthesising mlt19-mini at scale {scale} into {data_root}")
    names = parse_select_data(select_data)
    need = {f"training/{n}" for n in names}
    need |= {f"{split}/{lang}" for split in ("validation", "evaluation") for lang in validation_names(names)}
    generate([s for s in mlt19_mini(scale=scale, seed=seed) if s.relpath in need], data_root, workers=workers)
    typer.echo(f"[2/3] training {model} on {select_data} for {iterations} iterations into {run_dir}")
    cfg = TrainConfig(
        model=model, out_dir=str(run_dir), batch_size=batch_size, iterations=iterations, val_interval=val_interval,
        save_interval=val_interval, seed=seed, data=DataConfig(root=str(data_root), select_data=select_data,
                                                               val_samples=200),
    )
    train(cfg, resume=(run_dir / "last.pt").is_file())
    ckpt = run_dir / "best.pt" if (run_dir / "best.pt").is_file() else run_dir / "last.pt"
    typer.echo(f"[3/3] evaluating {ckpt} on {data_root / 'evaluation'}")
    report = evaluate_checkpoint(ckpt, data_root, "evaluation")
    write_report(report, out / "eval.json", out / "eval.md", extra={"checkpoint": str(ckpt), "scale": scale,
                                                                   "model": model, "iterations": iterations})
    typer.echo(to_markdown(report, title=f"{model}, joint {select_data}, mlt19-mini x{scale}, {iterations} iterations"))
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f} s; report in {out / 'eval.md'}")
