"""`selfheal replay TRAJECTORY`: re-run a recorded team job with the scripted provider.

The trajectory's `start` event holds the incident, the repository (URL or path), the commit
and the test plan. Replay checks that commit out in a fresh work tree, feeds every role the
recorded model turns (`scripted:TRAJECTORY`), runs the real tools, tests and validation, and
writes a new trajectory plus `replay.json`, `patch.diff` and the test logs to `--out`.
Exit 0: the replay finished and its patch validated; 1: it did not; 2: unusable input.
May import: bot.agent, bot.localize, bot.validate, bot.workspace, bot.sandbox, bot.settings,
bot.incident, bot.repo_config, bot.toolchain, bot.cli.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import typer

from bot.cli import app, fail
from bot.errors import SelfhealError, UsageError


def _start_event(path: Path) -> dict[str, Any]:
    from bot.agent.trajectory import read_trajectory

    for record in read_trajectory(path):
        if record.get("kind") == "event" and record.get("event") == "start":
            data = record.get("data")
            if isinstance(data, dict) and isinstance(data.get("incident"), dict):
                return data
    raise UsageError(
        f"{path}: no start event with the incident; only team trajectories can be replayed"
    )


def replay_trajectory(path: Path, out: Path | None) -> dict[str, Any]:
    """Replay the job recorded in `path`; returns the replay document."""
    from bot.agent.providers import ROLES
    from bot.agent.team import AgentTask, run_team
    from bot.incident import Incident
    from bot.localize import localize
    from bot.patch import Patch
    from bot.repo_config import BudgetConfig, RepoConfig, load_repo_config
    from bot.sandbox import make_sandbox
    from bot.settings import load_settings
    from bot.toolchain import TestPlan, detect
    from bot.validate import validate
    from bot.workspace import WorkspaceManager

    path = path.resolve()
    start = _start_event(path)
    try:
        incident = Incident.from_dict(start["incident"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: the recorded incident is unreadable ({exc})") from None
    repo, ref = start.get("repo"), start.get("ref")
    if not isinstance(repo, str) or not repo:
        raise UsageError(f"{path}: the start event names no repository")
    settings = load_settings()
    sandbox = make_sandbox(settings)
    job_id = f"replay-{uuid.uuid4().hex[:10]}"
    out = (out or settings.selfheal_artifacts_dir / job_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manager = WorkspaceManager(settings.selfheal_cache_dir)
    workspace = manager.checkout(repo, ref if isinstance(ref, str) else None, job_id)
    try:
        try:
            config = load_repo_config(workspace.path)
        except SelfhealError:
            config = RepoConfig()
        recorded = start.get("plan")
        if isinstance(recorded, dict) and recorded.get("test_command"):
            plan = TestPlan(
                str(recorded.get("language", "recorded")),
                tuple(str(x) for x in recorded["test_command"]),
                tuple(str(x) for x in recorded.get("setup") or ()),
                {str(k): str(v) for k, v in (recorded.get("env") or {}).items()},
                str(recorded.get("runner", "custom")),
            )
        else:
            plan = detect(workspace.path, config)
        budget = config.budget
        if isinstance(start.get("budget"), dict):
            budget = BudgetConfig.model_validate(start["budget"])
        spec = f"scripted:{path}"
        result = run_team(
            AgentTask(
                incident=incident,
                workspace=workspace,
                sandbox=sandbox,
                plan=plan,
                localization=localize(incident, workspace.path),
                models=dict.fromkeys(ROLES, spec),
                budget=budget,
                trajectory_path=out / "trajectory.jsonl",
                hint=start.get("hint") if isinstance(start.get("hint"), str) else None,
                settings=settings,
                repo=repo,
            )
        )
        patch = Patch.from_diff(workspace.diff())
        doc: dict[str, Any] = {
            "replay_of": str(path),
            "repo": repo,
            "ref": workspace.base_sha,
            "agent": result.to_dict(),
            "patch": patch.to_dict(),
            "evidence": None,
            "validated": False,
            "out": str(out),
        }
        (out / "patch.diff").write_text(patch.diff)
        if not patch.empty:
            validation = validate(workspace, sandbox, plan, config, result.reproduction_test)
            doc["evidence"] = validation.evidence.to_dict()
            doc["validated"] = validation.validated
            for name, text in validation.logs.items():
                (out / name).write_text(text)
        (out / "costs.md").write_text(result.cost_table() + "\n")
        (out / "replay.json").write_text(json.dumps(doc, indent=2))
        return doc
    finally:
        manager.remove(workspace)


@app.command()
def replay(
    trajectory: Path = typer.Argument(..., help="A trajectory.jsonl written by a team job."),
    as_json: bool = typer.Option(False, "--json", help="Print the replay document as JSON."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the new trajectory, patch and logs."
    ),
) -> None:
    """Re-run a recorded job with the scripted provider (no API calls) and validate it again.

    Exit 0: the replay finished and its patch validated; 1: it did not; 2: unusable input.
    """
    try:
        doc = replay_trajectory(trajectory, out)
    except SelfhealError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        agent = doc["agent"]
        typer.echo(f"Replayed   {doc['replay_of']} at {doc['ref'][:12]}")
        typer.echo(f"Team       {agent['status']}: {agent['message']}")
        files = ", ".join(doc["patch"]["files"]) or "(none)"
        typer.echo(f"Patch      {files}")
        typer.echo(f"Validated  {'yes' if doc['validated'] else 'no'}")
        typer.echo(f"Artifacts  {doc['out']}")
    ok = doc["agent"]["status"] == "finished" and doc["validated"]
    raise typer.Exit(0 if ok else 1)
