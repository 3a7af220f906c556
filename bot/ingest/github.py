"""GitHub App deliveries -> Route. Fields are read from the dict (strict models reject real
payloads). May import: bot.ingest.routes, bot.incident, bot.jobs, bot.settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.incident import BRANCH_PREFIX, Incident
from bot.ingest.routes import (
    Ignored,
    InstallationChange,
    NewJob,
    PayloadError,
    Pong,
    Route,
    get,
    group_fingerprint,
    need_int,
    need_mapping,
    need_text,
    text,
)
from bot.jobs import MAX_TEXT, GitHubEvent
from bot.settings import Settings

COMMAND = "/selfheal"
INSTALLATION_ACTIONS = ("created", "deleted", "suspend", "unsuspend", "new_permissions_accepted")


def has_command(body: str | None) -> bool:
    """True when a line of the comment starts with `/selfheal` (parsing is bot.commands')."""
    if not body:
        return False
    for line in body.splitlines():
        word = line.strip().split(maxsplit=1)
        if word and word[0].lower() == COMMAND:
            return True
    return False


def _is_bot(user: Any) -> bool:
    if not isinstance(user, Mapping):
        return False
    login = user.get("login")
    return user.get("type") == "Bot" or (isinstance(login, str) and login.endswith("[bot]"))


def _repo_names(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    names = []
    for item in items:
        name = get(item, "full_name")
        if isinstance(name, str) and "/" in name:
            names.append(name[:200])
    return tuple(names)


def _installation(payload: Any) -> str:
    return str(need_int(payload, "installation.id"))


def route(event: str, payload: Any, settings: Settings, delivery_key: str) -> Route:
    """Decide what one GitHub delivery asks for."""
    if type(payload) is not dict:
        raise PayloadError("the body must be a JSON object")
    action = text(payload, "action", 100)
    name = f"{event}.{action}" if action else event
    if event == "ping":
        return Pong()
    if event == "installation":
        return _installation_event(payload, action)
    if event == "installation_repositories":
        if action not in ("added", "removed"):
            return Ignored(f"github {name} is not acted on")
        return InstallationChange(
            installation_id=_installation(payload),
            action=action,
            info={"account": text(payload, "installation.account.login", 200)},
            added=_repo_names(payload.get("repositories_added")),
            removed=_repo_names(payload.get("repositories_removed")),
        )
    handler = _HANDLERS.get(event)
    if handler is None:
        return Ignored(f"github event {name} is not acted on")
    return handler(payload, action, settings, delivery_key)


def _installation_event(payload: Mapping[str, Any], action: str | None) -> Route:
    if action not in INSTALLATION_ACTIONS:
        return Ignored(f"github installation.{action} is not acted on")
    installation_id = _installation(payload)
    if action == "deleted":
        return InstallationChange(installation_id, action, None)
    info = {
        "account": text(payload, "installation.account.login", 200),
        "account_type": text(payload, "installation.account.type", 50),
        "repository_selection": text(payload, "installation.repository_selection", 50),
        "suspended": action == "suspend",
    }
    repos = _repo_names(payload.get("repositories"))
    return InstallationChange(installation_id, action, info, added=repos, replace=bool(repos))


def _repo(payload: Mapping[str, Any]) -> str:
    repo = need_text(payload, "repository.full_name", 200)
    if repo.count("/") != 1:
        raise PayloadError("missing or invalid field: repository.full_name")
    return repo


def _issues(payload: Mapping[str, Any], action: str | None, settings: Settings, key: str) -> Route:
    if action != "labeled":
        return Ignored(f"github issues.{action} is not acted on")
    label = text(payload, "label.name", 200)
    if (label or "").lower() != settings.github_trigger_label.lower():
        return Ignored(
            f"label {label!r} is not the trigger label {settings.github_trigger_label!r}"
        )
    if _is_bot(payload.get("sender")):
        return Ignored("the sender is a bot")
    repo = _repo(payload)
    number = need_int(payload, "issue.number")
    installation = _installation(payload)
    github = GitHubEvent(
        event="issues",
        action=action,
        number=number,
        sender=text(payload, "sender.login", 200),
        title=text(payload, "issue.title", 1000),
        url=text(payload, "issue.html_url", 1000),
        extra={"body": (text(payload, "issue.body", MAX_TEXT) or ""), "label": label},
    )
    return NewJob(
        kind="issue",
        source="github",
        repo=repo,
        fingerprint=group_fingerprint("github-issue", repo, number),
        delivery_key=key,
        installation_id=installation,
        github=github,
    )


def _issue_comment(
    payload: Mapping[str, Any], action: str | None, settings: Settings, key: str
) -> Route:
    if action != "created":
        return Ignored(f"github issue_comment.{action} is not acted on")
    if _is_bot(payload.get("sender")) or _is_bot(get(payload, "comment.user")):
        return Ignored("the comment is from a bot")
    body = text(payload, "comment.body", MAX_TEXT)
    if not has_command(body):
        return Ignored(f"the comment has no {COMMAND} command")
    repo = _repo(payload)
    number = need_int(payload, "issue.number")
    comment_id = need_int(payload, "comment.id")
    installation = _installation(payload)
    github = GitHubEvent(
        event="issue_comment",
        action=action,
        number=number,
        comment_id=comment_id,
        comment_body=body,
        sender=text(payload, "comment.user.login", 200),
        title=text(payload, "issue.title", 1000),
        url=text(payload, "comment.html_url", 1000),
        extra={
            "author_association": text(payload, "comment.author_association", 50),
            "is_pull_request": isinstance(get(payload, "issue.pull_request"), Mapping),
        },
    )
    return NewJob(
        kind="command",
        source="github",
        repo=repo,
        fingerprint=group_fingerprint("github-command", repo, number, comment_id),
        delivery_key=key,
        installation_id=installation,
        github=github,
    )


def _ci_failure(
    payload: Mapping[str, Any],
    event: str,
    obj: Mapping[str, Any],
    branch: str | None,
    settings: Settings,
    key: str,
) -> Route:
    conclusion = obj.get("conclusion")
    if conclusion != "failure":
        return Ignored(f"github {event} concluded {conclusion!r}, not 'failure'")
    default = text(payload, "repository.default_branch", 200)
    if not branch or branch != default:
        return Ignored(f"github {event} failed on {branch!r}, not the default branch {default!r}")
    app_slug = text(obj, "app.slug", 200)
    if settings.github_app_slug and app_slug == settings.github_app_slug:
        return Ignored(f"github {event} belongs to this App")
    repo = _repo(payload)
    run_id = need_int(payload, f"{event}.id")
    head_sha = need_text(payload, f"{event}.head_sha", 64)
    installation = _installation(payload)
    name = text(obj, "name", 300) or event
    url = text(obj, "html_url", 1000)
    github = GitHubEvent(
        event=event,
        action="completed",
        run_id=run_id,
        head_sha=head_sha,
        head_branch=branch,
        sender=text(payload, "sender.login", 200),
        title=name,
        url=url,
        extra={"details_url": text(obj, "details_url", 1000), "app": app_slug},
    )
    incident = Incident(
        source="github",
        title=f"CI failure on {branch}: {name}",
        repo=repo,
        ref=head_sha,
        links=tuple(u for u in (url,) if u),
        external_id=str(run_id),
        extra={"event": event, "run_id": run_id, "check": name},
    )
    return NewJob(
        kind="incident",
        source="github",
        repo=repo,
        # Every failing check of one commit is one problem.
        fingerprint=group_fingerprint("github-ci", repo, head_sha),
        delivery_key=key,
        installation_id=installation,
        incident=incident,
        github=github,
    )


def _check_run(
    payload: Mapping[str, Any], action: str | None, settings: Settings, key: str
) -> Route:
    if action != "completed":
        return Ignored(f"github check_run.{action} is not acted on")
    obj = need_mapping(payload, "check_run")
    branch = text(obj, "check_suite.head_branch", 300)
    return _ci_failure(payload, "check_run", obj, branch, settings, key)


def _workflow_run(
    payload: Mapping[str, Any], action: str | None, settings: Settings, key: str
) -> Route:
    if action != "completed":
        return Ignored(f"github workflow_run.{action} is not acted on")
    obj = need_mapping(payload, "workflow_run")
    return _ci_failure(payload, "workflow_run", obj, text(obj, "head_branch", 300), settings, key)


def _check_suite(
    payload: Mapping[str, Any], action: str | None, settings: Settings, key: str
) -> Route:
    """Green checks on a bot branch: a merge the policy allowed may be waiting for them."""
    if action != "completed":
        return Ignored(f"github check_suite.{action} is not acted on")
    obj = need_mapping(payload, "check_suite")
    branch = text(obj, "head_branch", 300) or ""
    if not branch.startswith(BRANCH_PREFIX):
        return Ignored(f"check suite on {branch!r}, not one of the bot's ({BRANCH_PREFIX}*)")
    if obj.get("conclusion") != "success":
        return Ignored(f"check suite on {branch} concluded {obj.get('conclusion')!r}")
    repo = _repo(payload)
    head_sha = need_text(payload, "check_suite.head_sha", 64)
    pulls = obj.get("pull_requests")
    first = pulls[0] if isinstance(pulls, list) and pulls and isinstance(pulls[0], Mapping) else {}
    number = first.get("number") if isinstance(first.get("number"), int) else None
    github = GitHubEvent(
        event="check_suite", action=action, number=number, head_sha=head_sha, head_branch=branch
    )
    return NewJob(
        kind="checks",
        source="github",
        repo=repo,
        fingerprint=group_fingerprint("github-checks", repo, head_sha),
        delivery_key=key,
        installation_id=_installation(payload),
        github=github,
    )


def _review_comment(
    payload: Mapping[str, Any], action: str | None, settings: Settings, key: str
) -> Route:
    if action != "created":
        return Ignored(f"github pull_request_review_comment.{action} is not acted on")
    if _is_bot(payload.get("sender")) or _is_bot(get(payload, "comment.user")):
        return Ignored("the comment is from a bot")
    head = text(payload, "pull_request.head.ref", 300) or ""
    if not head.startswith(BRANCH_PREFIX):
        return Ignored(f"pull request branch {head!r} is not one of the bot's ({BRANCH_PREFIX}*)")
    repo = _repo(payload)
    number = need_int(payload, "pull_request.number")
    comment_id = need_int(payload, "comment.id")
    installation = _installation(payload)
    github = GitHubEvent(
        event="pull_request_review_comment",
        action=action,
        number=number,
        comment_id=comment_id,
        comment_body=text(payload, "comment.body", MAX_TEXT),
        sender=text(payload, "comment.user.login", 200),
        url=text(payload, "comment.html_url", 1000),
        head_branch=head,
        head_sha=text(payload, "pull_request.head.sha", 64),
        extra={
            "path": text(payload, "comment.path", 1000),
            "line": get(payload, "comment.line")
            if isinstance(get(payload, "comment.line"), int)
            else None,
            "diff_hunk": text(payload, "comment.diff_hunk", 8000),
            "author_association": text(payload, "comment.author_association", 50),
        },
    )
    return NewJob(
        kind="review",
        source="github",
        repo=repo,
        fingerprint=group_fingerprint("github-review", repo, number, comment_id),
        delivery_key=key,
        installation_id=installation,
        github=github,
    )


_HANDLERS = {
    "issues": _issues,
    "issue_comment": _issue_comment,
    "check_run": _check_run,
    "workflow_run": _workflow_run,
    "check_suite": _check_suite,
    "pull_request_review_comment": _review_comment,
}
