"""``cllstr study``: run a whole study (a grid of training runs) from one file or preset, resumably, and report it.

``cllstr study run --preset cll-joint --scale 0.01 --out studies/joint`` generates the synthetic data when it is
missing, trains and evaluates every run (finished runs are skipped on a re-run), and writes the report;
``cllstr study report studies/joint`` rewrites the tables (Markdown, CSV), plots and JSON summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cllstr.cli.errors import fail, one_line, usage
from cllstr.cli.examples import epilog

app = typer.Typer(help="Cross-lingual and data-mixing studies: many runs from one file, paper-style tables.",
                  no_args_is_help=True)


def _set_base(base: dict, items: list[str]) -> dict:
    """Apply dotted ``key=value`` overrides (YAML scalars) to a nested TrainConfig mapping."""
    from cllstr.config_io import parse_overrides
    from cllstr.study.spec import deep_merge

    try:
        pairs = parse_overrides(items)
    except ValueError as e:
        usage(str(e), "--set")
    for parts, value in pairs:
        node: dict = {}
        leaf = node
        for p in parts[:-1]:
            leaf = leaf.setdefault(p, {})
        leaf[parts[-1]] = value
        base = deep_merge(base, node)
    return base


@app.command("run", epilog=epilog("study run"))
def run(
    study: Annotated[Path | None, typer.Argument(help="Study file (YAML/TOML/JSON); or use --preset.")] = None,
    preset: Annotated[str | None, typer.Option(
        "--preset", "-p", help="cll-joint, cll-cascade, cll-synth-size, four-stage, lowres-seqmodel, task-grouping."
    )] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Study folder (runs, data, report).")] = None,
    scale: Annotated[float | None, typer.Option(help="Data/schedule scale (presets: 0.01 default, 1.0 paper).")] = None,
    protocol: Annotated[str, typer.Option("--protocol", help="Presets: gpu (the paper's schedule, shrunk with "
                                          "--scale) or cpu (measured 2-core recipe, data scale 0.2).")] = "gpu",
    seeds: Annotated[int | None, typer.Option(help="Number of seeds (21, 22, ...).")] = None,
    parallel: Annotated[int, typer.Option("--parallel", "-j", help="Runs at a time (one GPU each if several).")] = 1,
    data: Annotated[Path | None, typer.Option("--data", help="Data root (default: OUT/data, generated).")] = None,
    no_synth: Annotated[bool, typer.Option("--no-synth", help="Real data at --data: never synthesise.")] = False,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Replace the model axis.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="TrainConfig field for every run: k=v.")] = None,
    executor: Annotated[str, typer.Option(help="process (child processes), inline (this process) or ray (a task "
                                                "per run on a Ray cluster: pip install 'cllstr[ray]').")] = "process",
    address: Annotated[str | None, typer.Option("--address", help="Ray: auto, HOST:PORT, or none for a new local "
                                                "cluster.")] = None,
    cpus_per_run: Annotated[int, typer.Option("--cpus-per-run", help="Ray: CPUs (and threads) per run.")] = 1,
    gpus_per_run: Annotated[float, typer.Option("--gpus-per-run", help="Ray: GPUs per run.")] = 0.0,
    ranks_per_run: Annotated[int, typer.Option("--ranks-per-run", help="Ray: data-parallel ranks per run, a torchrun "
                                               "gang on one node (CPUs/GPUs per run are per rank).")] = 1,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    results_from: Annotated[list[Path] | None, typer.Option(
        "--results-from", help="Study or results folder (cllstr study export) whose finished runs count as done "
                               "here, matched by run hash (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the runs and exit.")] = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write the report at the end.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Expand the grid, run every unfinished run (resumable), then write the report."""
    from cllstr.study.presets import get_preset
    from cllstr.study.protocols import get_protocol
    from cllstr.study.runner import StudyRunner
    from cllstr.study.spec import ModelEntry, StudyError, default_seeds, expand, load_study, validate

    if (study is None) == (preset is None):
        usage("pass exactly one of a STUDY file or --preset NAME")
    if out is None:
        usage("--out DIR is required")
    try:
        if preset is not None:
            try:
                get_protocol(protocol)
            except KeyError as e:
                usage(one_line(e), "--protocol")
            try:
                spec = get_preset(preset, scale=scale, seeds=seeds or 1, protocol=protocol)
            except KeyError as e:
                usage(one_line(e), "--preset")
        else:
            if protocol != "gpu":
                usage("applies to --preset only (a study file states its own schedule)", "--protocol")
            spec = load_study(study)
            if scale is not None:
                spec.data.scale = scale
            if seeds is not None:
                spec.seeds = default_seeds(seeds)
        if data is not None:
            spec.data.root = str(data)
        if no_synth:
            if data is None:
                usage("needs --data pointing at a real data root", "--no-synth")
            spec.data.profile = None
        if model:
            spec.models = [ModelEntry(name) for name in model]
        spec.base = _set_base(spec.base, set_ or [])
        validate(spec, where=str(study or f"preset {preset}"))
        runs = expand(spec)
        if dry_run:
            for r in runs:
                dep = f" <- {r.depends_on}" if r.depends_on else ""
                typer.echo(f"{r.hash}  {r.model} | {r.row} | {r.mixture} | {r.init} | seed {r.seed} | "
                           f"{r.config.iterations} it x {r.config.batch_size}{dep}")
            typer.echo(f"{len(runs)} runs")
            return
        ray = None
        if executor == "ray":
            from cllstr.study.ray_executor import RayOptions

            try:
                ray = RayOptions(address, cpus_per_run, gpus_per_run, ranks_per_run=ranks_per_run)
            except ValueError as e:  # the message names the option
                usage(str(e))
        elif address is not None:
            usage("applies to --executor ray only", "--address")
        runner = StudyRunner(spec, out, parallel=parallel, executor=executor, quiet=quiet, device=device, ray=ray)
        if results_from:
            from cllstr.study.results import import_results

            try:
                got = import_results(results_from, out, runner.runs)
            except FileNotFoundError as e:
                usage(one_line(e), "--results-from")
            typer.echo(f"--results-from: {len(got)} finished run(s) taken over, not trained again")
        result = runner.run()
    except (StudyError, KeyError, ValueError, FileNotFoundError, FileExistsError, ConnectionError, ImportError) as e:
        fail(one_line(e))
    typer.echo(f"study {spec.name}: {len(result.done)} run(s) trained, {len(result.skipped)} already finished, "
               f"{len(result.failed)} failed, {result.seconds / 60:.1f} min wall time -> {out}")
    if report:
        from cllstr.study.report import write_report

        summary = write_report(out)
        typer.echo(f"report: {Path(out) / 'report' / 'report.md'}")
        for line in summary["findings"]:
            typer.echo(f"  {line}")
    if result.failed:
        raise typer.Exit(1)


@app.command("report", epilog=epilog("study report"))
def report_cmd(
    study_dir: Annotated[Path, typer.Argument(help="A study folder written by `cllstr study run`.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default: STUDY_DIR/report).")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG plots.")] = True,
) -> None:
    """Tables (Markdown + CSV) in the paper's layout, gain heatmap and bars, JSON summary."""
    from cllstr.study.report import write_report
    from cllstr.study.spec import StudyError

    try:
        summary = write_report(study_dir, out, plots=plots)
    except (FileNotFoundError, StudyError) as e:
        fail(one_line(e))
    typer.echo((Path(out) if out else study_dir / "report") / "report.md")
    typer.echo(f"{summary['runs']['done']}/{summary['runs']['total']} runs done")
    for line in summary["findings"]:
        typer.echo(f"  {line}")


@app.command("export", epilog=epilog("study export"))
def export_cmd(
    study_dir: Annotated[Path, typer.Argument(help="A study folder written by `cllstr study run`.")],
    dest: Annotated[Path, typer.Argument(help="Folder for study.json and the finished runs' result files.")],
) -> None:
    """Copy the finished runs' results (no checkpoints) into DEST: committable, readable by `cllstr study report`,
    and a `--results-from` source that lets another machine continue the study without retraining them."""
    from cllstr.study.results import export_results

    try:
        done = export_results(study_dir, dest)
    except (FileNotFoundError, ValueError) as e:
        fail(one_line(e))
    typer.echo(f"{len(done)} finished run(s) -> {dest}")


@app.command("compare", epilog=epilog("study compare"))
def compare_cmd(
    a: Annotated[str, typer.Argument(help="Study or run folder, numbers CSV, or 'paper' (the published findings).")],
    b: Annotated[str, typer.Argument(help="The same kinds as A.")],
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metrics to show (default: all found).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the Markdown here.")] = None,
) -> None:
    """Side by side: two studies or runs (A, B, B - A per row and language), or a study against the paper's findings
    (its seed-paired gain and whether the published direction holds)."""
    from cllstr.atomic import atomic_write_text
    from cllstr.study.compare import compare
    from cllstr.study.spec import METRICS, StudyError

    for m in metric or []:
        if m not in METRICS:
            usage(f"unknown metric {m!r}; known: {', '.join(METRICS)}", "--metric")
    try:
        text = compare(a, b, list(metric) if metric else None)
    except (FileNotFoundError, ValueError, StudyError) as e:
        fail(one_line(e))
    if out is not None:
        atomic_write_text(out, text + "\n")
    typer.echo(text)


@app.command("presets", epilog=epilog("study presets"))
def presets() -> None:
    """List the built-in study presets."""
    from cllstr.study.presets import PRESETS, list_presets

    for name in list_presets():
        typer.echo(f"{name:18s} {(PRESETS[name].__doc__ or '').splitlines()[0]}")


@app.command("protocols", epilog=epilog("study protocols"))
def protocols() -> None:
    """List the training protocols of the presets (--protocol)."""
    from cllstr.study.protocols import PROTOCOLS, list_protocols

    for name in list_protocols():
        typer.echo(f"{name:6s} {PROTOCOLS[name].description}")
