"""`selfheal sandbox run PATH [--network] [--timeout S] -- CMD ...`. May import: bot.sandbox,
bot.settings, bot.errors, bot.cli.

Runs one command in the configured sandbox exactly as the bot would (no network unless
`--network`, the work tree the only writable place), streams its output, and exits with the
command's code: 124 on timeout, 137 when killed for a limit, naming the limit on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from bot.cli import app, fail
from bot.errors import SelfhealError, UsageError
from bot.sandbox import Limits, make_sandbox
from bot.settings import load_settings

sandbox_app = typer.Typer(help="Run commands in the sandbox the bot uses.", no_args_is_help=True)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@sandbox_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def run(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="The work tree: the only writable place."),
    network: bool = typer.Option(False, "--network", help="Allow network (install phase)."),
    timeout: float = typer.Option(600.0, "--timeout", help="Wall-clock limit in seconds."),
    memory_mb: int = typer.Option(4096, "--memory-mb", help="Memory limit in MB."),
    pids: int = typer.Option(512, "--pids", help="Largest number of processes."),
) -> None:
    """Run CMD in the sandbox; exit with its code (124 timeout, 137 killed for a limit)."""
    argv = list(ctx.args)
    try:
        if not argv:
            raise UsageError("no command given: selfheal sandbox run PATH -- CMD ...")
        if not path.is_dir():
            raise UsageError(f"{path} is not a directory")
        if timeout <= 0:
            raise UsageError("--timeout must be positive")
        sandbox = make_sandbox(load_settings())
        limits = Limits(timeout_s=timeout, memory_mb=memory_mb, pids=pids)
        result = sandbox.run(
            argv, workdir=path.resolve(), network=network, limits=limits, on_output=_write
        )
    except SelfhealError as error:
        raise fail(error) from None
    if result.limit_hit:
        typer.echo(
            f"selfheal: stopped by the {result.limit_hit} limit (exit {result.exit_code})",
            err=True,
        )
    raise typer.Exit(result.exit_code)


app.add_typer(sandbox_app, name="sandbox")
