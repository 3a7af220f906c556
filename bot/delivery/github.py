"""Deliver a decision on GitHub: branch, exactly one PR per problem, check run, merge.

`deliver_to_github(request, client)` is the one entry point the pipeline calls. It pushes the
worktree's HEAD to `selfheal/<short fingerprint>` and finds the problem's PR again by that head
branch, so a retried or redelivered job force-pushes and updates the same PR instead of
opening a second one. For `merge` it enables GitHub's native auto-merge (GraphQL), so the
repository's required checks still gate it; where auto-merge is not allowed (or there is
nothing for it to wait on) it merges over REST with the expected head SHA once the PR's checks
are green. A write that failed ambiguously (5xx, timeout, 405, 409) is never retried blindly:
the PR is read back first and the result comes from what GitHub says happened.

May import: bot.github, bot.policy, bot.repo_config, bot.incident, bot.messages, bot.backlinks,
bot.settings, bot.errors.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog
from githubkit import GitHub
from githubkit.exception import GitHubException, GraphQLFailed, RequestFailed, RequestTimeout

from bot import messages
from bot.backlinks import post_backlinks
from bot.errors import ConfigError, SelfhealError
from bot.github.app import GitHubApp, describe_github_error, split_repo
from bot.github.credentials import git_auth_env
from bot.incident import Incident
from bot.policy import Action, Decision
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from bot.settings import Settings

log = structlog.get_logger(__name__)

SELFHEAL_CHECK = "selfheal"
ChecksState = Literal["success", "pending", "failure", "none"]

AUTO_MERGE_MUTATION = """
mutation($id: ID!, $sha: GitObjectID, $method: PullRequestMergeMethod) {
  enablePullRequestAutoMerge(
    input: {pullRequestId: $id, expectedHeadOid: $sha, mergeMethod: $method}
  ) {
    pullRequest { number autoMergeRequest { enabledAt mergeMethod } }
  }
}
"""


class DeliveryError(SelfhealError):
    """GitHub refused a step of the delivery (push rejected, PR cannot be created)."""


@dataclass(frozen=True)
class GitHubDelivery:
    """What to deliver and where. `worktree` is a git worktree whose HEAD is the fix commit."""

    repo: str  # owner/name
    installation_id: int
    worktree: Path
    base_branch: str
    branch: str
    decision: Decision
    report_markdown: str
    report: dict[str, Any]
    incident: Incident
    trigger: int | None = None  # issue or PR number to comment on
    labels: tuple[str, ...] = ("selfheal",)
    merge_method: Literal["merge", "squash", "rebase"] = "squash"
    checks_wait_s: float = 300.0  # how long to wait for green checks before a REST merge
    checks_settle_s: float = 30.0  # with no checks at all: wait this long for CI to appear
    poll_interval_s: float = 5.0


@dataclass
class DeliveryResult:
    """What happened on GitHub. `action_taken` may be below the decision (notes say why)."""

    action_taken: str  # merge | pr | draft_pr | report
    pr_number: int | None = None
    pr_url: str | None = None
    head_sha: str | None = None
    merged: bool = False
    auto_merge_enabled: bool = False
    merge_pending: bool = False  # merge decided, checks still running: merge_if_green later
    comment_url: str | None = None
    check_run_id: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MergeResult:
    merged: bool = False
    auto_merge_enabled: bool = False
    pending: bool = False
    detail: str = ""


# --- small GitHub helpers -------------------------------------------------------------------


def _raw(resp: Any) -> Any:
    """The response's JSON as sent. We read plain JSON rather than githubkit's strict models:
    GitHub Enterprise Server versions lag behind the schema, and a missing field must not
    break a delivery."""
    return resp.json()


def _status(exc: GitHubException) -> int | None:
    return exc.response.status_code if isinstance(exc, RequestFailed) else None


def get_pull(gh: GitHub[Any], repo: str, number: int) -> dict[str, Any]:
    owner, name = split_repo(repo)
    data: dict[str, Any] = _raw(gh.rest.pulls.get(owner, name, number))
    return data


def find_pull_for_branch(gh: GitHub[Any], repo: str, branch: str) -> dict[str, Any] | None:
    """The problem's PR: the open one for `branch`, else the newest closed one, else None."""
    owner, name = split_repo(repo)
    pulls: list[dict[str, Any]] = _raw(
        gh.rest.pulls.list(owner, name, head=f"{owner}:{branch}", state="all", per_page=100)
    )
    pulls = [p for p in pulls if p.get("head", {}).get("ref") == branch]
    open_ = [p for p in pulls if p.get("state") == "open"]
    if open_:
        return open_[0]
    return max(pulls, key=lambda p: int(p["number"]), default=None)


def required_checks(gh: GitHub[Any], repo: str, branch: str) -> list[str]:
    """The status checks branch protection requires on `branch` (empty when unprotected)."""
    owner, name = split_repo(repo)
    try:
        data = _raw(gh.rest.repos.get_branch(owner, name, branch))
    except RequestFailed:
        return []
    checks = ((data.get("protection") or {}).get("required_status_checks") or {}) if data else {}
    names = [str(c) for c in checks.get("contexts") or []]
    names += [str(c.get("context")) for c in checks.get("checks") or [] if c.get("context")]
    return sorted(set(names) - {SELFHEAL_CHECK})


def checks_state(
    gh: GitHub[Any], repo: str, sha: str, required: list[str] | None = None
) -> ChecksState:
    """Check runs and commit statuses on `sha`, ignoring our own `selfheal` check. A required
    check that has not reported yet counts as pending."""
    owner, name = split_repo(repo)
    runs = _raw(gh.rest.checks.list_for_ref(owner, name, sha, per_page=100)).get("check_runs", [])
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run.get("name") != SELFHEAL_CHECK:
            latest.setdefault(str(run.get("name")), run)  # GitHub lists newest first
    statuses = _raw(gh.rest.repos.get_combined_status_for_ref(owner, name, sha)).get("statuses", [])
    reported = set(latest) | {str(st.get("context")) for st in statuses}
    if any(r not in reported for r in required or ()):
        return "pending"
    if not latest and not statuses:
        return "none"
    states = []
    for run in latest.values():
        if run.get("status") != "completed":
            states.append("pending")
        elif run.get("conclusion") in ("success", "neutral", "skipped"):
            states.append("success")
        else:
            states.append("failure")
    for st in statuses:
        states.append({"success": "success", "pending": "pending"}.get(st.get("state"), "failure"))
    if "failure" in states:
        return "failure"
    return "pending" if "pending" in states else "success"


def upsert_comment(gh: GitHub[Any], repo: str, number: int, body: str, key: str) -> str:
    """Post `body` on issue/PR `number`, or edit our earlier comment carrying marker `key`."""
    owner, name = split_repo(repo)
    comments = _raw(gh.rest.issues.list_comments(owner, name, number, per_page=100))
    for c in comments:
        if key in (c.get("body") or "") and str(c.get("user", {}).get("type")) == "Bot":
            data = _raw(gh.rest.issues.update_comment(owner, name, int(c["id"]), body=body))
            return str(data.get("html_url", ""))
    data = _raw(gh.rest.issues.create_comment(owner, name, number, body=body))
    return str(data.get("html_url", ""))


def post_comment(gh: GitHub[Any], repo: str, number: int, body: str) -> str:
    owner, name = split_repo(repo)
    data = _raw(
        gh.rest.issues.create_comment(
            owner, name, number, body=messages.truncate(body, messages.MAX_BODY)
        )
    )
    return str(data.get("html_url", ""))


def post_config_error(
    client: GitHubApp,
    repo: str,
    installation_id: int,
    number: int | None,
    error: str,
    head_sha: str | None = None,
) -> str:
    """Explain an invalid `.github/selfheal.yml` (file, line, field): as a comment on the
    triggering issue or PR (edited, not repeated, on later runs), or, when the job has no
    issue or PR (a Sentry or PagerDuty alert), as a `selfheal` check run on `head_sha`.
    Returns the comment's or check run's URL ("" when there is nowhere to say it)."""
    gh = client.installation_client(installation_id)
    body = messages.config_error_comment(error)
    with gh:
        if number is not None:
            return upsert_comment(
                gh, repo, number, body, messages.marker("config-error", "selfheal.yml")
            )
        if head_sha is None:
            return ""
        owner, name = split_repo(repo)
        check: dict[str, Any] = {
            "name": SELFHEAL_CHECK,
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": "action_required",
            "output": {"title": "Invalid .github/selfheal.yml", "summary": body},
        }
        data = _raw(gh.rest.checks.create(owner, name, data=check))  # type: ignore[call-overload]
        return str(data.get("html_url", ""))


def fetch_repo_config(
    gh: GitHub[Any], repo: str, branch: str | None = None
) -> tuple[RepoConfig, str | None]:
    """`.github/selfheal.yml` from the default branch (or `branch`) through the API, for
    events handled without a clone. Returns the config and the error text when it is invalid
    (then the config is the safe default); an absent file gives the defaults and no error."""
    owner, name = split_repo(repo)
    if branch is None:
        branch = str(_raw(gh.rest.repos.get(owner, name)).get("default_branch") or "main")
    try:
        data = _raw(gh.rest.repos.get_content(owner, name, CONFIG_PATH, ref=branch))
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return RepoConfig(), None
        raise
    if not isinstance(data, dict) or data.get("type") != "file":
        return RepoConfig(), f"{CONFIG_PATH}: expected a file"
    try:
        text = base64.b64decode(str(data.get("content") or "")).decode("utf-8")
        return parse_repo_config(text), None
    except (ValueError, UnicodeDecodeError) as exc:
        return RepoConfig(), f"{CONFIG_PATH}: cannot read the file ({exc})"
    except ConfigError as exc:
        return RepoConfig(), str(exc)


# --- git ------------------------------------------------------------------------------------


def push_branch(worktree: Path, clone_url: str, branch: str, token: str) -> str:
    """Force-push the worktree's HEAD to `branch`; returns the pushed SHA. The token travels
    only in git's environment (never argv, URL, .git/config or output)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_TRACE")},
        "GIT_TRACE_REDACT": "1",
    }
    env.update(git_auth_env(token, clone_url, env))

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(worktree), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().replace(token, "***")[-500:]
            raise DeliveryError(f"git {args[0]} failed: {detail}")
        return proc.stdout.strip()

    sha = git("rev-parse", "HEAD")
    # A force push only sets the ref, so repeating it is safe; GitHub (like any git server)
    # can refuse it transiently when another push holds the ref's lock.
    for attempt in range(3):
        try:
            git("push", "--force", "--quiet", clone_url, f"HEAD:refs/heads/{branch}")
            return sha
        except DeliveryError as exc:
            transient = any(
                marker in str(exc)
                for marker in (
                    "cannot lock ref",
                    "failed to update ref",
                    "The requested URL returned error: 5",
                )
            )
            if not transient or attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
    return sha


# --- merge ----------------------------------------------------------------------------------


PR_FLAG_MUTATION = """
mutation($id: ID!) {
  %s(input: {pullRequestId: $id}) { pullRequest { number isDraft } }
}
"""


def _set_pr_flag(
    gh: GitHub[Any], mutation: str, pull: dict[str, Any], result: DeliveryResult
) -> bool:
    """Run a one-argument PR mutation (disable auto-merge, draft <-> ready); notes failures."""
    try:
        gh.graphql(PR_FLAG_MUTATION % mutation, {"id": pull["node_id"]})
    except (GraphQLFailed, RequestFailed, RequestTimeout) as exc:
        detail = (
            "; ".join(str(getattr(e, "message", e)) for e in exc.response.errors or [])
            if isinstance(exc, GraphQLFailed)
            else describe_github_error(exc)
        )
        result.notes.append(f"{mutation} on #{pull['number']} failed ({detail})")
        return False
    return True


def _enable_auto_merge(
    gh: GitHub[Any], pull: dict[str, Any], sha: str, method: str
) -> tuple[bool, str]:
    try:
        gh.graphql(
            AUTO_MERGE_MUTATION, {"id": pull["node_id"], "sha": sha, "method": method.upper()}
        )
    except GraphQLFailed as exc:
        errors = exc.response.errors or []
        return False, "; ".join(str(getattr(e, "message", e)) for e in errors) or "refused"
    except (RequestFailed, RequestTimeout) as exc:
        # Ambiguous: read back whether GitHub armed it before deciding anything else.
        armed = bool(
            get_pull(gh, str(pull["base"]["repo"]["full_name"]), pull["number"]).get("auto_merge")
        )
        return armed, f"auto-merge request {describe_github_error(exc)}; read back: armed={armed}"
    return True, "auto-merge enabled"


def _rest_merge(
    gh: GitHub[Any], repo: str, number: int, sha: str, method: Literal["merge", "squash", "rebase"]
) -> MergeResult:
    owner, name = split_repo(repo)
    try:
        data = _raw(gh.rest.pulls.merge(owner, name, number, sha=sha, merge_method=method))
        if data.get("merged"):
            return MergeResult(merged=True, detail=f"merged as {data.get('sha')}")
        reason = str(data.get("message"))
    except (RequestFailed, RequestTimeout) as exc:
        status = _status(exc)
        if status is not None and status < 500 and status not in (405, 409):
            return MergeResult(detail=f"GitHub refused the merge ({describe_github_error(exc)})")
        reason = describe_github_error(exc)
    # Ambiguous: the merge may or may not have happened. Read, never retry blindly.
    state = get_pull(gh, repo, number)
    if state.get("merged"):
        return MergeResult(
            merged=True, detail=f"merged (confirmed after an unclear answer: {reason})"
        )
    return MergeResult(
        detail=f"not merged ({reason}); the PR stays open and the merge was not retried"
    )


def merge_pull_request(
    gh: GitHub[Any],
    repo: str,
    number: int,
    expected_sha: str,
    method: Literal["merge", "squash", "rebase"] = "squash",
    *,
    checks_wait_s: float = 300.0,
    checks_settle_s: float = 30.0,
    poll_interval_s: float = 5.0,
) -> MergeResult:
    """Merge a PR whose head must still be `expected_sha`, with the repository's checks
    still gating it: native auto-merge when allowed, else REST merge once checks are green."""
    pull = get_pull(gh, repo, number)
    if pull.get("merged"):
        return MergeResult(merged=True, detail="already merged")
    if pull.get("state") != "open":
        return MergeResult(detail="the pull request is closed")
    if pull.get("head", {}).get("sha") != expected_sha:
        return MergeResult(detail="the branch moved since validation; not merging unvalidated code")
    if pull.get("draft"):
        return MergeResult(detail="the pull request is a draft")
    if pull.get("auto_merge"):
        return MergeResult(auto_merge_enabled=True, detail="auto-merge already enabled")
    owner, name = split_repo(repo)
    allow_auto = bool(_raw(gh.rest.repos.get(owner, name)).get("allow_auto_merge"))
    auto_note = "the repository does not allow auto-merge"
    if allow_auto:
        enabled, auto_note = _enable_auto_merge(gh, pull, expected_sha, method)
        if enabled:
            return MergeResult(auto_merge_enabled=True, detail=auto_note)
        # GitHub refuses auto-merge when nothing is left to wait on ("clean status"): then
        # the PR can be merged directly, below, under the same green-checks condition.
        log.info("auto_merge_refused", repo=repo, pr=number, reason=auto_note)
    required = required_checks(gh, repo, str(pull.get("base", {}).get("ref") or ""))
    start = time.monotonic()
    deadline = start + checks_wait_s
    while True:
        state = checks_state(gh, repo, expected_sha, required)
        if state == "failure":
            return MergeResult(detail="a check failed on the head commit; not merging")
        if state == "success" or (state == "none" and time.monotonic() - start >= checks_settle_s):
            break
        if time.monotonic() >= deadline:
            return MergeResult(
                pending=True, detail=f"checks still running ({auto_note}); merge is pending"
            )
        time.sleep(max(0.0, min(poll_interval_s, deadline - time.monotonic())))
    return _rest_merge(gh, repo, number, expected_sha, method)


def merge_if_green(
    client: GitHubApp,
    repo: str,
    installation_id: int,
    number: int,
    expected_sha: str,
    method: Literal["merge", "squash", "rebase"] = "squash",
) -> MergeResult:
    """For a pending merge, when a check suite completes: merge now if the checks are green."""
    gh = client.installation_client(installation_id)
    with gh:
        return merge_pull_request(
            gh, repo, number, expected_sha, method, checks_wait_s=0, checks_settle_s=0
        )


# --- the entry point ------------------------------------------------------------------------


def _check_run(gh: GitHub[Any], req: GitHubDelivery, sha: str, url: str | None) -> int | None:
    owner, name = split_repo(req.repo)
    conclusion = {Action.MERGE: "success", Action.PR: "success"}.get(req.decision.action, "neutral")
    body: dict[str, Any] = {
        "name": SELFHEAL_CHECK,
        "head_sha": sha,
        "status": "completed",
        "conclusion": conclusion,
        "external_id": req.incident.fingerprint[:40],
        "output": {
            "title": messages.check_title(req.decision),
            "summary": messages.check_summary(req.decision, req.report_markdown),
        },
    }
    if url:
        body["details_url"] = url
    try:
        return int(_raw(gh.rest.checks.create(owner, name, data=body))["id"])  # type: ignore[call-overload]
    except GitHubException as exc:  # the PR is what matters; a missing check is a note
        log.warning("check_run_failed", repo=req.repo, error=describe_github_error(exc))
        return None


def _trigger_url(gh: GitHub[Any], req: GitHubDelivery) -> str | None:
    if req.trigger is None:
        return None
    owner, name = split_repo(req.repo)
    try:
        data = _raw(gh.rest.issues.get(owner, name, req.trigger))
    except GitHubException:
        return None
    return str(data.get("html_url") or "") or None


def deliver_to_github(
    req: GitHubDelivery, client: GitHubApp, settings: Settings | None = None
) -> DeliveryResult:
    """Carry out `req.decision` on GitHub; see the module docstring for the guarantees.

    With `settings`, a PR that was just opened or merged is linked back from the PagerDuty
    incident or Sentry issue (when those tokens are configured).
    """
    gh = client.installation_client(req.installation_id)
    try:
        with gh:  # one HTTP connection pool for the whole delivery
            result, created = _deliver(gh, req, client)
    except GitHubException as exc:
        # Safe to retry the whole job: the PR is found again by its branch, never duplicated.
        raise DeliveryError(describe_github_error(exc)) from None
    if settings is not None and result.pr_url and (created or result.merged):
        result.notes += post_backlinks(settings, req.incident, result.pr_url, result.merged)
    return result


def _deliver(
    gh: GitHub[Any], req: GitHubDelivery, client: GitHubApp
) -> tuple[DeliveryResult, bool]:
    owner, name = split_repo(req.repo)
    action = req.decision.action
    result = DeliveryResult(action_taken=Action.REPORT.label)
    trigger_url = _trigger_url(gh, req)

    existing = find_pull_for_branch(gh, req.repo, req.branch)
    if existing is not None and existing.get("state") == "open" and existing.get("auto_merge"):
        # Auto-merge armed by an earlier run must not merge what this run pushes (or decided
        # against): disarm it before anything else; a `merge` decision re-arms it below.
        _set_pr_flag(gh, "disablePullRequestAutoMerge", existing, result)

    if action is Action.REPORT:
        if req.incident.ref and len(req.incident.ref) == 40:
            result.check_run_id = _check_run(gh, req, req.incident.ref, None)
        if existing is not None and existing.get("state") == "open":
            result.pr_number, result.pr_url = int(existing["number"]), existing.get("html_url")
            result.notes.append(
                f"this run's fix was not good enough to deliver; pull request "
                f"#{existing['number']} keeps its earlier commit"
            )
        _comment_on_trigger(gh, req, result)
        return result, False

    if existing is not None and existing.get("state") != "open" and not existing.get("merged"):
        result.pr_number, result.pr_url = int(existing["number"]), existing.get("html_url")
        result.notes.append(
            f"pull request #{existing['number']} for this problem was closed without merging; "
            "Selfheal does not reopen or replace it"
        )
        _comment_on_trigger(gh, req, result)
        return result, False
    if existing is not None and existing.get("merged"):
        existing = None  # the problem came back after a merged fix: a new PR

    repo_data = _raw(gh.rest.repos.get(owner, name))
    token = client.installation_token(req.installation_id)
    sha = push_branch(req.worktree, str(repo_data["clone_url"]), req.branch, token)
    result.head_sha = sha

    title = messages.pr_title(req.incident)
    body = messages.pr_body(req.incident, req.decision, req.report_markdown, trigger_url)
    draft = action is Action.DRAFT_PR
    pull: dict[str, Any] | None = None
    created = False
    if existing is None:
        try:
            pull = _raw(
                gh.rest.pulls.create(
                    owner,
                    name,
                    title=title,
                    head=req.branch,
                    base=req.base_branch,
                    body=body,
                    draft=draft,
                )
            )
            created = True
        except (RequestFailed, RequestTimeout) as exc:
            # 422 "already exists" (a concurrent job) or an ambiguous 5xx/timeout: read back.
            status = _status(exc)
            if status is not None and status < 500 and status != 422:
                raise DeliveryError(
                    f"cannot open the pull request ({describe_github_error(exc)})"
                ) from None
            existing = find_pull_for_branch(gh, req.repo, req.branch)
            if existing is None or existing.get("state") != "open":
                raise DeliveryError(
                    f"cannot open the pull request ({describe_github_error(exc)})"
                ) from None
            created = status != 422
    if existing is not None:
        pull = _raw(
            gh.rest.pulls.update(owner, name, int(existing["number"]), title=title, body=body)
        )
        if bool(pull.get("draft")) != draft:
            mutation = "convertPullRequestToDraft" if draft else "markPullRequestReadyForReview"
            if _set_pr_flag(gh, mutation, pull, result):
                pull = {**pull, "draft": draft}
    assert pull is not None
    result.pr_number, result.pr_url = int(pull["number"]), str(pull.get("html_url"))
    result.action_taken = Action.DRAFT_PR.label if pull.get("draft") else Action.PR.label

    if req.labels:
        try:
            gh.rest.issues.add_labels(owner, name, result.pr_number, labels=list(req.labels))
        except GitHubException as exc:
            result.notes.append(f"could not add labels ({describe_github_error(exc)})")
    result.check_run_id = _check_run(gh, req, sha, result.pr_url)

    if action is Action.MERGE and not pull.get("draft"):
        merge = merge_pull_request(
            gh,
            req.repo,
            result.pr_number,
            sha,
            req.merge_method,
            checks_wait_s=req.checks_wait_s,
            checks_settle_s=req.checks_settle_s,
            poll_interval_s=req.poll_interval_s,
        )
        result.merged, result.auto_merge_enabled = merge.merged, merge.auto_merge_enabled
        result.merge_pending = merge.pending
        if merge.merged:
            result.action_taken = Action.MERGE.label
        if merge.detail and not merge.merged and not merge.auto_merge_enabled:
            result.notes.append(merge.detail)
    _comment_on_trigger(gh, req, result)
    log.info(
        "delivered",
        repo=req.repo,
        pr=result.pr_number,
        action=result.action_taken,
        merged=result.merged,
        auto_merge=result.auto_merge_enabled,
    )
    return result, created


def _comment_on_trigger(gh: GitHub[Any], req: GitHubDelivery, result: DeliveryResult) -> None:
    if req.trigger is None or req.trigger == result.pr_number:
        return
    body = messages.delivered_comment(
        req.incident,
        req.decision,
        result.pr_url,
        result.merged,
        result.auto_merge_enabled,
        result.notes,
    )
    try:
        result.comment_url = upsert_comment(
            gh, req.repo, req.trigger, body, messages.marker("delivery", req.incident.fingerprint)
        )
    except GitHubException as exc:
        result.notes.append(f"could not comment on #{req.trigger} ({describe_github_error(exc)})")
