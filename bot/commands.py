"""Comment commands (`/selfheal fix|retry|revise|explain|merge|stop|help`) and review feedback.

Parsing is pure (`parse_command`); handling (`handle_comment`, `handle_review`) checks who
asked, at the time of the command, through GitHub's collaborator-permission API, answers in a
comment, and hands the work to `CommandHandlers` callbacks (enqueue a job, cancel a job, merge
under the policy) that the queue layer implements. The bot ignores its own comments and every
other bot's. Commands inside quotes (`>`) or code blocks are not commands. Unknown or
malformed commands get the help text; nothing a commenter writes is ever executed or trusted
beyond being passed on as a hint.

May import: bot.github, bot.delivery.github, bot.messages, bot.repo_config, bot.errors,
bot.incident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed

from bot import messages
from bot.delivery.github import get_pull, post_comment
from bot.errors import SelfhealError
from bot.github.app import GitHubApp, split_repo
from bot.incident import BRANCH_PREFIX
from bot.repo_config import RepoConfig

log = structlog.get_logger(__name__)

COMMANDS = ("fix", "retry", "revise", "explain", "merge", "stop", "help")
WRITE_COMMANDS = frozenset({"fix", "retry", "revise", "merge", "stop"})
NEEDS_ARGUMENT = frozenset({"revise"})
TAKES_ARGUMENT = frozenset({"fix", "retry", "revise"})
ON_BOT_PR_ONLY = frozenset({"revise", "merge"})
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
MAX_ARGUMENT = 4000
MAX_SCANNED = 20_000  # a command must appear in the comment's first 20,000 characters

_COMMAND_LINE = re.compile(r"^\s{0,3}/selfheal(?!\S)(?:[ \t]+(\S+))?[ \t]*(.*)$", re.IGNORECASE)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")

JobKind = Literal["fix", "retry", "revise"]


@dataclass(frozen=True)
class Command:
    """A parsed command. `name` is one of COMMANDS, or "invalid" (then `error` says why)."""

    name: str
    argument: str = ""
    error: str = ""


def parse_command(body: str | None) -> Command | None:
    """The first `/selfheal ...` line of a comment (None when there is none).

    The argument is the rest of that line plus the lines after it (a hint or feedback may
    span lines), trimmed and capped at MAX_ARGUMENT characters.
    """
    if not body:
        return None
    lines = body[:MAX_SCANNED].splitlines()
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or line.lstrip().startswith(">"):
            continue
        m = _COMMAND_LINE.match(line)
        if m is None:
            continue
        word = (m.group(1) or "").lower()
        rest = "\n".join([m.group(2), *lines[i + 1 :]]).strip()[:MAX_ARGUMENT]
        if not word:
            return Command("invalid", error="no command given")
        if word not in COMMANDS:
            return Command("invalid", argument=word, error=f"unknown command {word!r}")
        if rest and word not in TAKES_ARGUMENT:
            return Command("invalid", argument=word, error=f"`{word}` takes no argument")
        if not rest and word in NEEDS_ARGUMENT:
            return Command("invalid", argument=word, error=f"`{word}` needs FEEDBACK")
        return Command(word, rest)
    return None


@dataclass(frozen=True)
class JobRequest:
    """Work for the queue: a new fix, a retry, or a revision of a Selfheal PR."""

    kind: JobKind
    repo: str
    installation_id: int
    number: int  # the issue or PR the command was given on
    is_pull_request: bool
    requested_by: str
    hint: str | None = None  # fix/retry hint or revise feedback (untrusted text)
    branch: str | None = None  # revise: the Selfheal PR's head branch
    head_sha: str | None = None


class CommandHandlers(Protocol):
    """What commands do, provided by the queue layer. Each returns a line for the reply."""

    def enqueue(self, request: JobRequest) -> str: ...

    def cancel(self, repo: str, number: int, requested_by: str) -> str: ...

    def merge(self, repo: str, installation_id: int, number: int, requested_by: str) -> str:
        """Merge a Selfheal PR: re-run the policy with `merge_requested_by` set (which waives
        only the unattended-merge rules) and merge with `merge_pull_request` if it allows."""
        ...

    def decision_record(self, repo: str, number: int) -> str | None: ...


@dataclass(frozen=True)
class CommentEvent:
    """An `issue_comment` (created) delivery, reduced to what commands need."""

    repo: str
    installation_id: int
    number: int
    is_pull_request: bool
    comment_id: int
    body: str
    author: str
    author_type: str
    via_app: bool = False

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CommentEvent | None:
        """None when the payload is not a usable issue_comment.created delivery."""
        try:
            comment, issue = payload["comment"], payload["issue"]
            return cls(
                repo=str(payload["repository"]["full_name"]),
                installation_id=int(payload["installation"]["id"]),
                number=int(issue["number"]),
                is_pull_request=bool(issue.get("pull_request")),
                comment_id=int(comment["id"]),
                body=str(comment.get("body") or ""),
                author=str(comment["user"]["login"]),
                author_type=str(comment["user"].get("type") or "User"),
                via_app=comment.get("performed_via_github_app") is not None,
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class ReviewEvent:
    """A review (`pull_request_review` submitted) or a review comment on a PR."""

    repo: str
    installation_id: int
    number: int
    head_ref: str
    head_sha: str
    author: str
    author_type: str
    body: str
    state: str = "commented"  # approved | changes_requested | commented | dismissed
    path: str | None = None
    line: int | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ReviewEvent | None:
        try:
            item = payload.get("review") or payload["comment"]
            pr = payload["pull_request"]
            return cls(
                repo=str(payload["repository"]["full_name"]),
                installation_id=int(payload["installation"]["id"]),
                number=int(pr["number"]),
                head_ref=str(pr["head"]["ref"]),
                head_sha=str(pr["head"]["sha"]),
                author=str(item["user"]["login"]),
                author_type=str(item["user"].get("type") or "User"),
                body=str(item.get("body") or ""),
                state=str(item.get("state") or "commented").lower(),
                path=item.get("path"),
                line=item.get("line"),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class CommandOutcome:
    """What the bot did with a comment. `reply_url` is the comment it posted, if any."""

    status: Literal["ignored", "help", "refused", "done", "failed"]
    command: str | None = None
    reply_url: str | None = None
    detail: str = ""


def is_bot(login: str, user_type: str, bot_login: str | None, via_app: bool = False) -> bool:
    return (
        via_app
        or user_type == "Bot"
        or login.endswith("[bot]")
        or (bot_login is not None and login.lower() == bot_login.lower())
    )


def permission_of(gh: GitHub[Any], repo: str, user: str) -> str:
    """The user's role on the repo now (admin, maintain, write, triage, read, or none)."""
    owner, name = split_repo(repo)
    try:
        data = gh.rest.repos.get_collaborator_permission_level(owner, name, user).json()
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return "none"
        raise
    role = str(data.get("role_name") or "")
    legacy = str(data.get("permission") or "none")
    # Custom roles carry their base permission in `permission` (admin/write/read/none).
    return role if role in WRITE_ROLES or legacy not in WRITE_ROLES else legacy


def can_write(permission: str) -> bool:
    return permission in WRITE_ROLES


def _decision_from_body(body: str) -> str | None:
    m = re.search(r"### Decision\n(.*?)(?:\n### |\Z)", body, re.DOTALL)
    return m.group(1).strip() if m else None


def handle_comment(
    event: CommentEvent,
    client: GitHubApp,
    handlers: CommandHandlers,
    bot_login: str | None = None,
) -> CommandOutcome:
    """Answer one comment. Never raises for bad input; GitHub errors become `failed`."""
    if is_bot(event.author, event.author_type, bot_login, event.via_app):
        return CommandOutcome("ignored", detail="comment by a bot")
    command = parse_command(event.body)
    if command is None:
        return CommandOutcome("ignored", detail="no command")
    gh = client.installation_client(event.installation_id)
    with gh:
        try:
            return _run(gh, event, command, handlers)
        except (GitHubException, SelfhealError) as exc:
            log.warning("command_failed", repo=event.repo, command=command.name, error=str(exc))
            return CommandOutcome("failed", command.name, detail=str(exc)[:300])


def _run(
    gh: GitHub[Any], event: CommentEvent, command: Command, handlers: CommandHandlers
) -> CommandOutcome:
    def reply(status: Literal["help", "refused", "done"], body: str) -> CommandOutcome:
        url = post_comment(gh, event.repo, event.number, body)
        return CommandOutcome(status, command.name, url, body)

    if command.name == "invalid":
        return reply("help", messages.help_text(command.error))
    if command.name == "help":
        return reply("help", messages.help_text())
    if command.name in WRITE_COMMANDS:
        permission = permission_of(gh, event.repo, event.author)
        if not can_write(permission):
            log.info("command_refused", repo=event.repo, user=event.author, command=command.name)
            return reply("refused", messages.refusal(command.name, event.author, permission))
    pull: dict[str, Any] | None = None
    if event.is_pull_request:
        pull = get_pull(gh, event.repo, event.number)
    is_bot_pr = pull is not None and str(pull["head"]["ref"]).startswith(BRANCH_PREFIX)
    if command.name in ON_BOT_PR_ONLY and not is_bot_pr:
        return reply("help", messages.not_a_bot_pr(command.name))

    if command.name == "explain":
        record = handlers.decision_record(event.repo, event.number)
        if record is None and is_bot_pr and pull is not None:
            record = _decision_from_body(str(pull.get("body") or ""))
        return reply("done", record or messages.no_decision_record())
    if command.name == "stop":
        detail = handlers.cancel(event.repo, event.number, event.author)
        return reply("done", messages.ack("stop", detail))
    if command.name == "merge":
        detail = handlers.merge(event.repo, event.installation_id, event.number, event.author)
        return reply("done", messages.ack("merge", detail))
    kind: JobKind = "revise" if command.name == "revise" else command.name  # type: ignore[assignment]
    request = JobRequest(
        kind=kind,
        repo=event.repo,
        installation_id=event.installation_id,
        number=event.number,
        is_pull_request=event.is_pull_request,
        requested_by=event.author,
        hint=command.argument or None,
        branch=str(pull["head"]["ref"]) if pull is not None and is_bot_pr else None,
        head_sha=str(pull["head"]["sha"]) if pull is not None else None,
    )
    detail = handlers.enqueue(request)
    return reply("done", messages.ack(command.name, detail))


def handle_review(
    event: ReviewEvent,
    client: GitHubApp,
    handlers: CommandHandlers,
    config: RepoConfig,
    bot_login: str | None = None,
) -> CommandOutcome:
    """Review feedback on a Selfheal PR starts a revision when the repo config allows it."""
    if is_bot(event.author, event.author_type, bot_login):
        return CommandOutcome("ignored", detail="review by a bot")
    if not event.head_ref.startswith(BRANCH_PREFIX):
        return CommandOutcome("ignored", detail="not a Selfheal pull request")
    if not config.revise_on_review_comments:
        return CommandOutcome("ignored", detail="revise_on_review_comments is off")
    if event.state in ("approved", "dismissed") or not event.body.strip():
        return CommandOutcome("ignored", detail=f"{event.state} review without feedback")
    if parse_command(event.body) is not None:
        return CommandOutcome("ignored", detail="commands go in PR comments, not reviews")
    gh = client.installation_client(event.installation_id)
    with gh:
        try:
            permission = permission_of(gh, event.repo, event.author)
            if not can_write(permission):
                log.info("review_ignored_no_write", repo=event.repo, user=event.author)
                return CommandOutcome("refused", "revise", detail=f"{event.author}: {permission}")
            where = f"{event.path}:{event.line}: " if event.path else ""
            request = JobRequest(
                kind="revise",
                repo=event.repo,
                installation_id=event.installation_id,
                number=event.number,
                is_pull_request=True,
                requested_by=event.author,
                hint=(where + event.body.strip())[:MAX_ARGUMENT],
                branch=event.head_ref,
                head_sha=event.head_sha,
            )
            detail = handlers.enqueue(request)
            url = post_comment(
                gh, event.repo, event.number, messages.ack("revise", f"{detail} (from review)")
            )
        except (GitHubException, SelfhealError) as exc:
            log.warning("review_failed", repo=event.repo, error=str(exc))
            return CommandOutcome("failed", "revise", detail=str(exc)[:300])
    return CommandOutcome("done", "revise", url, detail)
