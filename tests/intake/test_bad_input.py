"""Malformed, hostile and oversized webhooks: the contract, zero 5xx, nothing enqueued."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bot.settings import load_settings
from bot.web import create_app
from tests.intake.conftest import (
    BASE_ENV,
    dumps,
    fixture_bytes,
    fixture_json,
    send_github,
    send_pagerduty,
    send_sentry,
    sentry_alert,
    signed_headers,
)
from tests.support.services import free_port, job_keys, queue_length

SOURCES = ("github", "sentry", "pagerduty")


def _valid(source: str) -> tuple[bytes, dict[str, str]]:
    """A body the bot would act on, with every header but the signature."""
    if source == "github":
        payload = fixture_json("github-issues.labeled.json")
        payload["label"]["name"] = "selfheal"
        payload["installation"] = {"id": 7}
        return dumps(payload), {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"}
    if source == "sentry":
        return sentry_alert(), {"Sentry-Hook-Resource": "event_alert"}
    body = fixture_json("pagerduty-incident.priority_updated.json")
    body["event"]["event_type"] = "incident.triggered"
    return dumps(body), {"X-Webhook-Id": "w-1"}


def _post(client: TestClient, source: str, body: bytes, headers: dict[str, str]) -> object:
    return client.post(f"/webhooks/{source}", content=body, headers=headers)


SIG_HEADER = {
    "github": "X-Hub-Signature-256",
    "sentry": "Sentry-Hook-Signature",
    "pagerduty": "X-PagerDuty-Signature",
}


@pytest.fixture
def nothing_enqueued(rdb: redis.Redis) -> Iterator[None]:
    yield
    assert queue_length(rdb) == 0
    assert job_keys(rdb) == []


@pytest.mark.parametrize("source", SOURCES)
def test_bad_signatures_get_401(source: str, client: TestClient, nothing_enqueued: None) -> None:
    body, headers = _valid(source)
    good = signed_headers(source, body)[SIG_HEADER[source]]
    reserialized = json.dumps(json.loads(body), indent=1).encode()
    cases = {
        "missing": None,
        "wrong": good[:-8] + "deadbeef",
        "truncated": good[:-1],
        "upper-case": good.upper(),
        "over re-serialized JSON": signed_headers(source, reserialized)[SIG_HEADER[source]],
        "empty": "",
    }
    for name, signature in cases.items():
        sent = {"Content-Type": "application/json", **headers}
        if signature is not None:
            sent[SIG_HEADER[source]] = signature
        response = client.post(f"/webhooks/{source}", content=body, headers=sent)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["error"] == "missing or invalid signature"


@pytest.mark.parametrize("source", SOURCES)
def test_malformed_bodies_get_400(source: str, client: TestClient, nothing_enqueued: None) -> None:
    _, headers = _valid(source)
    for body, needle in (
        (b"", "empty body"),
        (b"{not json", "invalid JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b"\xff\xfe\x00", "invalid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),  # nesting past the parser's depth
    ):
        response = _post(client, source, body, {**signed_headers(source, body), **headers})
        assert response.status_code == 400, (body[:20], response.text)
        assert needle in response.json()["error"]


@pytest.mark.parametrize("source", SOURCES)
def test_wrong_content_type_gets_400(
    source: str, client: TestClient, nothing_enqueued: None
) -> None:
    body, headers = _valid(source)
    sent = {
        **signed_headers(source, body),
        **headers,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = _post(client, source, body, sent)
    assert response.status_code == 400
    assert "Content-Type" in response.json()["error"]


def test_missing_fields_are_named(client: TestClient, nothing_enqueued: None) -> None:
    payload = fixture_json("github-issues.labeled.json")
    payload["label"]["name"] = "selfheal"  # acted on, but no installation
    response = send_github(client, "issues", dumps(payload))
    assert response.status_code == 400
    assert response.json()["error"] == "missing or invalid field: installation.id"

    sentry = json.loads(sentry_alert())
    del sentry["data"]["event"]["issue_id"]
    response = send_sentry(client, "event_alert", dumps(sentry))
    assert response.status_code == 400 and "data.event.issue_id" in response.json()["error"]

    sentry = json.loads(sentry_alert())
    del sentry["installation"]
    response = send_sentry(client, "event_alert", dumps(sentry))
    assert response.status_code == 400 and "installation.uuid" in response.json()["error"]

    pd = fixture_json("pagerduty-incident.priority_updated.json")
    pd["event"]["event_type"] = "incident.triggered"
    del pd["event"]["data"]["service"]
    response = send_pagerduty(client, dumps(pd))
    assert response.status_code == 400 and "service.id" in response.json()["error"]
    response = send_pagerduty(client, dumps({"nothing": 1}))
    assert response.status_code == 400 and "event" in response.json()["error"]

    body = fixture_bytes("github-ping.json")
    headers = signed_headers("github", body)  # no X-GitHub-Event
    response = client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 400 and "X-GitHub-Event" in response.json()["error"]


def test_unknown_events_and_actions_are_ignored(client: TestClient, nothing_enqueued: None) -> None:
    body = fixture_bytes("github-push.json")
    assert send_github(client, "made_up_event", body).json()["status"] == "ignored"
    payload = fixture_json("github-issues.labeled.json")
    payload["action"] = "teleported"
    assert send_github(client, "issues", dumps(payload)).json()["status"] == "ignored"
    assert send_sentry(client, "made_up", sentry_alert()).json()["status"] == "ignored"
    sentry = json.loads(sentry_alert())
    sentry["action"] = "exploded"
    assert send_sentry(client, "event_alert", dumps(sentry)).json()["status"] == "ignored"
    pd = fixture_json("pagerduty-incident.priority_updated.json")
    pd["event"]["event_type"] = "incident.made_up"
    assert send_pagerduty(client, dumps(pd)).json()["status"] == "ignored"


def test_huge_arrays_are_handled(client: TestClient, rdb: redis.Redis) -> None:
    payload = fixture_json("github-installation_repositories.added.json")
    payload["repositories_added"] = [
        {"id": i, "full_name": f"Codertocat/r{i}", "name": f"r{i}", "private": False}
        for i in range(50_000)
    ]
    response = send_github(client, "installation_repositories", dumps(payload))
    assert response.status_code == 200
    assert rdb.scard("selfheal:installation:957387:repos") == 50_000
    sentry = json.loads(sentry_alert())
    frame = sentry["data"]["event"]["exception"]["values"][0]["stacktrace"]["frames"][0]
    sentry["data"]["event"]["exception"]["values"][0]["stacktrace"]["frames"] = [frame] * 1_000
    response = send_sentry(client, "event_alert", dumps(sentry))
    assert response.status_code == 202
    request = json.loads(rdb.hget(f"selfheal:job:{response.json()['job']}", "request"))
    assert len(request["incident"]["frames"]) <= 64


@pytest.mark.parametrize(
    ("source", "limit"),
    [("github", 25 * 1024 * 1024), ("sentry", 1024 * 1024), ("pagerduty", 256 * 1024)],
)
def test_oversize_bodies_get_413(
    source: str, limit: int, client: TestClient, nothing_enqueued: None
) -> None:
    body = b'{"pad": "' + b"x" * (limit - 10) + b'"}'
    assert len(body) == limit + 1
    headers = {**signed_headers(source, body), **_valid(source)[1]}
    assert _post(client, source, body, headers).status_code == 413

    # Without a Content-Length (chunked), the stream is cut at the limit.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = client.post(f"/webhooks/{source}", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_sources_without_a_secret_are_not_enabled(redis_db: str) -> None:
    settings = load_settings({"REDIS_URL": redis_db, "GITHUB_WEBHOOK_SECRET": "s"})
    with TestClient(create_app(settings)) as client:
        for source in ("sentry", "pagerduty"):
            body, headers = _valid(source)
            response = _post(client, source, body, {**signed_headers(source, body), **headers})
            assert response.status_code == 404
            assert "not enabled" in response.json()["error"]


def test_redis_down_answers_503_with_retry_after() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = load_settings({**BASE_ENV, "REDIS_URL": dead})
    with TestClient(create_app(settings)) as client:
        for source in SOURCES:
            body, headers = _valid(source)
            response = _post(client, source, body, {**signed_headers(source, body), **headers})
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"]
        # Ignored events need no Redis: they are still answered.
        assert send_github(client, "push", fixture_bytes("github-push.json")).status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def _webhook_samples(client: TestClient) -> dict[tuple[str, str], float]:
    """The webhook metrics as (sample name, label text) -> value."""
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name.startswith("selfheal_webhook"):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[(sample.name, labels)] = sample.value
    return found


def test_every_answer_is_counted_and_timed(client: TestClient) -> None:
    before = _webhook_samples(client)
    for n in range(3):
        body = sentry_alert(event_id=f"{n:032x}")
        assert send_sentry(client, "event_alert", body).status_code in (200, 202)
    unsigned = client.post(
        "/webhooks/sentry", content=sentry_alert(), headers={"Sentry-Hook-Resource": "event_alert"}
    )
    assert unsigned.status_code == 401
    after = _webhook_samples(client)

    def delta(name: str, labels: str) -> float:
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert delta("selfheal_webhooks_total", "outcome=queued,source=sentry") == 1
    assert delta("selfheal_webhooks_total", "outcome=duplicate,source=sentry") == 2
    assert delta("selfheal_webhooks_total", "outcome=unauthorized,source=sentry") == 1
    assert delta("selfheal_webhook_seconds_count", "source=sentry") == 4
    buckets = sorted(
        (float(labels.split("le=")[1].split(",")[0]), value)
        for (name, labels), value in after.items()
        if name == "selfheal_webhook_seconds_bucket" and "source=sentry" in labels
    )
    assert len(buckets) == 12 and buckets[-1] == (
        float("inf"),
        after[("selfheal_webhook_seconds_count", "source=sentry")],
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert 0 < delta("selfheal_webhook_seconds_sum", "source=sentry") < 4 * 5.0


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    send_sentry(client, "event_alert", sentry_alert())
    text = client.get("/metrics").text
    assert 'selfheal_webhooks_total{outcome="queued",source="sentry"}' in text
    assert "selfheal_queue_depth 1.0" in text
    assert "selfheal_jobs_quarantined 0.0" in text
