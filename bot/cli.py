"""The `selfheal` console script. May import: everything in bot (it is the outermost layer).

Each command group lives in its own module and is registered at the bottom of this file.
Errors the bot raises on purpose (`SelfhealError`) are printed as one line on stderr and
mapped to their exit code; nothing prints a traceback at a user.
"""

from __future__ import annotations

import sys

import typer

from bot import __version__
from bot.errors import SelfhealError

app = typer.Typer(
    name="selfheal",
    help="Turn production errors and CI failures into validated fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"selfheal {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Selfheal heals repositories: alert in, validated fix out."""


def fail(error: SelfhealError) -> typer.Exit:
    """Print a SelfhealError as one line and return the Exit to raise."""
    typer.echo(f"selfheal: error: {error}", err=True)
    return typer.Exit(error.exit_code)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SelfhealError as error:  # raised outside a command body (e.g. settings)
        typer.echo(f"selfheal: error: {error}", err=True)
        sys.exit(error.exit_code)


# --- command registration (each module adds its commands to `app` when imported) ---
from bot import (
    cli_doctor,
    cli_fix,
    cli_jobs,
    cli_models,
    cli_replay,
    cli_sandbox,
    cli_serve,
    policy_cli,
)

app.add_typer(policy_cli.app, name="policy")
