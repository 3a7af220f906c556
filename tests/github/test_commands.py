"""Comment commands against the fake GitHub: parsing, permissions, replies, bots ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.commands import (
    Command,
    CommentEvent,
    JobRequest,
    ReviewEvent,
    handle_comment,
    handle_review,
    parse_command,
)
from bot.delivery.github import GitHubDelivery, deliver_to_github
from bot.github.app import GitHubApp
from bot.incident import branch_name
from bot.policy import Action
from bot.repo_config import RepoConfig
from tests.github.conftest import INCIDENT, REPO, decision_for
from tests.support.fake_github import FakeGitHub

PAYLOADS = (
    Path(__file__).parent / "payloads"
)  # real examples published by GitHub (octokit/webhooks)


class Recorder:
    """The queue layer's side of CommandHandlers, recording what commands asked for."""

    def __init__(self, record: str | None = None) -> None:
        self.enqueued: list[JobRequest] = []
        self.cancelled: list[tuple[str, int, str]] = []
        self.merged: list[tuple[str, int, str]] = []
        self.record = record

    def enqueue(self, request: JobRequest) -> str:
        self.enqueued.append(request)
        return f"queued job {len(self.enqueued)}"

    def cancel(self, repo: str, number: int, requested_by: str) -> str:
        self.cancelled.append((repo, number, requested_by))
        return "cancelled the running job"

    def merge(self, repo: str, installation_id: int, number: int, requested_by: str) -> str:
        self.merged.append((repo, number, requested_by))
        return "merged"

    def decision_record(self, repo: str, number: int) -> str | None:
        return self.record


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/selfheal fix", Command("fix")),
        (
            "/selfheal fix the cart is empty\nsee line 3",
            Command("fix", "the cart is empty\nsee line 3"),
        ),
        ("Thanks!\n\n/selfheal retry use a default of 0", Command("retry", "use a default of 0")),
        ("/SELFHEAL Explain", Command("explain")),
        ("/selfheal revise handle None too", Command("revise", "handle None too")),
        ("/selfheal merge", Command("merge")),
        ("/selfheal stop", Command("stop")),
        ("/selfheal help", Command("help")),
        ("/selfheal", Command("invalid", error="no command given")),
        (
            "/selfheal frobnicate now",
            Command("invalid", "frobnicate", "unknown command 'frobnicate'"),
        ),
        ("/selfheal revise", Command("invalid", "revise", "`revise` needs FEEDBACK")),
        ("/selfheal merge please", Command("invalid", "merge", "`merge` takes no argument")),
        ("no command here", None),
        ("> /selfheal merge\nquoting someone", None),
        ("```\n/selfheal merge\n```", None),
        ("/selfhealfix", None),
        ("please run /selfheal merge", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_command(body: str | None, expected: Command | None) -> None:
    assert parse_command(body) == expected


def test_a_huge_hostile_comment_is_bounded() -> None:
    command = parse_command("/selfheal fix " + "A" * 1_000_000)
    assert command is not None and len(command.argument) == 4000
    assert parse_command("x\n" * 50_000 + "/selfheal merge") is None


def event(
    gh: FakeGitHub, body: str, user: str = "alice", number: int = 7, **kw: Any
) -> CommentEvent:
    fields: dict[str, Any] = {
        "repo": REPO,
        "installation_id": 1,
        "number": number,
        "is_pull_request": number in gh.repos[REPO].pulls,
        "comment_id": 1,
        "body": body,
        "author": user,
        "author_type": "User",
    }
    fields.update(kw)
    return CommentEvent(**fields)


@pytest.fixture
def bot_pr(gh: FakeGitHub, app: GitHubApp, worktree: Path) -> int:
    decision = decision_for(Action.PR)
    result = deliver_to_github(
        GitHubDelivery(
            REPO, 1, worktree, "main", branch_name(INCIDENT), decision, "report", {}, INCIDENT
        ),
        app,
    )
    assert result.pr_number is not None
    return result.pr_number


def test_merge_from_a_read_only_user_is_refused(
    gh: FakeGitHub, app: GitHubApp, bot_pr: int
) -> None:
    handlers = Recorder()
    outcome = handle_comment(event(gh, "/selfheal merge", "rita", bot_pr), app, handlers)
    assert outcome.status == "refused" and not handlers.merged
    (reply,) = gh.repos[REPO].comments[bot_pr]
    assert (
        "needs write, maintain or admin permission" in reply["body"]
        and "(yours: read)" in reply["body"]
    )
    assert not gh.repos[REPO].merges


@pytest.mark.parametrize("user", ["alice", "max"])  # write, and maintain (legacy "write")
def test_merge_from_a_writer_goes_to_the_policy(
    gh: FakeGitHub, app: GitHubApp, bot_pr: int, user: str
) -> None:
    handlers = Recorder()
    outcome = handle_comment(event(gh, "/selfheal merge", user, bot_pr), app, handlers)
    assert outcome.status == "done"
    assert handlers.merged == [(REPO, bot_pr, user)]
    assert gh.calls_to("GET", rf"/collaborators/{user}/permission$")


def test_a_stranger_cannot_start_a_fix(gh: FakeGitHub, app: GitHubApp) -> None:
    handlers = Recorder()
    outcome = handle_comment(event(gh, "/selfheal fix", "mallory"), app, handlers)
    assert outcome.status == "refused" and not handlers.enqueued
    assert "(yours: none)" in gh.repos[REPO].comments[7][0]["body"]


def test_fix_with_a_hint_is_enqueued_and_acknowledged(gh: FakeGitHub, app: GitHubApp) -> None:
    handlers = Recorder()
    outcome = handle_comment(event(gh, "/selfheal fix empty carts @everyone"), app, handlers)
    assert outcome.status == "done"
    (job,) = handlers.enqueued
    assert (job.kind, job.number, job.hint, job.requested_by) == (
        "fix",
        7,
        "empty carts @everyone",
        "alice",
    )
    reply = gh.repos[REPO].comments[7][0]["body"]
    assert "queued job 1" in reply and "@everyone" not in reply  # no mentions echoed


def test_revise_on_a_bot_pr_targets_its_branch(gh: FakeGitHub, app: GitHubApp, bot_pr: int) -> None:
    handlers = Recorder()
    handle_comment(event(gh, "/selfheal revise also handle None", number=bot_pr), app, handlers)
    (job,) = handlers.enqueued
    assert job.kind == "revise" and job.branch == branch_name(INCIDENT)
    assert job.hint == "also handle None" and job.head_sha == gh.repos[REPO].sha(job.branch)


def test_merge_on_an_issue_is_explained_not_run(gh: FakeGitHub, app: GitHubApp) -> None:
    handlers = Recorder()
    outcome = handle_comment(event(gh, "/selfheal merge"), app, handlers)
    assert outcome.status == "help" and not handlers.merged
    assert "pull requests that Selfheal opened" in gh.repos[REPO].comments[7][0]["body"]


def test_unknown_and_malformed_commands_get_the_help(gh: FakeGitHub, app: GitHubApp) -> None:
    for body in ("/selfheal frobnicate", "/selfheal revise"):
        assert handle_comment(event(gh, body), app, Recorder()).status == "help"
    replies = [c["body"] for c in gh.repos[REPO].comments[7]]
    assert all("/selfheal revise FEEDBACK" in r for r in replies)
    assert "frobnicate" in replies[0] and "needs FEEDBACK" in replies[1]


def test_explain_posts_the_decision_record(gh: FakeGitHub, app: GitHubApp, bot_pr: int) -> None:
    outcome = handle_comment(event(gh, "/selfheal explain", "rita", bot_pr), app, Recorder())
    assert outcome.status == "done"  # anyone may ask
    body = gh.repos[REPO].comments[bot_pr][0]["body"]
    assert "Decision: `pr`" in body and "`auto_merge_enabled`" in body


def test_stop_cancels_through_the_queue(gh: FakeGitHub, app: GitHubApp) -> None:
    handlers = Recorder()
    handle_comment(event(gh, "/selfheal stop", "max"), app, handlers)
    assert handlers.cancelled == [(REPO, 7, "max")]


@pytest.mark.parametrize(
    ("user", "kind", "via_app"),
    [
        ("selfheal[bot]", "Bot", False),
        ("dependabot[bot]", "Bot", False),
        ("ci-helper", "User", True),
    ],
)
def test_bots_and_the_bots_own_comments_are_ignored(
    gh: FakeGitHub, app: GitHubApp, user: str, kind: str, via_app: bool
) -> None:
    calls = len(gh.calls)
    outcome = handle_comment(
        event(gh, "/selfheal fix", user, author_type=kind, via_app=via_app),
        app,
        Recorder(),
        "selfheal[bot]",
    )
    assert outcome.status == "ignored"
    assert len(gh.calls) == calls  # not even a permission lookup
    assert 7 not in gh.repos[REPO].comments


def test_the_real_issue_comment_payload_is_read() -> None:
    payload = json.loads((PAYLOADS / "github-issue_comment.created.json").read_text())
    parsed = CommentEvent.from_payload(payload)
    assert parsed is not None
    assert (parsed.repo, parsed.number, parsed.author, parsed.is_pull_request) == (
        "Codertocat/Hello-World",
        1,
        "Codertocat",
        False,
    )
    assert CommentEvent.from_payload({"comment": "nonsense"}) is None


def review(gh: FakeGitHub, bot_pr: int, user: str = "alice", **kw: Any) -> ReviewEvent:
    fields: dict[str, Any] = {
        "repo": REPO,
        "installation_id": 1,
        "number": bot_pr,
        "head_ref": branch_name(INCIDENT),
        "head_sha": gh.repos[REPO].sha(branch_name(INCIDENT)),
        "author": user,
        "author_type": "User",
        "body": "Return 0.0 so the type stays float",
        "state": "changes_requested",
        "path": "app/cart.py",
        "line": 2,
    }
    fields.update(kw)
    return ReviewEvent(**fields)


def test_review_feedback_on_a_bot_pr_starts_a_revision(
    gh: FakeGitHub, app: GitHubApp, bot_pr: int
) -> None:
    handlers = Recorder()
    outcome = handle_review(review(gh, bot_pr), app, handlers, RepoConfig())
    assert outcome.status == "done"
    (job,) = handlers.enqueued
    assert job.kind == "revise" and job.hint == "app/cart.py:2: Return 0.0 so the type stays float"


@pytest.mark.parametrize(
    ("changes", "config", "status"),
    [
        ({}, RepoConfig(revise_on_review_comments=False), "ignored"),
        ({"head_ref": "feature/x"}, RepoConfig(), "ignored"),
        ({"state": "approved"}, RepoConfig(), "ignored"),
        ({"author": "selfheal[bot]", "author_type": "Bot"}, RepoConfig(), "ignored"),
        ({"author": "rita"}, RepoConfig(), "refused"),  # can read, cannot write
    ],
    ids=["config off", "not a bot PR", "approval", "bot review", "read-only reviewer"],
)
def test_reviews_that_do_not_start_a_revision(
    gh: FakeGitHub,
    app: GitHubApp,
    bot_pr: int,
    changes: dict[str, Any],
    config: RepoConfig,
    status: str,
) -> None:
    handlers = Recorder()
    outcome = handle_review(review(gh, bot_pr, **changes), app, handlers, config)
    assert outcome.status == status and not handlers.enqueued


def test_the_real_review_comment_payload_is_read() -> None:
    payload = json.loads((PAYLOADS / "github-pull_request_review_comment.created.json").read_text())
    parsed = ReviewEvent.from_payload(payload)
    assert parsed is not None and parsed.path == "README.md" and parsed.head_ref == "changes"
