"""`selfheal doctor`: check this installation and print what to fix.

May import: bot.cli, bot.doctor.
"""

from __future__ import annotations

import json

import typer

from bot.cli import app
from bot.doctor import format_checklist, run_checks


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check settings, Redis, the GitHub App, webhook secrets, model keys, sandbox and disk.

    Exits 1 when any check fails; each failure names the fix.
    """
    checks = run_checks()
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        typer.echo(format_checklist(checks))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
