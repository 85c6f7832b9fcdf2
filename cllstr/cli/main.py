"""The ``cllstr`` command: one Typer sub-application per command group, assembled here with ``add_typer``.

Only working commands are registered. A command group lives in its own module of this package and exposes ``app``
(a ``typer.Typer``) or, for a single command, a function registered with ``app.command``.
"""

from __future__ import annotations

import os
import sys

import typer
import typer.rich_utils

from cllstr import __version__
from cllstr.cli import data, demo, doctor, export, import_ckpt, predict, prune, study, synth, train
from cllstr.cli import eval as eval_cli
from cllstr.cli.errors import CliGroup, set_debug
from cllstr.cli.examples import epilog

#: Help width when stdout is not a terminal (a pipe, a file, CI) and neither COLUMNS nor TERMINAL_WIDTH is set;
#: a terminal gets its full width.
HELP_WIDTH = 120
if typer.rich_utils.MAX_WIDTH is None and "COLUMNS" not in os.environ and not sys.stdout.isatty():
    typer.rich_utils.MAX_WIDTH = HELP_WIDTH

app = typer.Typer(
    name="cllstr",
    cls=CliGroup,
    help="Multilingual scene text recognition and cross-lingual learning studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": HELP_WIDTH, "help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cllstr {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (also CLLSTR_DEBUG=1)."),
) -> None:
    """cllstr: fast multilingual STR and cross-lingual learning studies.

    Errors print one line, `error: ...`, and exit with 2 for a usage error, 1 for a data or runtime error and 130
    after Ctrl-C (whose message says how to resume).
    """
    set_debug(debug)


app.command("doctor", epilog=epilog("doctor"))(doctor.doctor)
app.command("demo", epilog=epilog("demo"))(demo.demo)
app.add_typer(synth.app, name="synth", epilog=epilog("synth"))
app.add_typer(data.app, name="data", epilog=epilog("data"))
app.command("train", epilog=epilog("train"))(train.train)
app.command("eval", epilog=epilog("eval"))(eval_cli.evaluate)
app.command("predict", epilog=epilog("predict"))(predict.predict)
app.command("import", epilog=epilog("import"))(import_ckpt.import_checkpoint)
app.command("export", epilog=epilog("export"))(export.export)
app.command("prune", epilog=epilog("prune"))(prune.prune)
app.add_typer(study.app, name="study", epilog=epilog("study"))


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
