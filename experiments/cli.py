"""The ``crossmargin`` command line (typer).

Every user error (a bad scenario key, a missing file, a malformed CSV row) ends the
command with one line on stderr naming the field and the reason, and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="crossmargin: agent-based model of cross-margin liquidation contagion.",
)


@app.callback()
def _root() -> None:
    """crossmargin: agent-based model of cross-margin liquidation contagion."""


class UserError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="CSV with header op,side,price,qty,id")],
) -> None:
    """Replay an order stream through one order book; print a JSON summary."""
    from experiments.replay import ReplayError
    from experiments.replay import replay as run_replay

    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        result = run_replay(file)
    except ReplayError as exc:
        fail(f"{file}: {exc}")
    typer.echo(json.dumps(result))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
