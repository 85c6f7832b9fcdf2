"""``cllstr synth``: render synthetic multilingual word crops into LMDBs, preview them, list the fonts in use.

``cllstr synth --profile mlt19-mini --scale 0.01 --out data/`` (or ``cllstr synth run ...``) writes the reference tree;
``cllstr synth --scripts KOR,LAT --n 1000 --out X.lmdb`` writes one mixed LMDB; ``cllstr synth preview --out
sheet.png`` draws a contact sheet; ``cllstr synth fonts`` lists the faces found per script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cllstr.cli.errors import fail, one_line, usage
from cllstr.cli.examples import epilog

app = typer.Typer(
    help="Synthetic multilingual word crops (SynthMLT-like) written as LMDB.",
    invoke_without_command=True,
    no_args_is_help=False,
)

Out = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (profile) or LMDB path (--scripts).")]
Profile = Annotated[str | None, typer.Option("--profile", "-p", help="Dataset profile, e.g. mlt19-mini.")]
Scale = Annotated[float, typer.Option("--scale", help="Profile size factor (0.01 CI, 0.1 default, 1.0 full).")]
Scripts = Annotated[str | None, typer.Option("--scripts", "-s", help="Comma-separated scripts, e.g. KOR,LAT.")]
Count = Annotated[int, typer.Option("--n", "-n", help="Samples for --scripts mode.")]
Style = Annotated[
    str | None,
    typer.Option("--style", help="Appearance style (real, synthmlt, clean, realistic); with --profile it replaces "
                 "the style of the MLT19-like sets (default: real)."),
]
StyleSet = Annotated[
    str | None,
    typer.Option("--style-set", help="Override style fields, ';'-separated: 'occlusion_prob=0;jpeg_quality=30:60'."),
]
FontSet = Annotated[
    str,
    typer.Option("--font-set", help="Catalogue fonts: noto (the registry's Noto faces), small (`make fonts`), full "
                 "(`make fonts-full`), none (only --font-dir). Uninstalled families are skipped."),
]
Seed = Annotated[int, typer.Option("--seed", help="Base seed; sample i depends only on (seed, i).")]
Workers = Annotated[int | None, typer.Option("--workers", "-j", help="Processes (default: all cores).")]
Chunk = Annotated[int, typer.Option("--chunk", help="Samples per worker task.")]
Format = Annotated[str, typer.Option("--format", help="Stored image format: jpeg or png.")]
FontDir = Annotated[
    Path | None, typer.Option("--font-dir", help="Folder of extra fonts, mixed into the font set as more families.")
]
BgDir = Annotated[Path | None, typer.Option("--bg-dir", help="Folder of background images to crop from.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace finished LMDBs that differ from the request.")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]


def _specs(profile: str | None, scale: float, scripts: str | None, n: int, style: str | None, seed: int):
    from cllstr.scripts import get_script
    from cllstr.synth.profiles import DatasetSpec, get_profile
    from cllstr.synth.styles import get_style

    if (profile is None) == (scripts is None):
        usage("pass exactly one of --profile (e.g. mlt19-mini) or --scripts (e.g. KOR,LAT)")
    try:
        if style is not None:
            get_style(style)
        if profile is not None:
            return get_profile(profile)(scale=scale, seed=seed, **({"style": style} if style else {}))
        names = tuple(get_script(s).name for s in scripts.split(",") if s.strip())
        if not names:
            usage("--scripts is empty")
        if n < 1:
            usage(f"must be >= 1, got {n}", "--n")
        return [DatasetSpec("", names, style or "real", n, seed, {"scripts_mode": True})]
    except (KeyError, ValueError) as e:
        usage(one_line(e))


def run(
    out: Out = None,
    profile: Profile = None,
    scale: Scale = 0.1,
    scripts: Scripts = None,
    n: Count = 1000,
    style: Style = None,
    style_set: StyleSet = None,
    font_set: FontSet = "full",
    seed: Seed = 0,
    workers: Workers = None,
    chunk: Chunk = 32,
    image_format: Format = "jpeg",
    font_dir: FontDir = None,
    bg_dir: BgDir = None,
    overwrite: Overwrite = False,
    no_progress: NoProgress = False,
) -> None:
    """Generate LMDBs (a profile tree, or one LMDB of --scripts); re-running resumes an interrupted run."""
    from cllstr.synth.fonts import FontNotFoundError, RaqmMissingError
    from cllstr.synth.generate import generate

    specs = _specs(profile, scale, scripts, n, style, seed)
    if out is None:
        usage("--out is required")
    try:
        results = generate(
            specs,
            out,
            workers=workers,
            chunk=chunk,
            image_format=image_format,
            font_dir=str(font_dir) if font_dir else None,
            bg_dir=str(bg_dir) if bg_dir else None,
            font_set=font_set,
            style_set=style_set,
            overwrite=overwrite,
            progress=not no_progress,
        )
    except KeyError as e:
        usage(one_line(e))
    except (RaqmMissingError, FontNotFoundError, FileExistsError, FileNotFoundError, ValueError) as e:
        fail(one_line(e))
    written = sum(r.written for r in results)
    skipped = sum(r.skipped_words for r in results)
    done = sum(r.status == "complete" for r in results)
    typer.echo(
        f"wrote {written} samples into {len(results) - done} LMDB(s) under {out} "
        f"({done} already complete, {skipped} words skipped for missing glyphs)"
    )


@app.callback()
def synth(
    ctx: typer.Context,
    out: Out = None,
    profile: Profile = None,
    scale: Scale = 0.1,
    scripts: Scripts = None,
    n: Count = 1000,
    style: Style = None,
    style_set: StyleSet = None,
    font_set: FontSet = "full",
    seed: Seed = 0,
    workers: Workers = None,
    chunk: Chunk = 32,
    image_format: Format = "jpeg",
    font_dir: FontDir = None,
    bg_dir: BgDir = None,
    overwrite: Overwrite = False,
    no_progress: NoProgress = False,
) -> None:
    """Synthetic multilingual word crops. Without a sub-command, generates (same options as `synth run`)."""
    if ctx.invoked_subcommand is not None:
        return
    run(
        out,
        profile,
        scale,
        scripts,
        n,
        style,
        style_set,
        font_set,
        seed,
        workers,
        chunk,
        image_format,
        font_dir,
        bg_dir,
        overwrite,
        no_progress,
    )


app.command("run", epilog=epilog("synth run"))(run)


@app.command("preview", epilog=epilog("synth preview"))
def preview(
    out: Annotated[Path, typer.Option("--out", "-o", help="Image file to write (e.g. sheet.png).")],
    scripts: Annotated[
        str, typer.Option("--scripts", "-s", help="Comma-separated scripts.")
    ] = "ARA,BEN,CHI,HIN,JPN,KOR,LAT",
    per_script: Annotated[int, typer.Option("--n", "-n", help="Crops per row.")] = 8,
    styles: Annotated[
        str, typer.Option("--styles", help="Comma-separated styles, one row each.")
    ] = "real,synthmlt,realistic",
    seed: Seed = 0,
    font_set: FontSet = "full",
    font_dir: FontDir = None,
    bg_dir: BgDir = None,
) -> None:
    """Write a contact sheet: a row of labelled crops per script and style."""
    from cllstr.scripts import get_script
    from cllstr.synth.preview import write_contact_sheet
    from cllstr.synth.styles import get_style

    try:
        names = [get_script(s).name for s in scripts.split(",") if s.strip()]
        style_names = [get_style(s.strip()).name for s in styles.split(",") if s.strip()]
        path = write_contact_sheet(
            out,
            names,
            per_script=per_script,
            styles=style_names,
            seed=seed,
            font_set=font_set,
            font_dir=str(font_dir) if font_dir else None,
            bg_dir=str(bg_dir) if bg_dir else None,
        )
    except KeyError as e:
        usage(one_line(e))
    except (ValueError, OSError) as e:
        fail(one_line(e))
    typer.echo(f"wrote {path}")


@app.command("fonts", epilog=epilog("synth fonts"))
def fonts(
    scripts: Annotated[
        str, typer.Option("--scripts", "-s", help="Comma-separated scripts.")
    ] = "ARA,BEN,CHI,HIN,JPN,KOR,LAT",
    font_set: FontSet = "full",
    font_dir: FontDir = None,
    packages: Annotated[bool, typer.Option("--packages", help="Only print the Debian packages of --font-set.")] = False,
) -> None:
    """Per script: the font families and faces that passed the checks (coverage, ink, shaping), rejected faces and
    uninstalled families of the set."""
    from cllstr.scripts import get_script
    from cllstr.synth import catalog
    from cllstr.synth.fonts import FontNotFoundError
    from cllstr.synth.fontset import describe, resolve_fonts

    try:
        names = [get_script(s).name for s in scripts.split(",") if s.strip()]
        if font_set != "none":
            catalog.get_font_set(font_set)
    except KeyError as e:
        usage(one_line(e))
    if packages:
        typer.echo(" ".join(catalog.packages(font_set, tuple(names))))
        return
    for name in names:
        try:
            typer.echo("\n".join(describe(resolve_fonts(name, font_set, str(font_dir) if font_dir else None))))
        except (FontNotFoundError, ValueError) as e:
            typer.echo(f"{name}: MISSING ({one_line(e)})")
