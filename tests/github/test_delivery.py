"""Delivery on a GitHub-compatible server: one PR per problem, check run, merge safety."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.delivery.github import (
    DeliveryError,
    GitHubDelivery,
    deliver_to_github,
    fetch_repo_config,
    merge_if_green,
    post_config_error,
)
from bot.errors import ConfigError
from bot.github.app import GitHubApp, RateLimited
from bot.incident import branch_name
from bot.policy import Action
from bot.repo_config import RepoConfig, parse_repo_config
from tests.github.conftest import INCIDENT, REPO, decision_for, make_worktree
from tests.support.fake_github import FakeGitHub


def request(worktree: Path, action: Action, **changes: Any) -> GitHubDelivery:
    decision = decision_for(action)
    fields: dict[str, Any] = {
        "repo": REPO,
        "installation_id": 1,
        "worktree": worktree,
        "base_branch": "main",
        "branch": branch_name(INCIDENT),
        "decision": decision,
        "report_markdown": "## Evidence\n\ntests/test_cart.py::test_empty: failed -> passed\n",
        "report": {"decision": decision.to_dict()},
        "incident": INCIDENT,
        "trigger": 7,
        "checks_settle_s": 0,
        "checks_wait_s": 10,
        "poll_interval_s": 0.05,
    }
    fields.update(changes)
    return GitHubDelivery(**fields)


def test_pr_is_opened_with_body_labels_check_run_and_a_comment(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    result = deliver_to_github(request(worktree, Action.PR), app)

    repo = gh.repos[REPO]
    assert result.action_taken == "pr" and result.pr_number is not None
    pull = repo.pulls[result.pr_number]
    assert pull.head == f"selfheal/{INCIDENT.short_fingerprint}" and not pull.draft
    assert repo.file(pull.head, "app/cart.py").endswith("if items else 0")
    assert "failed -> passed" in pull.body
    assert "`auto_merge_enabled` | ❌ fail" in pull.body  # the decision record, every rule
    assert "https://sentry.example/organizations/acme/issues/42/" in pull.body
    assert "/acme/shop/issues/7" in pull.body  # back-link to the triggering issue
    assert pull.labels == ["selfheal"]
    (check,) = [c for c in repo.check_runs if c["name"] == "selfheal"]
    assert check["head_sha"] == result.head_sha and check["conclusion"] == "success"
    assert check["output"]["title"] == "Selfheal decision: pr"
    (comment,) = repo.comments[7]
    assert result.pr_url and result.pr_url in comment["body"]
    assert not repo.merges


def test_a_redelivered_job_updates_the_same_pr(
    gh: FakeGitHub, app: GitHubApp, worktree: Path, tmp_path: Path
) -> None:
    first = deliver_to_github(request(worktree, Action.PR), app)
    again = make_worktree(gh, app, tmp_path / "wt2", "def total(items):\n    return 0\n")
    second = deliver_to_github(request(again, Action.PR), app)

    repo = gh.repos[REPO]
    assert second.pr_number == first.pr_number
    assert len(repo.pulls) == 1
    assert repo.sha(repo.pulls[first.pr_number].head) == second.head_sha != first.head_sha
    assert len(repo.comments[7]) == 1  # the comment on the issue was edited, not repeated
    assert len(gh.calls_to("POST", r"/pulls$")) == 1


def test_draft_pr_decision_opens_a_draft(gh: FakeGitHub, app: GitHubApp, worktree: Path) -> None:
    result = deliver_to_github(request(worktree, Action.DRAFT_PR), app)
    assert result.action_taken == "draft_pr"
    assert result.pr_number is not None and gh.repos[REPO].pulls[result.pr_number].draft


def test_report_decision_opens_nothing_and_explains(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    result = deliver_to_github(request(worktree, Action.REPORT), app)
    repo = gh.repos[REPO]
    assert result.action_taken == "report" and result.pr_number is None
    assert not repo.pulls and repo.sha(branch_name(INCIDENT)) is None
    assert "forbidden_paths" in repo.comments[7][0]["body"]


def test_merge_enables_native_auto_merge_when_the_repo_allows_it(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    repo = gh.repos[REPO]
    repo.allow_auto_merge, repo.required_checks = True, ["ci"]
    result = deliver_to_github(request(worktree, Action.MERGE), app)

    assert result.auto_merge_enabled and not result.merged
    assert result.pr_number is not None
    assert repo.pulls[result.pr_number].auto_merge is not None
    (mutation,) = gh.calls_to("POST", r"/api/graphql$")
    assert mutation.body["variables"]["sha"] == result.head_sha
    assert not gh.calls_to("PUT", r"/merge$")  # GitHub merges, gated by the required check
    assert result.head_sha is not None
    gh.complete_check(REPO, result.head_sha, "ci", "success")
    assert repo.merges == [result.pr_number]


def test_rest_merge_with_the_expected_sha_when_auto_merge_is_not_allowed(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    repo = gh.repos[REPO]
    assert result.merged and result.action_taken == "merge"
    (merge,) = gh.calls_to("PUT", r"/merge$")
    assert merge.body == {"sha": result.head_sha, "merge_method": "squash"}
    assert repo.merges == [result.pr_number]
    assert repo.file("main", "app/cart.py").endswith("if items else 0")


def test_a_clean_pr_falls_back_to_rest_merge_when_auto_merge_has_nothing_to_wait_on(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    gh.repos[REPO].allow_auto_merge = True  # allowed, but no required checks: "clean status"
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    assert result.merged and not result.auto_merge_enabled
    assert len(gh.calls_to("POST", r"/api/graphql$")) == 1
    assert len(gh.calls_to("PUT", r"/merge$")) == 1


def test_rest_merge_waits_for_running_checks_then_merges_later(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    repo = gh.repos[REPO]
    repo.required_checks = ["ci"]
    result = deliver_to_github(request(worktree, Action.MERGE, checks_wait_s=0.2), app)
    assert result.merge_pending and not result.merged and not gh.calls_to("PUT", r"/merge$")
    assert result.pr_number is not None and result.head_sha is not None

    gh.complete_check(REPO, result.head_sha, "ci", "failure")
    assert not merge_if_green(app, REPO, 1, result.pr_number, result.head_sha).merged
    gh.complete_check(REPO, result.head_sha, "ci", "success")
    assert merge_if_green(app, REPO, 1, result.pr_number, result.head_sha).merged
    assert repo.merges == [result.pr_number]


def test_a_502_on_a_merge_that_happened_is_read_back_not_repeated(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    gh.fault("PUT", r"/pulls/\d+/merge$", 502, apply=True)
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    assert result.merged
    assert len(gh.calls_to("PUT", r"/merge$")) == 1
    assert gh.repos[REPO].merges == [result.pr_number]


def test_a_502_on_a_merge_that_did_not_happen_is_not_retried(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    gh.fault("PUT", r"/pulls/\d+/merge$", 502)
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    assert not result.merged and result.action_taken == "pr"
    assert len(gh.calls_to("PUT", r"/merge$")) == 1
    assert gh.calls_to("GET", r"/pulls/\d+$")  # the state was read back
    assert any("not retried" in n for n in result.notes)
    assert not gh.repos[REPO].merges


def test_a_head_that_moved_is_not_merged(gh: FakeGitHub, app: GitHubApp, worktree: Path) -> None:
    gh.fault("PUT", r"/pulls/\d+/merge$", 409, {"message": "Head branch was modified."})
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    assert not result.merged and len(gh.calls_to("PUT", r"/merge$")) == 1


def test_a_closed_pr_for_the_problem_is_not_reopened_or_replaced(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    first = deliver_to_github(request(worktree, Action.PR), app)
    assert first.pr_number is not None
    gh.repos[REPO].pulls[first.pr_number].state = "closed"
    second = deliver_to_github(request(worktree, Action.PR), app)
    assert second.pr_number == first.pr_number and second.action_taken == "report"
    assert len(gh.repos[REPO].pulls) == 1
    assert any("closed without merging" in n for n in second.notes)


def test_the_check_run_summary_stays_within_githubs_limit(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    huge = "x" * 200_000
    result = deliver_to_github(request(worktree, Action.PR, report_markdown=huge), app)
    (check,) = [c for c in gh.repos[REPO].check_runs if c["name"] == "selfheal"]
    assert len(check["output"]["summary"]) <= 65_535 and "truncated" in check["output"]["summary"]
    assert result.pr_number is not None
    assert len(gh.repos[REPO].pulls[result.pr_number].body) <= 65_536


def test_the_token_never_reaches_git_config_urls_or_logs(
    gh: FakeGitHub,
    app: GitHubApp,
    worktree: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    deliver_to_github(request(worktree, Action.MERGE), app)
    token = app.installation_token(1)
    assert token in gh.tokens  # the push did authenticate with it
    git_calls = [c for c in gh.calls if ".git/" in c.path]
    assert git_calls and all(
        c.headers.get("authorization", "").startswith("Basic ") for c in git_calls
    )
    assert all(token not in c.path for c in gh.calls)
    for config in (worktree / ".git" / "config",):
        assert token not in config.read_text()
    out, err = capfd.readouterr()
    assert token not in out + err + caplog.text
    assert token not in repr(app) and "InstallationToken(" not in repr(app)


def test_invalid_config_gets_a_comment_naming_field_and_line(
    gh: FakeGitHub, app: GitHubApp
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_repo_config("policy:\n  auto_merge: true\n  max_changed_files: many\n")
    url = post_config_error(app, REPO, 1, 7, str(info.value))
    post_config_error(app, REPO, 1, 7, str(info.value))  # again: edited, not repeated
    (comment,) = gh.repos[REPO].comments[7]
    assert url == comment["html_url"]
    assert "line 3: policy.max_changed_files" in comment["body"]
    assert "only reports" in comment["body"]


def test_installation_tokens_are_cached_until_five_minutes_before_expiry(
    gh: FakeGitHub, app: GitHubApp
) -> None:
    first = app.installation_token(1)
    assert app.installation_token(1) == first
    assert len(gh.calls_to("POST", r"/access_tokens$")) == 1
    gh.token_ttl = gh.token_ttl.__class__(minutes=4)  # new tokens expire inside the margin
    fresh = GitHubApp(gh.app_id, gh.private_key, gh.api_url, write_interval_s=0)
    fresh.installation_token(1)
    fresh.installation_token(1)
    assert len(gh.calls_to("POST", r"/access_tokens$")) == 3


def test_a_short_rate_limit_is_waited_out_with_retry_after(gh: FakeGitHub, app: GitHubApp) -> None:
    gh.fault(
        "GET",
        r"/repos/acme/shop$",
        429,
        {"message": "secondary rate limit"},
        headers={"Retry-After": "1"},
    )
    client = app.installation_client(1)
    started = time.monotonic()
    assert client.rest.repos.get("acme", "shop").json()["full_name"] == REPO
    assert time.monotonic() - started >= 1.0
    assert len(gh.calls_to("GET", r"/repos/acme/shop$")) == 2


def test_a_long_rate_limit_is_raised_not_slept_through(gh: FakeGitHub, app: GitHubApp) -> None:
    reset = str(int(time.time()) + 3600)
    gh.fault(
        "GET",
        r"/repos/acme/shop$",
        403,
        {"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
    )
    started = time.monotonic()
    client = app.installation_client(1)
    with pytest.raises(RateLimited) as info:
        client.rest.repos.get("acme", "shop")
    assert time.monotonic() - started < 5
    assert info.value.retry_after.total_seconds() > 3000
    assert len(gh.calls_to("GET", r"/repos/acme/shop$")) == 1


def test_server_errors_on_reads_are_retried_but_writes_are_not(
    gh: FakeGitHub, app: GitHubApp
) -> None:
    client = app.installation_client(1)
    gh.fault("GET", r"/issues/7/comments$", 502)
    assert client.rest.issues.list_comments("acme", "shop", 7).json() == []
    assert len(gh.calls_to("GET", r"/issues/7/comments$")) == 2
    gh.fault("POST", r"/issues/7/comments$", 502)
    with pytest.raises(Exception, match="502"):
        client.rest.issues.create_comment("acme", "shop", 7, body="hi")
    assert len(gh.calls_to("POST", r"/issues/7/comments$")) == 1


def test_a_timed_out_merge_is_read_back(gh: FakeGitHub, worktree: Path) -> None:
    impatient = GitHubApp(gh.app_id, gh.private_key, gh.api_url, timeout=2.0, write_interval_s=0)
    gh.fault("PUT", r"/pulls/\d+/merge$", 200, {"merged": True}, apply=True, delay=4.0)
    result = deliver_to_github(request(worktree, Action.MERGE), impatient)
    assert result.merged
    assert len(gh.calls_to("PUT", r"/merge$")) == 1 and len(gh.repos[REPO].merges) == 1


def test_a_405_not_mergeable_is_not_retried(gh: FakeGitHub, app: GitHubApp, worktree: Path) -> None:
    gh.fault("PUT", r"/pulls/\d+/merge$", 405, {"message": "Pull Request is not mergeable"})
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    assert not result.merged and result.pr_number is not None
    assert len(gh.calls_to("PUT", r"/merge$")) == 1
    assert any("not mergeable" in n for n in result.notes)
    assert any("not mergeable" in c["body"] for c in gh.repos[REPO].comments[7])


def test_writes_are_spaced_to_respect_secondary_limits(gh: FakeGitHub) -> None:
    paced = GitHubApp(gh.app_id, gh.private_key, gh.api_url, write_interval_s=0.3)
    client = paced.installation_client(1)
    started = time.monotonic()
    with client:
        for _ in range(3):
            client.rest.issues.create_comment("acme", "shop", 7, body="hi")
    # the token request is a write too: four writes, three gaps
    assert time.monotonic() - started >= 0.9


def test_a_lower_decision_on_a_rerun_disarms_auto_merge_before_pushing(
    gh: FakeGitHub, app: GitHubApp, worktree: Path, tmp_path: Path
) -> None:
    repo = gh.repos[REPO]
    repo.allow_auto_merge, repo.required_checks = True, ["ci"]
    first = deliver_to_github(request(worktree, Action.MERGE), app)
    assert first.auto_merge_enabled and first.pr_number is not None
    rerun = make_worktree(gh, app, tmp_path / "wt2", "def total(items):\n    return 0\n")
    second = deliver_to_github(request(rerun, Action.PR), app)
    assert second.pr_number == first.pr_number and not second.auto_merge_enabled
    assert repo.pulls[first.pr_number].auto_merge is None
    assert second.head_sha is not None
    gh.complete_check(REPO, second.head_sha, "ci", "success")
    assert repo.merges == []  # CI passing no longer merges what the policy did not allow
    disarm = gh.calls_to("POST", r"/api/graphql$")[1]
    push = [c for c in gh.calls if c.path.endswith("git-receive-pack")][-1]
    assert gh.calls.index(disarm) < gh.calls.index(push)


def test_a_draft_becomes_ready_when_a_rerun_earns_a_pr(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    first = deliver_to_github(request(worktree, Action.DRAFT_PR), app)
    second = deliver_to_github(request(worktree, Action.PR), app)
    assert first.pr_number == second.pr_number is not None
    assert not gh.repos[REPO].pulls[second.pr_number].draft and second.action_taken == "pr"


def test_invalid_config_without_an_issue_goes_to_a_check_run(
    gh: FakeGitHub, app: GitHubApp
) -> None:
    sha = gh.repos[REPO].sha("main")
    url = post_config_error(app, REPO, 1, None, "selfheal.yml: line 2: x: bad", head_sha=sha)
    (check,) = gh.repos[REPO].check_runs
    assert url == check["html_url"] and check["conclusion"] == "action_required"
    assert "line 2: x: bad" in check["output"]["summary"]


def test_the_config_is_read_from_the_default_branch(gh: FakeGitHub, app: GitHubApp) -> None:
    client = app.installation_client(1)
    assert fetch_repo_config(client, REPO) == (RepoConfig(), None)
    gh.add_repo("acme/cfg", {".github/selfheal.yml": "policy:\n  auto_merge: true\n"})
    gh.add_repo("acme/bad", {".github/selfheal.yml": "policy:\n  daily_merge_cap: lots\n"})
    config, error = fetch_repo_config(client, "acme/cfg")
    assert config.policy.auto_merge and error is None
    config, error = fetch_repo_config(client, "acme/bad")
    assert (
        config == RepoConfig() and error is not None and "line 2: policy.daily_merge_cap" in error
    )


def test_failed_github_calls_never_duplicate_the_pr(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    gh.fault("POST", r"/repos/acme/shop/pulls$", 502, apply=True)  # created, answer lost
    result = deliver_to_github(request(worktree, Action.PR), app)
    assert len(gh.repos[REPO].pulls) == 1 and result.pr_number in gh.repos[REPO].pulls
    assert len(gh.calls_to("POST", r"/pulls$")) == 1

    gh.fault("POST", r"/issues/\d+/labels$", 500, times=1)
    gh.fault("GET", r"/repos/acme/shop$", 500, times=9)  # GitHub down: reads fail too
    with pytest.raises(DeliveryError, match="GitHub answered 500 to GET /api/v3/repos/acme/shop: "):
        deliver_to_github(request(worktree, Action.PR), app)
    gh.faults.clear()
    again = deliver_to_github(request(worktree, Action.PR), app)
    assert again.pr_number == result.pr_number and len(gh.repos[REPO].pulls) == 1


def test_an_ambiguous_auto_merge_answer_is_read_back(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    repo = gh.repos[REPO]
    repo.allow_auto_merge, repo.required_checks = True, ["ci"]
    gh.fault("POST", r"/api/graphql$", 502, apply=True)
    result = deliver_to_github(request(worktree, Action.MERGE), app)
    assert result.auto_merge_enabled and not gh.calls_to("PUT", r"/merge$")
    assert len(gh.calls_to("POST", r"/api/graphql$")) == 1


def test_untrusted_text_cannot_ping_people_or_fake_markers(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    hostile = INCIDENT.with_changes(
        title="@acme/everyone ping <!-- selfheal:fingerprint:fake -->",
        fingerprint=INCIDENT.fingerprint,
    )
    report = "error: @octocat was here <!-- selfheal:delivery:x -->"
    result = deliver_to_github(
        request(worktree, Action.PR, incident=hostile, report_markdown=report), app
    )
    assert result.pr_number is not None
    pull = gh.repos[REPO].pulls[result.pr_number]
    for text in (pull.title, pull.body):
        assert "@acme" not in text and "@octocat" not in text
    assert pull.body.count("<!-- selfheal:") == 1  # only the bot's own marker


def test_two_concurrent_jobs_for_one_problem_make_one_pr(
    gh: FakeGitHub, app: GitHubApp, worktree: Path, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    other = make_worktree(gh, app, tmp_path / "wt2", "def total(items):\n    return 0\n")
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda wt: deliver_to_github(request(wt, Action.PR), app), [worktree, other])
        )
    assert len(gh.repos[REPO].pulls) == 1
    assert {r.pr_number for r in results} == set(gh.repos[REPO].pulls)
