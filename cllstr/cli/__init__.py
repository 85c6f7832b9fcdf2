"""Typer command-line interface of cllstr (installed as the ``cllstr`` console script, imported as ``cllstr.cli``)."""
