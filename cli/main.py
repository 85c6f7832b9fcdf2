"""The ``cllstr`` command: one Typer sub-application per command group, assembled here with ``add_typer``.

Only working commands are registered. A command group lives in its own module of this package and exposes ``app``
(a ``typer.Typer``) or, for a single command, a function registered with ``app.command``.
"""

from __future__ import annotations

import typer

from cllstr import __version__
from cllstr.cli import data, demo, doctor, predict, study, synth, train
from cllstr.cli import eval as eval_cli

app = typer.Typer(
    name="cllstr",
    help="Multilingual scene text recognition and cross-lingual learning studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cllstr {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """cllstr: fast multilingual STR and cross-lingual learning studies."""


app.command("doctor")(doctor.doctor)
app.command("demo")(demo.demo)
app.add_typer(synth.app, name="synth")
app.add_typer(data.app, name="data")
app.command("train")(train.train)
app.command("eval")(eval_cli.evaluate)
app.command("predict")(predict.predict)
app.add_typer(study.app, name="study")


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
