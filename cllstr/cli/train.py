"""``cllstr train``: train a CTC recogniser (mono / joint / cascade) on a select-data mixture.

Options override a ``--config`` file (YAML/TOML), which overrides the reference defaults; ``--set key=value``
reaches every other field (``--set optim.pct_start=0.2``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import typer

from cllstr.cli.errors import Interrupted, one_line, usage
from cllstr.train.config import TrainConfig, apply_overrides, load_config


def _caps(items: list[str]) -> dict[str, int]:
    from cllstr.data.mixture.select_data import MixSpecError, parse_caps

    try:
        return parse_caps(",".join(items))
    except MixSpecError as e:
        usage(str(e), "--cap")


def check_run_inputs(cfg: TrainConfig, resume: bool) -> None:
    """Catch what a person typed wrong before any data is read: the model, the select-data string, the batch ratio,
    the data root, the run folder of a ``--resume`` and the ``--init-from`` checkpoint."""
    from cllstr.data.mixture.select_data import MixSpecError, parse_batch_ratio, parse_select_data
    from cllstr.models import list_models

    if cfg.model not in list_models():
        usage(f"unknown model {cfg.model!r}; known models: {', '.join(list_models())}", "--model")
    try:
        names = parse_select_data(cfg.data.select_data)
    except MixSpecError as e:
        usage(str(e), "--select-data")
    if cfg.data.batch_ratio is not None and names != ["/"]:
        try:
            parse_batch_ratio(cfg.data.batch_ratio, len(names))
        except (MixSpecError, ValueError) as e:
            usage(str(e), "--batch-ratio")
    for key, value in (("--iterations", cfg.iterations), ("--batch-size", cfg.batch_size)):
        if value < 1:
            usage(f"must be >= 1, got {value}", key)
    root = Path(cfg.data.root)
    if not root.is_dir():
        usage(f"data folder not found: {root} (make one with `cllstr synth --profile mlt19-mini --out {root}`)",
              "--data-root")
    if resume and not (Path(cfg.out_dir) / "last.pt").is_file():
        usage(f"nothing to resume: {Path(cfg.out_dir) / 'last.pt'} does not exist", "--resume")
    if cfg.init_from and not Path(cfg.init_from).is_file():
        usage(f"checkpoint not found: {cfg.init_from}", "--init-from")
    from cllstr.train.grouping import GroupingError, check_grouping

    g = cfg.grouping
    try:
        check_grouping(g.heads, g.mode, g.tau, g.epsilon, g.mu, g.weight)
    except GroupingError as e:
        usage(str(e), e.option)


def _resume_command() -> str:
    """The command line of this process with ``--resume`` added (what to type to continue)."""
    args = [a for a in sys.argv[1:] if a != "--resume"]
    return " ".join(["cllstr", *(shlex.quote(a) for a in args), "--resume"])


def train(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML/TOML config file."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name (cllstr.models.list_models())."),
    data_root: str | None = typer.Option(None, "--data-root", "-d", help="Root with training/validation/evaluation."),
    select_data: str | None = typer.Option(None, "--select-data", "-s", help="e.g. lang_CBHJAKL, SynthMLT_K-lang_K."),
    cap: list[str] = typer.Option([], "--cap", help="Per-dataset cap NAME=COUNT (repeatable or comma-separated)."),
    batch_ratio: str | None = typer.Option(None, "--batch-ratio", help="Per-source batch shares, e.g. 0.5-0.5."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b"),
    iterations: int | None = typer.Option(None, "--iterations", "-n", help="Optimiser steps (OneCycle length)."),
    val_interval: int | None = typer.Option(None, help="Validate every N iterations (0: never)."),
    val_samples: int | None = typer.Option(None, help="At most N validation samples per language."),
    out: str | None = typer.Option(None, "--out", "-o", help="Run directory (checkpoints, logs)."),
    lr: float | None = typer.Option(None, help="Peak learning rate (AdamW + OneCycle)."),
    precision: str | None = typer.Option(None, help="auto | bf16 | fp16 | fp32."),
    channels_last: bool | None = typer.Option(None, "--channels-last/--no-channels-last"),
    compile: bool | None = typer.Option(None, "--compile/--no-compile", help="torch.compile the model."),
    threads: int | None = typer.Option(None, help="CPU threads."),
    workers: int | None = typer.Option(None, help="Data loader worker processes."),
    loader: str | None = typer.Option(None, "--loader", help="torch | dali | auto (DALI when installed)."),
    charset: str | None = typer.Option(None, help="Charset file (default: built from the training labels)."),
    reference_charset: bool | None = typer.Option(
        None, "--reference-charset/--no-reference-charset",
        help="--charset is a CLL-STR/DTRB table ([PAD] [UNK] space first; unknown characters train as [UNK])."),
    device: str | None = typer.Option(None, help="auto | cpu | cuda[:i]."),
    seed: int | None = typer.Option(None),
    init_from: str | None = typer.Option(None, "--init-from", help="Cascade: initialise from this checkpoint."),
    freeze: bool = typer.Option(False, "--freeze", help="With --init-from: train only the classifier."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/last.pt exactly."),
    max_minutes: float | None = typer.Option(None, help="Wall-clock budget; stops with a checkpoint."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard scalars."),
    heads: int | None = typer.Option(None, "--heads", help="Recognition heads over one shared encoder (grouping)."),
    grouping: str | None = typer.Option(None, "--grouping",
                                        help="auto (gumbel when --heads > 1) | none | gumbel | "
                                             "fixed:AK-BCHJL (one head per group) | fixed:one-per-script."),
    tau: float | None = typer.Option(None, "--tau", help="Gumbel-Softmax temperature."),
    epsilon: float | None = typer.Option(None, "--epsilon", help="Base coefficient of the integrated loss (>= 0)."),
    mu: float | None = typer.Option(None, "--mu", help="Least task probability per head (grouping loss)."),
    grouping_weight: float | None = typer.Option(None, "--grouping-weight", help="Weight of the grouping loss."),
    set_: list[str] = typer.Option([], "--set", help="Any config field: key.sub=value (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", help="Data-parallel ranks on this machine: launches "
                                       "torchrun (gloo on CPU, NCCL on GPUs); --batch-size is the global batch."),
) -> None:
    """Train a recogniser; writes OUT/last.pt, OUT/best.pt (best mean 1-NED), log.jsonl, train.csv, val.csv."""
    from cllstr.train.engine import TrainingInterrupted
    from cllstr.train.engine import train as run_training

    try:
        cfg = load_config(config) if config else TrainConfig()
        overrides = {
            "model": model, "data.root": data_root, "data.select_data": select_data, "data.batch_ratio": batch_ratio,
            "batch_size": batch_size,
            "iterations": iterations, "val_interval": val_interval, "data.val_samples": val_samples, "out_dir": out,
            "optim.lr": lr, "precision": precision, "channels_last": channels_last, "compile": compile,
            "threads": threads, "data.workers": workers, "data.loader": loader, "data.charset": charset,
            "data.charset_reference": reference_charset,
            "device": device, "seed": seed,
            "init_from": init_from, "max_minutes": max_minutes,
            "grouping.heads": heads, "grouping.mode": grouping, "grouping.tau": tau, "grouping.epsilon": epsilon,
            "grouping.mu": mu, "grouping.weight": grouping_weight,
        }
        items = [f"{k}={json.dumps(v)}" for k, v in overrides.items() if v is not None]
        if cap:
            items.append(f"data.caps={json.dumps(_caps(cap))}")
        if freeze:
            items.append("freeze=true")
        if tensorboard:
            items.append("tensorboard=true")
        cfg = apply_overrides(cfg, items + list(set_))
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        usage(one_line(e))
    check_run_inputs(cfg, resume)
    if nproc_per_node < 1:
        usage(f"must be at least 1, got {nproc_per_node}", "--nproc-per-node")
    if nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(_launch_torchrun(nproc_per_node))
    try:
        _, summary = run_training(cfg, resume=resume, quiet=quiet)
    except TrainingInterrupted as e:
        raise Interrupted(f"{e}; continue with: {_resume_command()}") from None
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(summary))


def _launch_torchrun(nproc: int) -> int:
    """Run this ``cllstr train`` command line under ``torchrun --standalone --nproc-per-node nproc``; its exit code."""
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc-per-node":
            skip = True
        elif not a.startswith("--nproc-per-node="):
            args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "cllstr.cli.main", *args]
    return subprocess.run(cmd, check=False).returncode
