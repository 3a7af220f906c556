"""Intake fixtures: a clean Redis per test, the real app with secrets set, signing helpers,
worker processes started as `python -m bot worker`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from bot.ingest import signatures
from bot.settings import Settings, load_settings
from bot.web import create_app

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"

GITHUB_SECRET = "It's a Secret to Everybody"
SENTRY_SECRET = "example-client-secret"
PAGERDUTY_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"

BASE_ENV = {
    "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
    "SENTRY_CLIENT_SECRET": SENTRY_SECRET,
    "PAGERDUTY_WEBHOOK_SECRET": PAGERDUTY_SECRET,
    "SENTRY_PROJECT_REPOS": "test-org/front-end=acme/web,front-end=acme/web",
    "PAGERDUTY_SERVICE_REPOS": "PF9KMXH=acme/backend-api",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def dumps(payload: Any) -> bytes:
    """Compact JSON, as Sentry sends it."""
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """The session's redis-server, emptied before each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    yield redis_url


@pytest.fixture
def env(redis_db: str) -> dict[str, str]:
    return {**BASE_ENV, "REDIS_URL": redis_db}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def rdb(redis_db: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_db)
    yield client
    client.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=True) as test_client:
        yield test_client


Sender = Callable[..., Any]


def signed_headers(source: str, body: bytes, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if source == "github":
        headers["X-Hub-Signature-256"] = signatures.github_signature(GITHUB_SECRET, body)
        headers["X-GitHub-Hook-ID"] = "42"
    elif source == "sentry":
        headers["Sentry-Hook-Signature"] = signatures.sentry_signature(SENTRY_SECRET, body)
        headers["Request-ID"] = os.urandom(16).hex()
        headers["Sentry-Hook-Timestamp"] = str(int(time.time()))
    else:
        headers["X-PagerDuty-Signature"] = signatures.pagerduty_signature(PAGERDUTY_SECRET, body)
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return headers


def send_github(client: TestClient, event: str, body: bytes, delivery: str | None = None) -> Any:
    headers = signed_headers("github", body)
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Delivery"] = delivery or os.urandom(8).hex()
    return client.post("/webhooks/github", content=body, headers=headers)


def send_sentry(client: TestClient, resource: str, body: bytes) -> Any:
    headers = signed_headers("sentry", body)
    headers["Sentry-Hook-Resource"] = resource
    return client.post("/webhooks/sentry", content=body, headers=headers)


def send_pagerduty(client: TestClient, body: bytes, webhook_id: str | None = None) -> Any:
    headers = signed_headers("pagerduty", body)
    headers["X-Webhook-Id"] = webhook_id or os.urandom(8).hex()
    return client.post("/webhooks/pagerduty", content=body, headers=headers)


def sentry_alert(
    project: str = "front-end", issue_id: str = "1117540176", event_id: str | None = None
) -> bytes:
    """The docs' event_alert.triggered payload, retargeted to a project, issue and event id."""
    payload = fixture_json("sentry-event_alert.triggered.json")
    event = payload["data"]["event"]
    event_id = event_id or os.urandom(16).hex()
    event["event_id"] = event_id
    event["issue_id"] = issue_id
    event["url"] = f"https://sentry.io/api/0/projects/test-org/{project}/events/{event_id}/"
    return dumps(payload)


def pagerduty_triggered(incident_id: str = "PGR0VU2", service: str = "PF9KMXH") -> bytes:
    payload = fixture_json("pagerduty-incident.priority_updated.json")
    payload["event"]["event_type"] = "incident.triggered"
    payload["event"]["data"]["id"] = incident_id
    payload["event"]["data"]["service"]["id"] = service
    return dumps(payload)


class Workers:
    """`python -m bot worker` processes against the test Redis; killed at teardown."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = {
            **os.environ,
            **env,
            "PYTHONPATH": str(ROOT),
            "SELFHEAL_REDELIVER_INTERVAL_SECONDS": "0",
        }
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            env={**self.env, **extra},
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers({**env, "SELFHEAL_JOB_HANDLER": "tests.intake.handlers:run"}, tmp_path)
    yield pool
    pool.stop()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until `predicate()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
