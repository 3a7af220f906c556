"""`selfheal fix` and `selfheal demo`: the healing loop on a local repository.

May import: bot.pipeline, bot.readers, bot.delivery.local, bot.demo, bot.settings, bot.sandbox.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from bot.cli import app, fail
from bot.errors import SelfhealError
from bot.policy import Decision
from bot.report import Report
from bot.sandbox import Sandbox
from bot.workspace import Workspace

EXIT_DELIVERED, EXIT_REPORT, EXIT_USAGE = 0, 1, 2


def parse_model_options(values: list[str]) -> dict[str, str]:
    """`--model` values: `ROLE=PROVIDER:MODEL` sets one role, `PROVIDER:MODEL` every role.

    Unknown roles and providers are refused here, before anything runs.
    """
    from bot.agent.providers import resolve_model_specs

    return resolve_model_specs({}, values)


def run_fix(
    path: Path,
    incident_file: Path,
    models: dict[str, str],
    out: Path | None,
    hint: str | None,
    sandbox: Sandbox | None = None,
) -> Report:
    """Run the pipeline on a local repository; the repository is touched only on delivery."""
    from bot.delivery.local import deliver_local, inspect_repo
    from bot.pipeline import FixRequest, heal
    from bot.readers import read_incident
    from bot.sandbox import make_sandbox
    from bot.settings import load_settings

    settings = load_settings()
    target = inspect_repo(path)
    incident = read_incident(incident_file, project_repos=settings.sentry_project_repos)
    sandbox = sandbox or make_sandbox(settings)

    def deliver(
        workspace: Workspace, branch: str, decision: Decision, report: Report
    ) -> dict[str, Any]:
        message = f"fix: {report.incident.title[:60]}\n\n{report.root_cause[:2000]}\n\nSelfheal-Fingerprint: {report.incident.fingerprint}\n"
        return deliver_local(target, workspace, branch, decision.action, message)

    request = FixRequest(
        source=str(target.path),
        incident=incident.with_changes(
            ref=incident.ref if _has_commit(target.path, incident.ref) else None
        ),
        settings=settings,
        sandbox=sandbox,
        model_overrides=models,
        out_dir=out,
        hint=hint,
    )
    return heal(request, deliver)


def _has_commit(repo: Path, ref: str | None) -> bool:
    from bot.workspace import run_git

    if not ref:
        return False
    return bool(
        run_git(
            "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False
        ).strip()
    )


def emit(report: Report, as_json: bool) -> None:
    """The job's JSON document (docs/fix-json.md) or the human summary, on stdout."""
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_summary(report)


def exit_code_for(report: Report) -> int:
    return EXIT_DELIVERED if report.delivered else EXIT_REPORT


def print_summary(report: Report) -> None:
    """The short human summary: error, root cause, diff, red -> green, decision, artifacts."""
    inc, ev, dec = report.incident, report.evidence, report.decision
    echo = typer.echo
    echo(f"Incident   {inc.error_type or 'error'}: {inc.error_message or inc.title}")
    if inc.in_app_frames:
        f = inc.in_app_frames[-1]
        echo(f"           at {f.file}:{f.line} in {f.function}")
    echo(f"Root cause {report.root_cause or 'not determined'}")
    if report.scripted:
        echo("Models     scripted (replayed turns, no API calls)")
    if not report.patch.empty:
        echo(
            f"Patch      {', '.join(report.patch.files)} (+{report.patch.added} -{report.patch.removed})"
        )
        in_test_file = False
        for line in report.patch.diff.splitlines():
            if line.startswith("diff --git"):
                path = line.rsplit(" b/", 1)[-1]
                in_test_file = path.startswith("test") or "/test" in path
                if in_test_file:
                    echo(f"           (regression test: {path})")
            elif (
                not in_test_file
                and line.startswith(("+", "-"))
                and not line.startswith(("+++", "---"))
            ):
                echo(f"           {line}")
    if report.agent_status != "finished":
        echo(f"Agent      {report.agent_status}: {report.agent_message}")
    rep = ev.reproduction
    echo(
        f"Evidence   {rep.test or 'no reproduction test'}: {rep.before or '-'} -> {rep.after or '-'}"
    )
    if ev.suite.before and ev.suite.after:
        echo(
            f"           suite: {ev.suite.before.passed} passed before, {ev.suite.after.passed} passed "
            f"after, {len(ev.suite.new_failures)} new failures"
        )
    extra = " (would have merged; auto-merge is off)" if dec.would_merge else ""
    echo(f"Decision   {dec.action.label}{extra}")
    for r in dec.reasons:
        mark = {"pass": "ok ", "fail": "NO ", "skip": "-- "}[r.verdict]
        echo(f"           {mark} {r.rule}: {r.detail}")
    if report.branch:
        echo(f"Branch     {report.branch}" + (" (merged)" if report.delivery.get("merged") else ""))
    echo(
        f"Cost       ${report.cost()['usd']:.4f}, {report.cost()['input_tokens']} tokens in, "
        f"{report.cost()['output_tokens']} out"
    )
    echo(f"Artifacts  {report.artifacts}")


@app.command()
def fix(
    path: Path = typer.Argument(..., help="The local git repository to heal."),
    incident: Path = typer.Option(
        ...,
        "--incident",
        help="Incident file: Sentry event or webhook, PagerDuty webhook, Python or Node.js stack trace.",
    ),
    model: list[str] = typer.Option(
        [],
        "--model",
        help="ROLE=PROVIDER:MODEL (repeatable); PROVIDER:MODEL alone applies to every role.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (see docs/fix-json.md)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Artifacts folder (default: selfheal-artifacts/JOB)."
    ),
    hint: str | None = typer.Option(
        None, "--hint", help="A hint for the agent (treated as untrusted data)."
    ),
) -> None:
    """Heal a local repository: reproduce, fix, validate, decide, deliver as a local branch.

    Exit 0: a fix was delivered (merge, pr or draft_pr); 1: the job ended as a report;
    2: usage or configuration error.
    """
    try:
        report = run_fix(path, incident, parse_model_options(model), out, hint)
    except SelfhealError as error:
        raise fail(error) from None
    emit(report, as_json)
    raise typer.Exit(exit_code_for(report))


def demo_sandbox(backend: str) -> Sandbox:
    """The demo's sandbox: its sample tests run on selfheal's own interpreter, mounted read-only."""
    from bot.sandbox import make_sandbox

    prefixes = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.executable).resolve().parent.parent,
    }
    return make_sandbox(backend, allow_unsafe=backend == "none", ro_paths=tuple(sorted(prefixes)))


@app.command()
def demo(
    as_json: bool = typer.Option(False, "--json", help="Print the fix's JSON document instead."),
    keep: Path | None = typer.Option(
        None, "--dir", help="Write the sample here instead of a temp folder."
    ),
) -> None:
    """Fix a real bug in a small sample service with the scripted model: no GitHub, no API key."""
    from bot.demo import write_demo

    try:
        sample = write_demo(keep)
        if not as_json:
            typer.echo(f"Sample service with a bug: {sample.repo}")
            typer.echo(f"Incident (Sentry event):   {sample.incident}")
            typer.echo(
                f"Sandbox: {sample.sandbox}{' (' + sample.sandbox_note + ')' if sample.sandbox_note else ''}"
            )
            typer.echo("")
        models = parse_model_options([f"scripted:{sample.script}"])
        report = run_fix(
            sample.repo,
            sample.incident,
            models,
            sample.repo.parent / "artifacts",
            None,
            demo_sandbox(sample.sandbox),
        )
    except SelfhealError as error:
        raise fail(error) from None
    emit(report, as_json)
    code = exit_code_for(report)
    if code != EXIT_DELIVERED:
        typer.echo("selfheal: the demo did not deliver a fix; see the report above", err=True)
    raise typer.Exit(code)
