"""Every vendor example payload, signed, through the real app and a real redis-server."""

from __future__ import annotations

import json

import pytest
import redis
from starlette.testclient import TestClient

from tests.intake.conftest import (
    FIXTURES,
    dumps,
    fixture_bytes,
    fixture_json,
    pagerduty_triggered,
    send_github,
    send_pagerduty,
    send_sentry,
)
from tests.support.services import job_keys, queue_length

# file -> (status code, response status). The examples mostly describe events the bot
# does not act on as they stand (wrong label, no command, success); edits below turn them on.
EXPECTED = {
    "github-check_run.completed.json": (200, "ignored"),  # failed on a branch, not the default
    "github-check_suite.completed.json": (200, "ignored"),
    "github-installation.created.json": (200, "recorded"),
    "github-installation.deleted.json": (200, "recorded"),
    "github-installation_repositories.added.json": (200, "recorded"),
    "github-issue_comment.created.json": (200, "ignored"),  # no /selfheal
    "github-issues.labeled.json": (200, "ignored"),  # label "bug"
    "github-issues.opened.json": (200, "ignored"),
    "github-ping.json": (200, "pong"),
    "github-pull_request.closed.json": (200, "ignored"),
    "github-pull_request_review.submitted.json": (200, "ignored"),
    "github-pull_request_review_comment.created.json": (200, "ignored"),  # not the bot's PR
    "github-push.json": (200, "ignored"),
    "github-workflow_job.completed.failure.json": (200, "ignored"),
    "github-workflow_run.completed.json": (200, "ignored"),  # conclusion success
    "sentry-comment.created.json": (200, "ignored"),
    "sentry-error.created.json": (202, "queued"),
    "sentry-event_alert.triggered.json": (202, "queued"),
    "sentry-installation.created.json": (200, "ignored"),
    "sentry-issue.created.json": (202, "queued"),
    "sentry-metric_alert.resolved.json": (200, "ignored"),
    "sentry-seer.pr_created.json": (200, "ignored"),
    "pagerduty-incident.priority_updated.json": (200, "ignored"),
    "pagerduty-webhook-signed.incident.priority_updated.json": (200, "ignored"),
}
SENTRY_RESOURCE = {
    "comment": "comment",
    "error": "error",
    "event_alert": "event_alert",
    "installation": "installation",
    "issue": "issue",
    "metric_alert": "metric_alert",
    "seer": "seer",
}


def _webhook_files() -> list[str]:
    names = sorted(
        p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("pagerduty-rest")
    )
    return names


def test_every_example_is_covered() -> None:
    assert set(_webhook_files()) == set(EXPECTED)


@pytest.mark.parametrize("name", _webhook_files())
def test_example_payload(name: str, client: TestClient, rdb: redis.Redis) -> None:
    body = fixture_bytes(name)
    source, rest = name.split("-", 1)
    if source == "github":
        response = send_github(client, rest.split(".")[0], body)
    elif source == "sentry":
        response = send_sentry(client, SENTRY_RESOURCE[rest.split(".")[0]], body)
    else:
        response = send_pagerduty(client, body)
    status, label = EXPECTED[name]
    assert response.status_code == status, response.text
    data = response.json()
    assert data["status"] == label
    if label == "queued":
        assert queue_length(rdb) == 1
        assert rdb.hget(f"selfheal:job:{data['job']}", "state") == b"queued"
    else:
        assert queue_length(rdb) == 0 and job_keys(rdb) == []
    if label == "ignored":
        assert data["reason"]


def test_ignored_reasons_name_the_cause(client: TestClient) -> None:
    labeled = send_github(client, "issues", fixture_bytes("github-issues.labeled.json")).json()
    assert "'bug'" in labeled["reason"] and "'selfheal'" in labeled["reason"]
    run = send_github(client, "workflow_run", fixture_bytes("github-workflow_run.completed.json"))
    assert "'success'" in run.json()["reason"]
    check = send_github(client, "check_run", fixture_bytes("github-check_run.completed.json"))
    assert "default branch" in check.json()["reason"]


def _with_installation(payload: dict) -> dict:
    payload.setdefault("installation", {"id": 957387})
    return payload


def test_trigger_label_queues_an_issue_job(client: TestClient, rdb: redis.Redis) -> None:
    payload = _with_installation(fixture_json("github-issues.labeled.json"))
    payload["label"]["name"] = "selfheal"
    response = send_github(client, "issues", dumps(payload))
    assert response.status_code == 202, response.text
    request = json.loads(rdb.hget(f"selfheal:job:{response.json()['job']}", "request"))
    assert request["kind"] == "issue"
    assert request["repo"] == "Codertocat/Hello-World"
    assert request["github"]["number"] == 1
    assert request["installation_id"] == "957387"


def test_selfheal_command_comment_queues_a_command_job(
    client: TestClient, rdb: redis.Redis
) -> None:
    payload = fixture_json("github-issue_comment.created.json")
    payload["comment"]["body"] = "Thanks!\n/selfheal fix please"
    response = send_github(client, "issue_comment", dumps(payload))
    assert response.status_code == 202, response.text
    request = json.loads(rdb.hget(f"selfheal:job:{response.json()['job']}", "request"))
    assert request["kind"] == "command"
    assert request["github"]["comment_body"] == "Thanks!\n/selfheal fix please"
    # Mentioning it mid-sentence is not a command.
    payload["comment"]["body"] = "what does /selfheal do?"
    payload["comment"]["id"] += 1
    assert send_github(client, "issue_comment", dumps(payload)).json()["status"] == "ignored"


@pytest.mark.parametrize(
    ("login", "kind"),
    [("selfheal[bot]", "Bot"), ("github-actions[bot]", "Bot"), ("robot[bot]", "User")],
)
def test_bots_never_trigger(client: TestClient, login: str, kind: str) -> None:
    payload = fixture_json("github-issue_comment.created.json")
    payload["comment"]["body"] = "/selfheal fix"
    payload["comment"]["user"].update({"login": login, "type": kind})
    payload["sender"].update({"login": login, "type": kind})
    response = send_github(client, "issue_comment", dumps(payload))
    assert response.json() == {"status": "ignored", "reason": "the comment is from a bot"}


def test_ci_failure_on_default_branch_queues_once_per_commit(
    client: TestClient, rdb: redis.Redis
) -> None:
    check = _with_installation(fixture_json("github-check_run.completed.json"))
    check["check_run"]["check_suite"]["head_branch"] = check["repository"]["default_branch"]
    first = send_github(client, "check_run", dumps(check))
    assert first.status_code == 202, first.text
    run = fixture_json("github-workflow_run.completed.json")
    run["installation"] = {"id": 1}
    run["workflow_run"]["conclusion"] = "failure"
    run["workflow_run"]["head_sha"] = check["check_run"]["head_sha"]
    run["repository"]["full_name"] = check["repository"]["full_name"]
    second = send_github(client, "workflow_run", dumps(run))
    # The workflow run failing on the same commit is the same problem: it joins the job.
    assert second.status_code == 200 and second.json() == {
        "status": "duplicate",
        "job": first.json()["job"],
    }
    assert rdb.hget(f"selfheal:job:{first.json()['job']}", "events") == b"2"


def test_review_comment_on_the_bots_pr_queues(client: TestClient, rdb: redis.Redis) -> None:
    payload = fixture_json("github-pull_request_review_comment.created.json")
    payload["pull_request"]["head"]["ref"] = "selfheal/fix-1234"
    response = send_github(client, "pull_request_review_comment", dumps(payload))
    assert response.status_code == 202, response.text
    request = json.loads(rdb.hget(f"selfheal:job:{response.json()['job']}", "request"))
    assert request["kind"] == "review" and request["github"]["extra"]["path"]


def test_installations_are_recorded(client: TestClient, rdb: redis.Redis) -> None:
    send_github(client, "installation", fixture_bytes("github-installation.created.json"))
    assert rdb.smembers("selfheal:installation:957387:repos") == {b"Codertocat/Hello-World"}
    send_github(
        client,
        "installation_repositories",
        fixture_bytes("github-installation_repositories.added.json"),
    )
    assert rdb.smembers("selfheal:installation:957387:repos") == {
        b"Codertocat/Hello-World",
        b"Codertocat/Space",
    }
    assert rdb.hget("selfheal:repo-installation", "Codertocat/Space") == b"957387"
    deleted = fixture_json("github-installation.deleted.json")
    deleted["installation"]["id"] = 957387
    send_github(client, "installation", dumps(deleted))
    assert not rdb.exists("selfheal:installation:957387:repos")
    assert rdb.hget("selfheal:repo-installation", "Codertocat/Space") is None


def test_unmapped_sentry_project_names_the_mapping(client: TestClient) -> None:
    payload = fixture_json("sentry-issue.created.json")
    payload["data"]["issue"]["project"]["slug"] = "payments"
    response = send_sentry(client, "issue", dumps(payload))
    assert response.status_code == 200
    assert "SENTRY_PROJECT_REPOS" in response.json()["reason"]
    assert "payments" in response.json()["reason"]


def test_pagerduty_triggered_and_reopened_queue(client: TestClient, rdb: redis.Redis) -> None:
    first = send_pagerduty(client, pagerduty_triggered("PAAAAAA"))
    assert first.status_code == 202, first.text
    request = json.loads(rdb.hget(f"selfheal:job:{first.json()['job']}", "request"))
    assert request["repo"] == "acme/backend-api" and request["incident"]["external_id"] == "PAAAAAA"
    reopened = json.loads(pagerduty_triggered("PBBBBBB"))
    reopened["event"]["event_type"] = "incident.reopened"
    assert send_pagerduty(client, dumps(reopened)).status_code == 202
    unmapped = send_pagerduty(client, pagerduty_triggered("PCCCCCC", service="PNOPE01"))
    assert unmapped.status_code == 200 and "PAGERDUTY_SERVICE_REPOS" in unmapped.json()["reason"]
    ping = {"event": {"id": "x", "event_type": "pagey.ping", "data": {}}}
    assert send_pagerduty(client, dumps(ping)).json() == {"status": "pong"}


def test_sentry_issue_keeps_what_routing_needs(client: TestClient, rdb: redis.Redis) -> None:
    response = send_sentry(client, "issue", fixture_bytes("sentry-issue.created.json"))
    request = json.loads(rdb.hget(f"selfheal:job:{response.json()['job']}", "request"))
    incident = request["incident"]
    assert request["repo"] == "acme/web"
    assert incident["external_id"] == "1170820242"
    assert incident["extra"]["needs_event"] is True  # the worker fetches the stack trace
