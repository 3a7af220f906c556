"""`selfheal policy explain`: show the decision and every rule's verdict for a report.json.

For people tuning `.github/selfheal.yml`: run the policy over the evidence a job measured,
with the config file being edited. May import: bot.policy, bot.repo_config, bot.evidence,
bot.patch, bot.incident, bot.errors.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from bot.errors import ConfigError, SelfhealError, UsageError
from bot.evidence import evidence_from_dict
from bot.incident import Incident
from bot.patch import Patch
from bot.policy import Decision, Facts, agent_job_error, decide
from bot.repo_config import RepoConfig, parse_repo_config

app = typer.Typer(help="Inspect the merge policy.", no_args_is_help=True)


def facts_from_report(
    report: dict[str, Any],
    config: RepoConfig,
    config_error: str | None = None,
    now: datetime | None = None,
    merges_today: int = 0,
) -> Facts:
    """Policy facts from a report.json document (keys `incident`, `patch`, `evidence`, `agent`)."""
    try:
        incident = Incident.from_dict(report["incident"])
        patch_data = report.get("patch") or {}
        patch = Patch(
            diff=str(patch_data.get("diff") or ""),
            files=tuple(str(f) for f in patch_data.get("files") or ()),
            added=int(patch_data.get("added") or 0),
            removed=int(patch_data.get("removed") or 0),
        )
        evidence = evidence_from_dict(report.get("evidence") or {})
        agent = report["agent"]
        job_error = agent_job_error(str(agent["status"]), str(agent.get("message") or ""))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"the report is not a selfheal report.json (needs incident, patch, evidence, agent): {exc}"
        ) from None
    return Facts(
        incident=incident,
        patch=patch,
        evidence=evidence,
        config=config,
        config_error=config_error,
        now=now or datetime.now(UTC),
        merges_today=merges_today,
        job_error=job_error,
    )


def render_decision(decision: Decision) -> str:
    """The decision and every rule as plain text, one rule a line."""
    lines = [f"decision: {decision.action.label}"]
    if decision.would_merge:
        lines[0] += "  (shadow mode: every other rule passed, this would have merged)"
    width = max(len(r.rule) for r in decision.reasons)
    for r in decision.reasons:
        cap = f"  [caps at {r.caps.label}]" if r.verdict == "fail" else ""
        lines.append(f"  {r.verdict.upper():<4}  {r.rule:<{width}}  {r.detail}{cap}")
    return "\n".join(lines)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--evidence: cannot read {path} ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--evidence: {path} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--evidence: {path} holds {type(data).__name__}, not a report object")
    return data


@app.command("explain")
def explain(
    evidence: Path = typer.Option(..., "--evidence", help="A report.json written by a job."),
    config: Path | None = typer.Option(
        None, "--config", help="The selfheal.yml to judge with (default: built-in defaults)."
    ),
    now: str | None = typer.Option(
        None, "--now", help="Judge as of this ISO time (merge windows); default: now."
    ),
    merges_today: int = typer.Option(0, "--merges-today", min=0, help="Merges already today."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Print the decision and every rule's verdict for a report.json and a config file."""
    from bot.cli import fail

    try:
        report = _read_json(evidence)
        repo_config, config_error = RepoConfig(), None
        if config is not None:
            try:
                text = config.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"--config: cannot read {config} ({exc})") from None
            try:
                repo_config = parse_repo_config(text, path=str(config))
            except ConfigError as exc:
                config_error = str(exc)
        when = None
        if now is not None:
            try:
                when = datetime.fromisoformat(now)
            except ValueError:
                raise UsageError(f"--now: expected an ISO time, got {now!r}") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
        facts = facts_from_report(report, repo_config, config_error, when, merges_today)
    except SelfhealError as error:
        raise fail(error) from None
    decision = decide(facts)
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        typer.echo(render_decision(decision))
