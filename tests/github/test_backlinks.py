"""Back-links: a PagerDuty note (with `From`) and a Sentry comment after a PR opens."""

from __future__ import annotations

from pathlib import Path

from bot.backlinks import post_backlinks
from bot.delivery.github import GitHubDelivery, deliver_to_github
from bot.github.app import GitHubApp
from bot.incident import branch_name
from bot.policy import Action
from bot.settings import load_settings
from tests.github.conftest import INCIDENT, REPO, decision_for
from tests.support.fake_backlinks import fake_backlinks
from tests.support.fake_github import FakeGitHub


def settings_for(url: str, **extra: str):  # type: ignore[no-untyped-def]
    return load_settings(
        {
            "SENTRY_AUTH_TOKEN": "sntrys_secret",
            "SENTRY_API_URL": f"{url}/sentry/api/0",
            "PAGERDUTY_API_TOKEN": "pd_secret",
            "PAGERDUTY_API_URL": f"{url}/pagerduty",
            "PAGERDUTY_FROM_EMAIL": "oncall@acme.example",
            **extra,
        }
    )


def test_a_new_pr_is_linked_from_the_sentry_issue_once(
    gh: FakeGitHub, app: GitHubApp, worktree: Path
) -> None:
    with fake_backlinks() as vendor:
        settings = settings_for(vendor.url)
        req = GitHubDelivery(
            REPO,
            1,
            worktree,
            "main",
            branch_name(INCIDENT),
            decision_for(Action.PR),
            "r",
            {},
            INCIDENT,
        )
        result = deliver_to_github(req, app, settings)
        deliver_to_github(req, app, settings)  # a redelivery: the same PR, no second link
    (call,) = vendor.requests
    assert call["path"] == "/sentry/api/0/issues/42/comments/"
    assert call["headers"]["authorization"] == "Bearer sntrys_secret"
    assert result.pr_url and result.pr_url in call["body"]["text"]
    assert "Sentry comment posted on 42" in result.notes


def test_pagerduty_note_carries_the_from_header() -> None:
    incident = INCIDENT.with_changes(source="pagerduty", external_id="Q1P3AQ6Y3ZS0ZR")
    with fake_backlinks() as vendor:
        notes = post_backlinks(settings_for(vendor.url), incident, "https://gh/pr/1", merged=True)
    (call,) = vendor.requests
    assert call["path"] == "/pagerduty/incidents/Q1P3AQ6Y3ZS0ZR/notes"
    assert call["headers"]["from"] == "oncall@acme.example"
    assert call["headers"]["authorization"] == "Token token=pd_secret"
    assert call["body"] == {"note": {"content": "Selfheal merged a validated fix: https://gh/pr/1"}}
    assert notes == ["PagerDuty note posted on Q1P3AQ6Y3ZS0ZR"]


def test_nothing_is_posted_without_a_token_and_failures_are_notes() -> None:
    with fake_backlinks() as vendor:
        bare = load_settings({"SENTRY_API_URL": f"{vendor.url}/sentry/api/0"})
        assert post_backlinks(bare, INCIDENT, "https://gh/pr/1", merged=False) == []
        assert vendor.requests == []
        vendor.fail_with = 500
        notes = post_backlinks(settings_for(vendor.url), INCIDENT, "https://gh/pr/1", False)
    assert notes == ["Sentry comment on 42 failed (500)"]
    assert len(vendor.requests) == 1  # not retried
