"""`selfheal serve`, `jobs list|show` and `redeliver` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from tests.intake.conftest import ROOT, send_sentry, sentry_alert, signed_headers, wait_for
from tests.support.http import send_json, serving
from tests.support.services import free_port, wait_for_port


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_jobs_list_and_show(client: TestClient, env: dict[str, str]) -> None:
    job = send_sentry(client, "event_alert", sentry_alert("front-end", "77")).json()["job"]
    send_sentry(client, "event_alert", sentry_alert("front-end", "77"))
    listed = _cli(env, "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == job and row["source"] == "sentry" and row["repo"] == "acme/web"
    assert row["state"] == "queued" and row["events"] == 2 and row["outcome"] is None
    assert set(row) >= {"fingerprint", "created_at", "updated_at"}
    shown = json.loads(_cli(env, "jobs", "show", job, "--json").stdout)
    assert shown["id"] == job and len(shown["deliveries"]) == 2
    assert shown["request"]["incident"]["external_id"] == "77"
    text = _cli(env, "jobs", "list").stdout
    assert job in text and "acme/web" in text and "queued" in text
    assert "events" in _cli(env, "jobs", "show", job[:14]).stdout
    missing = _cli(env, "jobs", "show", "nope")
    assert missing.returncode == 2 and "no job 'nope'" in missing.stderr


def test_jobs_list_without_redis_is_one_line(env: dict[str, str]) -> None:
    result = _cli({**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, "jobs", "list")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("selfheal: error: cannot reach Redis")
    assert "Traceback" not in result.stderr


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_answers_webhooks_health_and_metrics(served: str) -> None:
    with httpx.Client(base_url=served) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").status_code == 200
        body = sentry_alert("front-end", "88")
        headers = {**signed_headers("sentry", body), "Sentry-Hook-Resource": "event_alert"}
        response = http.post("/webhooks/sentry", content=body, headers=headers)
        assert response.status_code == 202 and response.json()["status"] == "queued"
        metrics = http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'selfheal_webhooks_total{outcome="queued",source="sentry"} 1.0' in metrics.text
        assert http.post("/webhooks/nowhere", content=b"{}").status_code == 404


# --- redeliver: a local server answering like GitHub's App hook-deliveries API ---


class _GitHub(ThreadingHTTPServer):
    public_key: Any
    app_id: int
    deliveries: list[dict[str, Any]]
    redelivered: list[int]
    auth_errors: int


class _GitHubHandler(BaseHTTPRequestHandler):
    server: _GitHub

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _authorized(self) -> bool:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self.server.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            self.server.auth_errors += 1
            self._send(401, {"message": "A JSON web token could not be decoded"})
            return False
        return str(claims["iss"]) == str(self.server.app_id)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        send_json(self, status, body, headers)

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if not self.path.startswith("/app/hook/deliveries"):
            return self._send(404, {"message": "Not Found"})
        page2 = "cursor=page2" in self.path
        items = self.server.deliveries[3:] if page2 else self.server.deliveries[:3]
        headers = {}
        if not page2:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            headers["Link"] = f'<{base}/app/hook/deliveries?per_page=100&cursor=page2>; rel="next"'
        self._send(200, items, headers)

    def do_POST(self) -> None:
        if not self._authorized():
            return
        parts = self.path.strip("/").split("/")
        if parts[:3] == ["app", "hook", "deliveries"] and parts[4:] == ["attempts"]:
            self.server.redelivered.append(int(parts[3]))
            return self._send(202, {})
        self._send(404, {"message": "Not Found"})


def _delivery(id_: int, guid: str, status: str, hours_ago: float) -> dict[str, Any]:
    when = (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": id_,
        "guid": guid,
        "delivered_at": when,
        "redelivery": False,
        "duration": 0.5,
        "status": status,
        "status_code": 200 if status == "OK" else 503,
        "event": "issues",
        "action": "labeled",
        "installation_id": 1,
        "repository_id": 2,
    }


def test_redeliver_redelivers_each_failed_delivery_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "app.pem").write_bytes(pem)
    server = _GitHub(("127.0.0.1", 0), _GitHubHandler)
    server.public_key, server.app_id, server.redelivered, server.auth_errors = (
        key.public_key(),
        4242,
        [],
        0,
    )
    server.deliveries = [
        _delivery(11, "aaa", "OK", 1),  # a redelivery that succeeded ...
        _delivery(10, "aaa", "Invalid HTTP Response: 503", 2),  # ... of this failure: skip
        _delivery(9, "bbb", "Invalid HTTP Response: 503", 3),  # never succeeded: redeliver
        _delivery(8, "ccc", "timed out", 4),  # on page 2, also failed
        _delivery(7, "ccc", "timed out", 5),  # same guid: one redelivery for both
        _delivery(6, "ddd", "timed out", 100),  # older than --since: left alone
    ]
    with serving(server):
        app_env = {
            **env,
            "GITHUB_APP_ID": "4242",
            "GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "app.pem"),
            "GITHUB_API_URL": f"http://127.0.0.1:{server.server_address[1]}",
        }
        dry = _cli(app_env, "redeliver", "--since", "72h", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert [f["guid"] for f in json.loads(dry.stdout)["failed"]] == ["bbb", "ccc"]
        assert server.redelivered == []
        result = _cli(app_env, "redeliver", "--since", "72h")
        assert result.returncode == 0, result.stderr
        assert sorted(server.redelivered) == [8, 9]
        assert "bbb" in result.stdout and "redelivered" in result.stdout
        assert server.auth_errors == 0
        bad = _cli(app_env, "redeliver", "--since", "three days")
        assert bad.returncode == 2 and "--since" in bad.stderr


def test_redeliver_without_app_settings_says_what_to_set(env: dict[str, str]) -> None:
    result = _cli(env, "redeliver")
    assert result.returncode == 2
    assert "GITHUB_APP_ID" in result.stderr and "Traceback" not in result.stderr


def test_wait_for_reports_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="the moon"):
        wait_for(lambda: False, 0.1, "the moon")
