"""The worker's job runner: one queued `JobRequest` -> the work on GitHub -> a `JobOutcome`.

By `request.kind`:
- `incident` (Sentry, PagerDuty, or a CI failure on the default branch): clone the repository
  through the installation, run `heal()` and deliver with `deliver_to_github`; a CI failure
  first reads the failed jobs' logs for a Python traceback, a Node stack or a pytest failure;
- `issue` (an issue labelled for the bot, or `/selfheal fix|retry|revise`): the issue's text
  is untrusted data read into an incident; the issue is the trigger the PR links back to;
- `command`: a `/selfheal ...` comment, answered by `handle_comment` with `QueueHandlers`;
- `review`: review feedback on a Selfheal PR (`handle_review`).
An invalid `.github/selfheal.yml` ends the job as a report with an explaining comment or check
run. Every exception becomes a failed outcome with a one-line, redacted reason.
May import: bot.pipeline, bot.github, bot.delivery.github, bot.commands, bot.policy,
bot.policy_cli, bot.readers, bot.report, bot.sandbox, bot.state, bot.jobs, bot.settings.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed, RequestTimeout

from bot import messages
from bot.commands import CommentEvent, ReviewEvent, handle_comment, handle_review
from bot.commands import JobRequest as CommandJob
from bot.delivery.github import (
    GitHubDelivery,
    deliver_to_github,
    fetch_repo_config,
    merge_if_green,
    merge_pull_request,
    post_config_error,
    upsert_comment,
)
from bot.errors import SelfhealError
from bot.github.app import GitHubApp, describe_github_error, split_repo
from bot.github.credentials import git_auth_env
from bot.incident import Frame, Incident
from bot.jobs import ACTIVE_STATES, GitHubEvent, JobOutcome, JobRequest
from bot.policy import Action, Decision, RuleResult, decide
from bot.redact import redact_text
from bot.settings import Settings
from bot.state import JobStore

log = structlog.get_logger("selfheal.jobrun")

MAX_LOG_BYTES = 5_000_000  # read at most this much of one failed CI job's log
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?", re.MULTILINE)
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


class Cancelled(SelfhealError):
    """`/selfheal stop` asked this job to stop before it delivers."""


def run_job(request: JobRequest, settings: Settings) -> JobOutcome:
    """Run one job; never raises (a failure is an outcome with a one-line reason)."""
    store = JobStore(settings.redis_url)
    try:
        if store.cancel_requested(request.job_id):
            return JobOutcome(ok=True, summary="cancelled by /selfheal stop before it started")
        runner = JobRunner(request, settings, store)
        return runner.run()
    except Cancelled as exc:
        return JobOutcome(ok=True, summary=str(exc))
    except Exception as exc:
        log.warning("job.failed", job=request.job_id, error=type(exc).__name__)
        return JobOutcome(ok=False, summary=one_line(exc))
    finally:
        store.client.close()


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, secrets redacted, at most 300 characters."""
    if isinstance(exc, (RequestFailed, RequestTimeout)):
        text = describe_github_error(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_text(" ".join(text.split()))[:300]


def clone_url_for(api_url: str, repo: str) -> str:
    """The git URL of `repo` for an API base: github.com, or GHES/`https://HOST/api/v3`."""
    parts = urlsplit(api_url)
    host = parts.netloc
    if host == "api.github.com":
        return f"https://github.com/{repo}.git"
    prefix = parts.path.rstrip("/")
    prefix = prefix[: -len("/api/v3")] if prefix.endswith("/api/v3") else prefix
    return f"{parts.scheme}://{host}{prefix}/{repo}.git"


@dataclass
class Target:
    """The repository as the installation sees it."""

    repo: str
    installation_id: int
    default_branch: str
    clone_url: str


class JobRunner:
    def __init__(self, request: JobRequest, settings: Settings, store: JobStore) -> None:
        self.request = request
        self.settings = settings
        self.store = store
        self.app = GitHubApp.from_settings(settings)

    # -- plumbing --
    def installation_id(self) -> int:
        value = self.request.installation_id or self.store.installation_for(self.request.repo)
        if value and str(value).isdigit():
            return int(value)
        try:
            return self.app.installation_id_for(self.request.repo)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                raise SelfhealError(
                    f"the GitHub App is not installed on {self.request.repo} "
                    "(GET /repos/{owner}/{repo}/installation answered 404)"
                ) from None
            raise

    def target(self, gh: GitHub[Any], installation_id: int) -> Target:
        owner, name = split_repo(self.request.repo)
        data = gh.rest.repos.get(owner, name).json()
        return Target(
            self.request.repo,
            installation_id,
            str(data.get("default_branch") or "main"),
            clone_url_for(self.settings.github_api_url, self.request.repo),
        )

    def run(self) -> JobOutcome:
        kind = self.request.kind
        if kind == "command":
            return self.command()
        if kind == "review":
            return self.review()
        if kind == "issue":
            return self.issue()
        if kind == "incident":
            return self.incident()
        if kind == "checks":
            return self.checks()
        return JobOutcome(ok=False, summary=f"unknown job kind {kind!r}")

    # -- incidents and issues --
    def incident(self) -> JobOutcome:
        incident = self.request.incident
        if incident is None:
            return JobOutcome(ok=False, summary="the job carries no incident")
        installation_id = self.installation_id()
        gh = self.app.installation_client(installation_id)
        with gh:
            target = self.target(gh, installation_id)
            github = self.request.github
            if github is not None and github.event in ("check_run", "workflow_run"):
                incident = ci_incident(gh, target.repo, github, incident)
        return self.heal(target, incident, trigger=None, hint=None)

    def issue(self) -> JobOutcome:
        github = self.request.github
        if github is None or github.number is None:
            return JobOutcome(ok=False, summary="the job carries no issue")
        installation_id = self.installation_id()
        hint = github.extra.get("hint")
        incident: Incident | None = None
        revise_branch = github.extra.get("revise_branch")
        if revise_branch:
            incident = self.previous_incident(github.number)
            if incident is None:
                return JobOutcome(ok=False, summary="no earlier Selfheal job for this PR")
            if github.head_sha:
                incident = incident.with_changes(ref=github.head_sha)
        gh = self.app.installation_client(installation_id)
        with gh:
            target = self.target(gh, installation_id)
        if incident is None:
            incident = issue_incident(
                target.repo,
                github.number,
                github.title or "",
                str(github.extra.get("body") or ""),
                github.url,
            )
        try:
            return self.heal(target, incident, trigger=github.number, hint=hint)
        except SelfhealError as exc:
            # The person who asked is told on the issue; the job record keeps the same line.
            reason = one_line(exc)
            gh = self.app.installation_client(installation_id)
            key = messages.marker("job-error", incident.fingerprint[:16])
            body = f"{key}\nSelfheal could not work on this: {messages.neutralize(reason)}"
            with gh:
                upsert_comment(gh, target.repo, github.number, body, key)
            return JobOutcome(ok=False, summary=reason)

    def previous_incident(self, number: int) -> Incident | None:
        report = self.report_for_pull(number)
        if report is None:
            return None
        return Incident.from_dict(report["incident"])

    def report_for_pull(self, number: int) -> dict[str, Any] | None:
        job_id = self.store.job_for_pull(self.request.repo, number)
        record = self.store.get(job_id) if job_id else None
        artifacts = (
            ((record.outcome or {}).get("details") or {}).get("artifacts") if record else None
        )
        if not artifacts:
            return None
        path = Path(str(artifacts)) / "report.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data

    def heal(
        self, target: Target, incident: Incident, trigger: int | None, hint: str | None
    ) -> JobOutcome:
        from bot.pipeline import FixRequest, heal
        from bot.report import Report, render_markdown
        from bot.sandbox import make_sandbox
        from bot.workspace import Workspace

        settings = self.settings
        gh = self.app.installation_client(target.installation_id)
        with gh:
            config, error = fetch_repo_config(gh, target.repo, target.default_branch)
            if error is not None:
                head = incident.ref if incident.ref and len(incident.ref) == 40 else None
                if head is None and trigger is None:
                    owner, name = split_repo(target.repo)
                    branch = gh.rest.repos.get_branch(owner, name, target.default_branch).json()
                    head = str(branch["commit"]["sha"])
                url = post_config_error(
                    self.app, target.repo, target.installation_id, trigger, error, head
                )
                return JobOutcome(
                    ok=True,
                    decision=Action.REPORT.label,
                    url=url or None,
                    summary=f"invalid .github/selfheal.yml: {error}"[:500],
                    details={"config_error": error},
                )

        ref = incident.ref if incident.ref and _SHA.match(incident.ref) else None
        incident = incident.with_changes(repo=target.repo, ref=ref)
        app, inst = self.app, target.installation_id

        def git_env() -> dict[str, str]:
            return git_auth_env(app.installation_token(inst), target.clone_url)

        def deliver(
            workspace: Workspace, branch: str, decision: Decision, report: Report
        ) -> dict[str, Any]:
            if self.store.cancel_requested(self.request.job_id):
                raise Cancelled("cancelled by /selfheal stop before delivery")
            workspace.commit(
                f"fix: {report.incident.title[:60]}\n\n{report.root_cause[:2000]}\n\n"
                f"Selfheal-Fingerprint: {report.incident.fingerprint}\n"
            )
            result = deliver_to_github(
                GitHubDelivery(
                    repo=target.repo,
                    installation_id=inst,
                    worktree=workspace.path,
                    base_branch=target.default_branch,
                    branch=branch,
                    decision=decision,
                    report_markdown=render_markdown(report, decision_record=False),
                    report=report.to_dict(),
                    incident=report.incident,
                    trigger=trigger,
                    labels=tuple(config.labels),
                    merge_method=config.policy.merge_method,
                    checks_wait_s=settings.selfheal_checks_wait_s,
                    checks_settle_s=settings.selfheal_checks_settle_s,
                    poll_interval_s=settings.selfheal_checks_poll_s,
                ),
                app,
                settings,
            )
            if result.merged or result.auto_merge_enabled:
                # The daily cap counts unattended merges, armed auto-merge included.
                self.store.count_merge(target.repo)
            if result.pr_number is not None:
                self.store.remember_pull(target.repo, result.pr_number, self.request.job_id)
            return {**result.to_dict(), "branch": branch}

        sandbox = make_sandbox(settings)
        request = FixRequest(
            source=target.clone_url,
            incident=incident,
            settings=settings,
            sandbox=sandbox,
            hint=hint,
            job_id=self.request.job_id,
            merges_today=self.store.merges_today(target.repo),
            git_env=git_env,
            config=config,
            config_error=error,
        )
        try:
            report = heal(request, deliver)
        finally:
            sandbox.close()  # a worker runs job after job: nothing of this one stays parked
        if report.decision.action is Action.REPORT and trigger is not None:
            self.comment_report(target, trigger, report.incident, report.decision)
        delivery = report.delivery
        cost = report.cost()
        taken = str(delivery.get("action_taken") or report.decision.action.label)
        summary = f"{taken}: {report.incident.title[:120]}"
        if delivery.get("merged"):
            summary = f"merged #{delivery.get('pr_number')}: {report.incident.title[:120]}"
        elif delivery.get("pr_number"):
            summary = f"{taken} #{delivery.get('pr_number')}: {report.incident.title[:120]}"
        return JobOutcome(
            ok=True,
            decision=report.decision.action.label,
            url=delivery.get("pr_url") or delivery.get("comment_url"),
            summary=summary,
            details={
                "artifacts": str(report.artifacts) if report.artifacts else None,
                "cost": {k: cost[k] for k in ("usd", "input_tokens", "output_tokens")},
                "branch": report.branch,
                "pr_number": delivery.get("pr_number"),
                "merged": bool(delivery.get("merged")),
                "auto_merge_enabled": bool(delivery.get("auto_merge_enabled")),
                "merge_pending": bool(delivery.get("merge_pending")),
                "would_merge": report.decision.would_merge,
                "notes": list(delivery.get("notes") or []),
                "fingerprint": report.incident.fingerprint,
            },
        )

    def comment_report(
        self, target: Target, number: int, incident: Incident, decision: Decision
    ) -> None:
        """A report on an issue trigger: say so on the issue (the PR path comments itself)."""
        body = messages.delivered_comment(incident, decision, None, False, False, [])
        gh = self.app.installation_client(target.installation_id)
        with gh:
            upsert_comment(
                gh, target.repo, number, body, messages.marker("delivery", incident.fingerprint)
            )

    # -- comments and reviews --
    def command(self) -> JobOutcome:
        github = self.request.github
        if github is None or github.number is None or github.comment_id is None:
            return JobOutcome(ok=False, summary="the job carries no comment")
        event = CommentEvent(
            repo=self.request.repo,
            installation_id=self.installation_id(),
            number=github.number,
            is_pull_request=bool(github.extra.get("is_pull_request")),
            comment_id=github.comment_id,
            body=github.comment_body or "",
            author=github.sender or "",
            author_type="User",
        )
        outcome = handle_comment(event, self.app, QueueHandlers(self), self.bot_login())
        return JobOutcome(
            ok=outcome.status != "failed",
            summary=f"/selfheal {outcome.command or ''}: {outcome.status}"
            + (f" ({outcome.detail[:200]})" if outcome.status == "failed" else ""),
            url=outcome.reply_url,
            details={"status": outcome.status, "command": outcome.command},
        )

    def checks(self) -> JobOutcome:
        """A bot branch's checks went green: finish a merge the policy allowed but GitHub's
        native auto-merge could not take (REST merge with the expected head SHA)."""
        github = self.request.github
        if github is None or not github.head_sha or not github.head_branch:
            return JobOutcome(ok=False, summary="the job carries no check suite")
        installation_id = self.installation_id()
        gh = self.app.installation_client(installation_id)
        with gh:
            number = github.number or self._open_pull_for(gh, github.head_branch)
            job_id = self.store.job_for_pull(self.request.repo, number) if number else None
            record = self.store.get(job_id) if job_id else None
            outcome = (record.outcome or {}) if record else {}
            details = outcome.get("details") or {}
            if not number or outcome.get("decision") != "merge" or not details.get("merge_pending"):
                return JobOutcome(ok=True, summary="no merge is waiting for these checks")
            config, _ = fetch_repo_config(gh, self.request.repo)
        result = merge_if_green(
            self.app,
            self.request.repo,
            installation_id,
            number,
            github.head_sha,
            config.policy.merge_method,
        )
        state = "merged" if result.merged else "still waiting" if result.pending else "not merged"
        return JobOutcome(
            ok=True,
            decision="merge",
            summary=f"pull request #{number}: {state}"
            + (f" ({result.detail})" if result.detail else ""),
            details={"merge": dataclasses.asdict(result)},
        )

    def _open_pull_for(self, gh: GitHub[Any], branch: str) -> int | None:
        owner, name = split_repo(self.request.repo)
        pulls = gh.rest.pulls.list(owner, name, head=f"{owner}:{branch}", state="open").json()
        return int(pulls[0]["number"]) if pulls else None

    def review(self) -> JobOutcome:
        github = self.request.github
        if github is None or github.number is None:
            return JobOutcome(ok=False, summary="the job carries no review")
        installation_id = self.installation_id()
        gh = self.app.installation_client(installation_id)
        with gh:
            config, _ = fetch_repo_config(gh, self.request.repo)
        line = github.extra.get("line")
        event = ReviewEvent(
            repo=self.request.repo,
            installation_id=installation_id,
            number=github.number,
            head_ref=github.head_branch or "",
            head_sha=github.head_sha or "",
            author=github.sender or "",
            author_type="User",
            body=github.comment_body or "",
            path=github.extra.get("path"),
            line=line if isinstance(line, int) else None,
        )
        outcome = handle_review(event, self.app, QueueHandlers(self), config, self.bot_login())
        return JobOutcome(
            ok=outcome.status != "failed",
            summary=f"review: {outcome.status}",
            url=outcome.reply_url,
            details={"status": outcome.status},
        )

    def bot_login(self) -> str | None:
        slug = self.settings.github_app_slug
        return f"{slug}[bot]" if slug else None


class QueueHandlers:
    """`CommandHandlers` over the job queue, the job records and the policy."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self.store = runner.store
        self.settings = runner.settings

    def enqueue(self, request: CommandJob) -> str:
        from bot.ingest.routes import group_fingerprint

        extra: dict[str, Any] = {"hint": request.hint, "requested_by": request.requested_by}
        title = ""
        body = ""
        gh = self.runner.app.installation_client(request.installation_id)
        with gh:
            owner, name = split_repo(request.repo)
            issue = gh.rest.issues.get(owner, name, request.number).json()
            title, body = str(issue.get("title") or ""), str(issue.get("body") or "")
        if request.kind == "revise" and request.branch:
            extra["revise_branch"] = request.branch
        extra["body"] = body
        job = JobRequest(
            job_id=uuid.uuid4().hex[:16],
            kind="issue",
            source="github",
            repo=request.repo,
            fingerprint=group_fingerprint(
                f"github-{request.kind}", request.repo, request.number, request.head_sha
            ),
            installation_id=str(request.installation_id),
            github=GitHubEvent(
                event="issue_comment",
                action=request.kind,
                number=request.number,
                sender=request.requested_by,
                title=title,
                head_sha=request.head_sha if request.kind == "revise" else None,
                extra=extra,
            ),
            created_at=time.time(),
        )
        admission = self.store.admit(job)
        if admission.status == "duplicate":
            return f"a job for this is already queued or running ({admission.job_id})"
        return f"queued as job {admission.job_id}"

    def cancel(self, repo: str, number: int, requested_by: str) -> str:
        stopped = []
        for record in self.store.recent(200):
            if record.repo != repo or record.state not in ACTIVE_STATES:
                continue
            github = (record.request or {}).get("github") or {}
            if github.get("number") == number or self.store.job_for_pull(repo, number) == record.id:
                self.store.request_cancel(record.id)
                stopped.append(record.id)
        if not stopped:
            return "no queued or running job for this issue or pull request"
        return f"asked job {', '.join(stopped)} to stop before it delivers ({requested_by})"

    def merge(self, repo: str, installation_id: int, number: int, requested_by: str) -> str:
        from bot.policy_cli import facts_from_report

        report = self.runner.report_for_pull(number)
        if report is None:
            return "no Selfheal job report for this pull request; nothing to merge"
        head = str((report.get("delivery") or {}).get("head_sha") or "")
        gh = self.runner.app.installation_client(installation_id)
        with gh:
            config, error = fetch_repo_config(gh, repo)
            facts = facts_from_report(
                report, config, error, merges_today=self.store.merges_today(repo)
            )
            decision = decide(dataclasses.replace(facts, merge_requested_by=requested_by))
            if decision.action is not Action.MERGE:
                failed = [r.rule for r in decision.reasons if r.verdict == "fail"]
                return (
                    f"the policy does not allow a merge (decision: {decision.action.label}; "
                    f"failing rules: {', '.join(failed) or 'none'})"
                )
            result = merge_pull_request(
                gh,
                repo,
                number,
                head,
                config.policy.merge_method,
                checks_wait_s=self.settings.selfheal_checks_wait_s,
                checks_settle_s=self.settings.selfheal_checks_settle_s,
                poll_interval_s=self.settings.selfheal_checks_poll_s,
            )
        if result.merged:
            self.store.count_merge(repo)
        return messages.merge_outcome(result.merged, result.auto_merge_enabled, result.detail)

    def decision_record(self, repo: str, number: int) -> str | None:
        """The decision the last job for this PR recorded in its report.json."""
        report = self.runner.report_for_pull(number)
        if report is None:
            return None
        try:
            return messages.decision_table(decision_from_dict(report["decision"]))
        except (KeyError, TypeError, ValueError):
            return None


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """A `Decision` read back from its `to_dict()` form (report.json)."""
    reasons = tuple(
        RuleResult(
            rule=str(r["rule"]),
            verdict=r["verdict"],
            detail=str(r.get("detail") or ""),
            caps=Action.from_label(r["caps"]) if r.get("caps") else Action.MERGE,
        )
        for r in data.get("reasons") or []
    )
    return Decision(Action.from_label(str(data["action"])), reasons, bool(data.get("would_merge")))


# --- reading incidents out of untrusted text ------------------------------------------------


def incident_from_text(text: str) -> Incident | None:
    """A Python traceback, a Node stack or a pytest failure in `text`; None when none."""
    from bot.errors import IncidentFormatError
    from bot.readers import from_node_stack, from_python_traceback

    text = _TIMESTAMP.sub("", text)
    readers: list[Callable[[str], Incident]] = []
    if "Traceback (most recent call last):" in text:
        idx = text.rfind("Traceback (most recent call last):")
        readers.append(lambda t: from_python_traceback(t[idx:]))
    if re.search(r"^\s+at .+:\d+:\d+\)?\s*$", text, re.MULTILINE):
        readers.append(from_node_stack)
    for reader in readers:
        try:
            return reader(text)
        except IncidentFormatError:
            continue
    return pytest_failure(text)


_PYTEST_LOCATION = re.compile(r"^([\w./-]+\.py):(\d+): (\w+(?:Error|Exception|Exit)\w*)$", re.M)
_PYTEST_SHORT = re.compile(r"^FAILED ([\w./-]+\.py)::(\S+) - (\w+): ?(.*)$", re.MULTILINE)


def pytest_failure(text: str) -> Incident | None:
    """pytest's `FAILED path::test - Error: msg` summary and `file.py:N: Error` locations."""
    short = _PYTEST_SHORT.search(text)
    locations = _PYTEST_LOCATION.findall(text)
    if short is None and not locations:
        return None
    frames = tuple(Frame(file=f, line=int(n), in_app=True) for f, n, _ in locations[-8:])
    if short is not None:
        path, test, error, message = short.groups()
        if not frames:
            frames = (Frame(file=path, function=test.split("[")[0], in_app=True),)
        return Incident(
            source="github",
            title=f"{error}: {message}"[:200] if message else f"{test} failed",
            error_type=error,
            error_message=message[:2000] or None,
            frames=frames,
        )
    error = locations[-1][2]
    return Incident(source="github", title=f"{error} in pytest", error_type=error, frames=frames)


def issue_incident(repo: str, number: int, title: str, body: str, url: str | None) -> Incident:
    """An incident read from an issue: its traceback when it has one, else the text alone."""
    found = incident_from_text(body)
    links = tuple(u for u in (url,) if u)
    extra = {"issue": number}
    if found is not None:
        return found.with_changes(
            source="github", repo=repo, links=links, external_id=str(number), extra=extra
        )
    return Incident(
        source="github",
        title=(title or f"issue #{number}")[:200],
        error_message=(title + "\n\n" + body).strip()[:4000] or None,
        repo=repo,
        links=links,
        external_id=str(number),
        extra=extra,
    )


def ci_incident(gh: GitHub[Any], repo: str, event: GitHubEvent, base: Incident) -> Incident:
    """The failure in a failed run's logs, at the run's head SHA (`base` when none is found)."""
    owner, name = split_repo(repo)
    run_id = event.run_id
    jobs: list[dict[str, Any]] = []
    if event.event == "workflow_run" and run_id is not None:
        data = gh.request("GET", f"/repos/{owner}/{name}/actions/runs/{run_id}/jobs").json()
        jobs = [j for j in data.get("jobs") or [] if j.get("conclusion") == "failure"]
    elif run_id is not None:
        # A check run of GitHub Actions has the job's id as its own id.
        jobs = [{"id": run_id}]
    for job in jobs[:5]:
        try:
            resp = gh.request("GET", f"/repos/{owner}/{name}/actions/jobs/{job['id']}/logs")
        except GitHubException as exc:
            log.info("ci.log_unavailable", repo=repo, job=job.get("id"), error=one_line(exc))
            continue
        text = resp.content[:MAX_LOG_BYTES].decode("utf-8", errors="replace")
        found = incident_from_text(text)
        if found is not None:
            return found.with_changes(
                source="github",
                repo=repo,
                ref=event.head_sha or base.ref,
                links=base.links,
                external_id=base.external_id,
                extra={**base.extra, "job_id": job.get("id")},
            )
    return base
