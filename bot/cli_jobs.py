"""`selfheal jobs list|show` and `selfheal redeliver`. May import: bot.cli, bot.state,
bot.redeliver, bot.settings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from bot.cli import app, fail
from bot.errors import SelfhealError, UsageError
from bot.jobs import JobRecord
from bot.settings import load_settings

if TYPE_CHECKING:
    from bot.state import JobStore

jobs_app = typer.Typer(help="Show the jobs the webhooks queued.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def _store() -> JobStore:
    from bot.state import JobStore  # Redis and Dramatiq load only for these commands

    try:
        settings = load_settings()
    except SelfhealError as error:
        raise fail(error) from None
    return JobStore(settings.redis_url)


def _time(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _outcome(record: JobRecord) -> str:
    if not record.outcome:
        return record.note or ""
    return str(record.outcome.get("decision") or record.outcome.get("summary") or "")


def _unreachable(exc: Exception) -> typer.Exit:
    return fail(SelfhealError(f"cannot reach Redis at REDIS_URL ({type(exc).__name__})"))


@jobs_app.command("list")
def list_jobs(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many of the newest jobs."),
) -> None:
    """The newest jobs: id, source, repo, fingerprint, state, events, times, outcome."""
    from redis.exceptions import RedisError

    try:
        records = _store().recent(limit)
    except RedisError as exc:
        raise _unreachable(exc) from None
    if as_json:
        typer.echo(json.dumps([r.summary() for r in records], indent=2))
        return
    if not records:
        typer.echo("no jobs")
        return
    typer.echo(
        f"{'ID':<20} {'SOURCE':<9} {'REPO':<28} {'FINGERPRINT':<12} {'STATE':<11} "
        f"{'EVENTS':>6} {'CREATED':<19} {'UPDATED':<19} OUTCOME"
    )
    for r in records:
        typer.echo(
            f"{r.id:<20} {r.source:<9} {r.repo[:28]:<28} {r.fingerprint[:12]:<12} "
            f"{r.state:<11} {r.events:>6} {_time(r.created_at)} {_time(r.updated_at)} "
            f"{_outcome(r)[:60]}"
        )


@jobs_app.command("show")
def show_job(
    job_id: str = typer.Argument(..., help="A job id (or a unique prefix of one)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One job in full: its record, the request it carries and its outcome."""
    from redis.exceptions import RedisError

    store = _store()
    try:
        matches = store.find(job_id)
        if len(matches) > 1:
            raise fail(UsageError(f"job id {job_id!r} is ambiguous: {', '.join(matches[:5])}"))
        record = store.get(matches[0]) if matches else None
    except RedisError as exc:
        raise _unreachable(exc) from None
    if record is None:
        raise fail(UsageError(f"no job {job_id!r} (see `selfheal jobs list`)"))
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2))
        return
    for key, value in record.summary().items():
        if key in ("created_at", "updated_at"):
            value = _time(float(value))
        elif key == "outcome":
            value = json.dumps(value) if value else ""
        typer.echo(f"{key:<12} {value}")
    typer.echo(f"{'attempts':<12} {record.attempts}")
    if record.installation_id:
        typer.echo(f"{'installation':<12} {record.installation_id}")
    if record.note:
        typer.echo(f"{'note':<12} {record.note}")
    if record.deliveries:
        typer.echo(f"{'deliveries':<12} {', '.join(record.deliveries[:10])}")


@app.command()
def redeliver(
    since: str = typer.Option("72h", "--since", help="How far back to look (e.g. 72h, 2d)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List without redelivering."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Redeliver the App's GitHub webhook deliveries that never succeeded."""
    from bot.redeliver import parse_duration, redeliver_failed

    try:
        seconds = parse_duration(since)
        settings = load_settings()
        report = redeliver_failed(settings, seconds, dry_run=dry_run)
    except SelfhealError as error:
        raise fail(error) from None
    except Exception as exc:  # the GitHub API refused or could not be reached
        message = f"listing deliveries failed: {type(exc).__name__}: {exc}"[:300]
        raise fail(SelfhealError(message)) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    if not report.failed:
        typer.echo(f"no failed deliveries in the last {since}")
    for item in report.failed:
        done = "redelivered" if item["id"] in report.redelivered else "failed (not redelivered)"
        typer.echo(
            f"{item['guid']}  {item['event']}.{item['action'] or ''}  "
            f"HTTP {item['status_code']}  {item['delivered_at']}  {done}"
        )
    for problem in report.errors:
        typer.echo(f"error: {problem}", err=True)
    if report.errors:
        raise typer.Exit(1)
