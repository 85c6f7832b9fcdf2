"""One error policy for every ``cllstr`` command.

- A usage error (unknown option or command, a bad value, a missing argument) prints ``error: <what>`` naming the
  argument, and the command exits with 2.
- A data or runtime error (a missing, unreadable or corrupt file, a bad key in a config or study file, a failed run)
  prints ``error: <what>`` naming the file or key, and the command exits with 1.
- Ctrl-C prints what was kept and how to continue, and the command exits with 130.
- No traceback unless ``cllstr --debug ...`` or ``CLLSTR_DEBUG=1``.

Commands raise :func:`usage` / :func:`fail` (or let the library's ``FileNotFoundError``/``ValueError``/``KeyError``...
propagate); :class:`CliGroup` (the root ``typer.Typer(cls=...)``) turns every exception into that one line.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, NoReturn

from typer.core import TyperGroup

try:  # typer >= 0.2x vendors click as typer._click, with its own Exit / Abort
    from typer._click import exceptions as click
    from typer.exceptions import Abort, Exit
except ImportError:  # older typer on top of click
    from click import exceptions as click
    from click.exceptions import Abort, Exit

__all__ = ["CliError", "Interrupted", "CliGroup", "usage", "fail", "one_line", "debug_enabled"]

EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_debug_flag = False


class CliError(click.ClickException):
    """A data or runtime error with a message a person can act on (exit code 1)."""

    exit_code = EXIT_DATA


class Interrupted(Exception):
    """Work stopped by Ctrl-C after saving what it had; ``str()`` says what was kept and how to continue."""


def usage(message: str, param_hint: str | None = None) -> NoReturn:
    """Raise a usage error (exit 2): ``error: <param_hint>: <message>``."""
    raise click.BadParameter(message, param_hint=param_hint) if param_hint else click.UsageError(message)


def fail(message: str) -> NoReturn:
    """Raise a data/runtime error (exit 1): ``error: <message>``."""
    raise CliError(message)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a ``KeyError`` without its quotes)."""
    if isinstance(exc, click.ClickException):
        text = exc.format_message()
    elif isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def debug_enabled() -> bool:
    """``--debug`` was given or ``CLLSTR_DEBUG`` is set to a true value."""
    return _debug_flag or os.environ.get("CLLSTR_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def set_debug(value: bool) -> None:
    """Called by the root callback's ``--debug`` option."""
    global _debug_flag
    _debug_flag = value


#: Exceptions whose message is the whole story (bad input, missing files, failed runs): no "internal error" note.
_EXPECTED = (OSError, ValueError, KeyError, LookupError, ImportError, RuntimeError, EOFError)


def _report(exc: BaseException) -> int:
    """Print the one-line message of ``exc`` on stderr and return the exit code."""
    if isinstance(exc, Exit):
        return exc.exit_code
    if isinstance(exc, (Abort, KeyboardInterrupt)):
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, Interrupted):
        click.echo(f"interrupted: {one_line(exc)}", err=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, click.UsageError):
        hint = ""
        if exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"error: {one_line(exc)}{hint}", err=True)
        return EXIT_USAGE
    if isinstance(exc, click.ClickException):
        click.echo(f"error: {one_line(exc)}", err=True)
        return exc.exit_code
    if debug_enabled():
        traceback.print_exception(exc)
    if isinstance(exc, _EXPECTED):
        click.echo(f"error: {one_line(exc)}", err=True)
    else:
        click.echo(f"error: internal error {type(exc).__name__}: {one_line(exc)} (run 'cllstr --debug ...' for the "
                   "traceback)", err=True)
    return EXIT_DATA


class CliGroup(TyperGroup):
    """The root command group: runs a command and applies the error policy to whatever it raises."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # typer would turn it into a silent exit 130
            raise Interrupted("stopped by Ctrl-C; outputs are written atomically, nothing is half-written; the same "
                              "command continues where it stopped (train: add --resume)") from None

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        set_debug(False)
        try:
            rv = super().main(args=args, prog_name=prog_name or "cllstr", complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except Exit as e:
            code = e.exit_code
        except Exception as e:  # noqa: BLE001 - the policy covers every exception
            if debug_enabled() and isinstance(e, click.ClickException | Abort | Interrupted):
                traceback.print_exception(e)
            code = _report(e)
        if standalone_mode:
            sys.stdout.flush()
            sys.exit(code)
        return code
