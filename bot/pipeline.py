"""`heal()`: the stages of a fix job in order, reading like the data flow.

workspace -> repo config -> test plan -> localization -> dependency environment -> agent team ->
patch -> validation -> policy -> artifacts -> delivery. Each stage returns a record that ends up
in the report; a failed install ends the job as a report saying why.
May import: every stage module (workspace, sandbox, toolchain, environment, localize, agent,
validate, policy, report, delivery); nothing imports this module except the CLI and the job runner (bot/jobrun.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.environment import EnvironmentBuilder
from bot.errors import ConfigError, SandboxError, UsageError
from bot.evidence import Evidence
from bot.incident import Incident, branch_name
from bot.patch import Patch
from bot.policy import Action, Decision, Facts, agent_job_error, decide
from bot.repo_config import RepoConfig, load_repo_config
from bot.report import Report, write_artifacts
from bot.sandbox import Sandbox
from bot.settings import Settings
from bot.toolchain import detect
from bot.workspace import Workspace, WorkspaceManager

if TYPE_CHECKING:
    from bot.validate import Validation

# Delivery callback: (workspace, branch, decision, report) -> what was done (JSON-able).
Deliver = Callable[[Workspace, str, Decision, Report], dict[str, Any]]


@dataclass
class FixRequest:
    """One job: which repository, which incident, with which models."""

    source: str  # a local path or a clone URL
    incident: Incident
    settings: Settings
    sandbox: Sandbox
    model_overrides: dict[str, str] = field(default_factory=dict)  # --model ROLE=SPEC
    out_dir: Path | None = None
    hint: str | None = None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    merges_today: int = 0
    git_env: Callable[[], dict[str, str]] | None = None
    # The repository config as read from the default branch (docs/configuration.md) with its
    # error text; None: read `.github/selfheal.yml` from the checkout (`selfheal fix`).
    config: RepoConfig | None = None
    config_error: str | None = None


def resolve_models(
    settings: Settings, config: RepoConfig, overrides: dict[str, str]
) -> dict[str, str]:
    """Role -> provider:model: settings defaults, then the repo's config, then the command line."""
    return {**settings.models(), **config.models, **overrides}


def heal(request: FixRequest, deliver: Deliver) -> Report:
    """Run the whole job and deliver its decision. Raises UsageError for bad input only."""
    from bot.agent.candidates import run_candidates
    from bot.agent.providers import make_models
    from bot.agent.team import AgentResult, AgentTask, run_team
    from bot.localize import localize
    from bot.validate import validate

    timing: dict[str, float] = {}
    started = time.monotonic()
    settings, incident = request.settings, request.incident
    manager = WorkspaceManager.from_settings(settings, request.git_env)
    out = request.out_dir or settings.selfheal_artifacts_dir / request.job_id
    out.mkdir(parents=True, exist_ok=True)

    mark = time.monotonic()
    workspace = manager.checkout(request.source, incident.ref, request.job_id)
    timing["workspace_s"] = time.monotonic() - mark
    try:
        config, config_error = request.config, request.config_error
        if config is None:
            try:
                config = load_repo_config(workspace.path)
            except ConfigError as exc:
                config, config_error = RepoConfig(), str(exc)
        plan = detect(workspace.path, config)
        models = resolve_models(settings, config, request.model_overrides)
        # Build every model now: a bad script, provider or missing key stops the job before
        # any work, as a usage error.
        chat_models = make_models(models, settings)

        mark = time.monotonic()
        localization = localize(incident, workspace.path)
        timing["localize_s"] = time.monotonic() - mark
        if localization.error is not None:
            raise UsageError(localization.error)

        mark = time.monotonic()
        environment: dict[str, Any] = {}
        install_error: str | None = None
        # The sandbox already mounts SELFHEAL_SANDBOX_RO_PATHS (a wheelhouse, toolchains).
        builder = EnvironmentBuilder(
            settings.selfheal_cache_dir,
            request.sandbox,
            uv_index_args=settings.selfheal_uv_index_args,
        )
        try:
            prepared = builder.prepare(workspace.path, plan, request.source)
        except SandboxError as exc:
            install_error = f"installing the repository's dependencies failed: {exc}"
            environment["error"] = install_error
        else:
            plan = prepared.plan
            environment["warm"] = prepared.warm
        timing["environment_s"] = time.monotonic() - mark

        mark = time.monotonic()
        task = AgentTask(
            incident=incident,
            workspace=workspace,
            sandbox=request.sandbox,
            plan=plan,
            localization=localization,
            models=chat_models,
            budget=config.budget,
            trajectory_path=out / "trajectory.jsonl",
            hint=request.hint,
            settings=settings,
            repo=request.source,
        )
        validation: Validation | None = None
        if install_error is not None:
            agent = AgentResult(status="error", message=install_error)
        elif config.candidates > 1:
            best = run_candidates(task, config)[0]
            agent, validation = best.agent, best.candidate.validation
        else:
            agent = run_team(task)
        timing["agent_s"] = time.monotonic() - mark

        patch = Patch.from_diff(workspace.diff())
        mark = time.monotonic()
        if validation is None and not patch.empty:
            validation = validate(workspace, request.sandbox, plan, config, agent.reproduction_test)
        evidence = validation.evidence if validation and not patch.empty else Evidence()
        logs = validation.logs if validation and not patch.empty else {}
        timing["validate_s"] = time.monotonic() - mark

        decision = decide(
            Facts(
                incident=incident,
                patch=patch,
                evidence=evidence,
                config=config,
                config_error=config_error,
                merges_today=request.merges_today,
                job_error=agent_job_error(agent.status, agent.message),
            )
        )
        metrics.DECISIONS.labels(decision.action.label).inc()
        report = Report(
            job_id=request.job_id,
            incident=incident,
            decision=decision,
            evidence=evidence,
            patch=patch,
            models={role: models[role] for role in agent.usage} or models,
            scripted=agent.scripted,
            agent_status=agent.status,
            summary=agent.summary,
            root_cause=agent.root_cause,
            confidence=agent.confidence,
            agent_message=agent.message,
            by_role=dict(agent.usage),
            localization={
                "files": list(localization.files[:10]),
                "context_tokens": localization.context_tokens,
            },
            timing=timing,
            environment=environment,
        )
        write_artifacts(report, out, logs)
        if decision.action != Action.REPORT:
            report.delivery = deliver(workspace, branch_name(incident), decision, report)
            report.branch = report.delivery.get("branch")
        timing["total_s"] = time.monotonic() - started
        write_artifacts(report, out, {})
        return report
    finally:
        manager.remove(workspace)


def run_job(request: Any, settings: Settings) -> Any:
    """The worker's entry point for one queued job (see bot/jobrun.py)."""
    from bot.jobrun import run_job as run

    return run(request, settings)
