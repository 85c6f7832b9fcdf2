"""``cllstr demo``: the main job on the built-in default — synthesise → train → evaluate → show what the model reads.

1. renders the datasets of the ``mlt19-mini`` synthetic profile that the mixture needs (the reference tree
   ``{training,validation,evaluation}/<LANG>``, and ``training/SynthMLT_<LANG>`` when selected) at ``--scale`` into
   ``OUT/data`` (kept and reused: generation is resumable);
2. trains ``--model`` jointly on the 7 scripts (most of each batch Latin) into ``OUT/run`` (resumed when
   interrupted; a finished run is not trained again);
3. evaluates the best checkpoint on ``OUT/data/evaluation/<LANG>``, prints the per-language table (also
   ``OUT/eval.json``, ``OUT/eval.md``), draws ``OUT/reads.png`` — evaluation crops per script with the prediction,
   the ground truth and ✓/✗ — saves a few crops under ``OUT/samples/`` and prints the ``cllstr predict`` command that
   reads them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from cllstr.cli.errors import Interrupted, usage

#: The default recipe, chosen by measurement on 2 CPU cores (README: what it trains and how long): a CRNN at half
#: the reference width (VGG 32-64-128-256, BiLSTM 128) with BatchNorm after every convolution, which leaves the CTC
#: plateau after a few hundred steps instead of ~1000, trained on the seven MLT19-like ("real" style) sets at scale
#: 0.2 with 55% of every batch Latin; AdamW at a peak learning rate of 2e-3, a 15% warm-up.
DEMO_MODEL = "crnn"
DEMO_MODEL_KWARGS = {"out_channels": 256, "hidden_size": 128, "batch_norm": True}
DEMO_SELECT = "lang_CBHJAKL"
DEMO_BATCH_RATIO = "0.075-0.075-0.075-0.075-0.075-0.075-0.55"
DEMO_SCALE = 0.2
DEMO_ITERS = 2000
DEMO_BATCH = 64
DEMO_LR = 2e-3
DEMO_PCT_START = 0.15


def _sheet(collector, path: Path, title: str) -> None:
    """All languages' first samples stacked into one PNG (written atomically)."""
    from PIL import Image

    from cllstr.eval.gallery import render_sheet

    parts = []
    for lang in collector.languages:
        entries = collector.first.get(lang, [])
        ok = sum(e.correct for e in entries)
        parts.append(render_sheet(entries, f"{lang}: {ok}/{len(entries)} read correctly"))
    width = max(p.width for p in parts)
    sheet = Image.new("RGB", (width, sum(p.height for p in parts) + 8 * len(parts)), (255, 255, 255))
    y = 0
    for p in parts:
        sheet.paste(p, (0, y))
        y += p.height + 8
    tmp = path.with_name(f".{path.name}.tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(path)


def demo(
    out: Path = typer.Option(Path("demo"), "--out", "-o", help="Folder for the data, the run and the report."),
    scale: float = typer.Option(DEMO_SCALE, help="mlt19-mini scale (0.01 CI, 0.1 default profile, 1.0 full size)."),
    model: str = typer.Option(DEMO_MODEL, "--model", "-m", help="Model to train (cllstr.models.list_models())."),
    select_data: str = typer.Option(DEMO_SELECT, "--select-data", "-s", help="Training mixture."),
    batch_ratio: str | None = typer.Option(DEMO_BATCH_RATIO, "--batch-ratio",
                                           help="Per-source batch shares ('none': proportional)."),
    iterations: int = typer.Option(DEMO_ITERS, "--iters", "-n", help="Training iterations (the OneCycle length)."),
    batch_size: int = typer.Option(DEMO_BATCH, "--batch-size", "-b"),
    val_interval: int = typer.Option(250, help="Validate every N iterations."),
    lr: float = typer.Option(DEMO_LR, help="Peak learning rate (AdamW + OneCycle)."),
    seed: int = typer.Option(0, help="Seed of the data and of the training run."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-j", help="Synthesis processes."),
    samples: int = typer.Option(6, help="Crops per script on the reads.png sheet."),
) -> None:
    """Synthesise a small 7-script dataset, train a recogniser on it, evaluate it per language, show what it reads."""
    from cllstr.data.mixture.select_data import MixSpecError, parse_batch_ratio, parse_select_data, required_folders
    from cllstr.eval.checkpoint import evaluate_checkpoint
    from cllstr.eval.gallery import GalleryCollector
    from cllstr.models import list_models
    from cllstr.scoring.evaluate import to_markdown, write_report
    from cllstr.synth.generate import generate
    from cllstr.synth.profiles import mlt19_mini
    from cllstr.train.config import DataConfig, OptimConfig, TrainConfig
    from cllstr.train.engine import TrainingInterrupted, train

    for name, value in (("--iters", iterations), ("--batch-size", batch_size), ("--scale", scale)):
        if not value > 0:
            usage(f"must be positive, got {value}", name)
    if model not in list_models():
        usage(f"unknown model {model!r}; known models: {', '.join(list_models())}", "--model")
    try:
        names = parse_select_data(select_data)
    except MixSpecError as e:
        usage(str(e), "--select-data")
    if batch_ratio is not None and batch_ratio.lower() == "none":
        batch_ratio = None
    if batch_ratio is not None:
        try:
            parse_batch_ratio(batch_ratio, len(names))
        except (MixSpecError, ValueError) as e:
            usage(f"{e} (the mixture {select_data} has {len(names)} sources)", "--batch-ratio")
    t0 = time.perf_counter()
    data_root, run_dir = out / "data", out / "run"
    typer.echo(f"[1/3] synthesising mlt19-mini at scale {scale} into {data_root}")
    need = set(required_folders(select_data))
    generate([s for s in mlt19_mini(scale=scale, seed=seed) if s.relpath in need], data_root, workers=workers)
    t_synth = time.perf_counter() - t0
    typer.echo(f"[2/3] training {model} on {select_data} for {iterations} iterations into {run_dir}")
    cfg = TrainConfig(
        model=model, model_kwargs=dict(DEMO_MODEL_KWARGS) if model == DEMO_MODEL else {}, out_dir=str(run_dir),
        batch_size=batch_size, iterations=iterations, val_interval=val_interval, save_interval=val_interval, seed=seed,
        data=DataConfig(root=str(data_root), select_data=select_data, batch_ratio=batch_ratio, val_samples=300),
        optim=OptimConfig(lr=lr, pct_start=DEMO_PCT_START),
    )
    try:
        train(cfg, resume=(run_dir / "last.pt").is_file())
    except TrainingInterrupted as e:
        raise Interrupted(f"{e}; run the same `cllstr demo` command again to continue") from None
    t_train = time.perf_counter() - t0 - t_synth
    ckpt = run_dir / "best.pt" if (run_dir / "best.pt").is_file() else run_dir / "last.pt"
    typer.echo(f"[3/3] evaluating {ckpt} on {data_root / 'evaluation'}")
    collector = GalleryCollector(first_k=samples, worst_k=0)
    report = evaluate_checkpoint(ckpt, data_root, "evaluation", on_batch=collector)
    write_report(report, out / "eval.json", out / "eval.md", extra={"checkpoint": str(ckpt), "scale": scale,
                                                                   "model": model, "iterations": iterations})
    typer.echo(to_markdown(report, title=f"{model}, {select_data}, mlt19-mini x{scale}, {iterations} iterations"))
    _sheet(collector, out / "reads.png", "what the model reads")
    sample_dir = out / "samples"
    sample_dir.mkdir(parents=True, exist_ok=True)
    for lang in collector.languages:
        for i, entry in enumerate(collector.first.get(lang, [])[:2]):
            entry.image.save(sample_dir / f"{lang}_{i}.png")
    for lang in collector.languages:
        shown = ", ".join(f"{'✓' if e.correct else '✗'} {e.pred!r}" + ("" if e.correct else f" (gt {e.gt!r})")
                          for e in collector.first.get(lang, [])[:3])
        typer.echo(f"  {lang}: {shown}")
    typer.echo(f"what it reads: {out / 'reads.png'}")
    typer.echo(f"read your own word crops: cllstr predict -m {ckpt} {sample_dir}/*.png   (or --folder DIR)")
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f} s (synthesis {t_synth:.0f} s, training "
               f"{t_train:.0f} s); report in {out / 'eval.md'}")
