"""Real `python -m bot worker` processes consuming jobs from a real redis-server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

from bot.settings import load_settings
from bot.state import JobStore
from bot.web import create_app
from tests.intake.conftest import (
    Workers,
    dumps,
    fixture_json,
    pagerduty_triggered,
    send_pagerduty,
    send_sentry,
    sentry_alert,
    wait_for,
)
from tests.intake.vendors import PAGERDUTY_TOKEN, SENTRY_TOKEN, vendor_api

PROJECTS = {
    "front-end": "acme/web",
    "sleeper": "acme/sleep-4",
    "poison": "acme/kill",
    "broken": "acme/raise",
    "alpha": "acme/alpha",
    "beta": "acme/beta",
    "gamma": "acme/gamma",
}


@pytest.fixture
def worker_env(env: dict[str, str]) -> dict[str, str]:
    mapping = ",".join(f"test-org/{p}={r}" for p, r in PROJECTS.items())
    return {**env, "SENTRY_PROJECT_REPOS": mapping + ",front-end=acme/web"}


@pytest.fixture
def app_client(worker_env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(worker_env))) as client:
        yield client


def _queue(client: TestClient, project: str, issue: str) -> str:
    response = send_sentry(client, "event_alert", sentry_alert(project, issue))
    assert response.status_code == 202, response.text
    return str(response.json()["job"])


def _state(store: JobStore, job_id: str) -> str:
    record = store.get(job_id)
    return record.state if record else "missing"


def _runs(rdb: redis.Redis) -> list[dict]:
    return [json.loads(x) for x in rdb.lrange("test:runs", 0, -1)]


def _workers(workers: Workers, worker_env: dict[str, str], **extra: str) -> Workers:
    workers.env.update(worker_env)
    workers.env.update(extra)
    return workers


def test_worker_consumes_a_queued_job(
    app_client: TestClient, workers: Workers, worker_env: dict[str, str], rdb: redis.Redis
) -> None:
    job = _queue(app_client, "front-end", "101")
    store = JobStore(worker_env["REDIS_URL"])
    _workers(workers, worker_env).start()
    wait_for(lambda: _state(store, job) == "done", 20, f"job {job} to finish\n{workers.logs()}")
    record = store.get(job)
    assert record is not None and record.attempts == 1
    assert record.outcome == {
        "ok": True,
        "summary": "fixed",
        "decision": "pr",
        "url": "https://example.invalid/pr/1",
        "details": {},
    }
    assert rdb.lrange("test:done", 0, -1) == [job.encode()]
    assert _runs(rdb)[0]["frames"] > 0  # the webhook's own frames reached the handler


def test_failures_are_recorded_and_the_worker_keeps_going(
    app_client: TestClient, workers: Workers, worker_env: dict[str, str]
) -> None:
    broken = _queue(app_client, "broken", "201")
    fine = _queue(app_client, "alpha", "202")
    store = JobStore(worker_env["REDIS_URL"])
    proc = _workers(workers, worker_env).start()
    wait_for(lambda: _state(store, fine) == "done", 20, "the job after the broken one")
    record = store.get(broken)
    assert record is not None and record.state == "failed"
    assert record.outcome and "RuntimeError: the handler broke" in record.outcome["summary"]
    assert proc.poll() is None  # no crash


def test_sentry_issue_is_enriched_by_the_worker(
    app_client: TestClient, workers: Workers, worker_env: dict[str, str], rdb: redis.Redis
) -> None:
    with vendor_api() as api:
        base = f"http://127.0.0.1:{api.server_address[1]}"
        response = send_sentry(
            app_client, "issue", dumps(fixture_json("sentry-issue.created.json"))
        )
        job = response.json()["job"]
        assert api.requests == []  # the web process fetched nothing
        _workers(
            workers,
            worker_env,
            SENTRY_AUTH_TOKEN=SENTRY_TOKEN,
            SENTRY_API_URL=f"{base}/api/0",
        ).start()
        store = JobStore(worker_env["REDIS_URL"])
        wait_for(lambda: _state(store, job) == "done", 20, f"job {job}\n{workers.logs()}")
    assert [path for path, _ in api.requests] == ["/api/0/issues/1170820242/events/latest/"]
    run = _runs(rdb)[0]
    assert run["frames"] == 2 and run["error_type"] == "ZeroDivisionError"
    record = store.get(job)
    assert record is not None and record.request is not None
    frames = record.request["incident"]["frames"]
    assert [f["function"] for f in frames] == ["checkout", "compute_total"]
    assert "fetched the latest Sentry event" in (record.note or "")
    assert SENTRY_TOKEN not in workers.logs()


def test_pagerduty_alerts_are_fetched_by_the_worker(
    app_client: TestClient, workers: Workers, worker_env: dict[str, str], rdb: redis.Redis
) -> None:
    with vendor_api() as api:
        base = f"http://127.0.0.1:{api.server_address[1]}"
        job = send_pagerduty(app_client, pagerduty_triggered("PXYZ123")).json()["job"]
        _workers(
            workers, worker_env, PAGERDUTY_API_TOKEN=PAGERDUTY_TOKEN, PAGERDUTY_API_URL=base
        ).start()
        store = JobStore(worker_env["REDIS_URL"])
        wait_for(lambda: _state(store, job) == "done", 20, f"job {job}\n{workers.logs()}")
    path, headers = api.requests[0]
    assert path == "/incidents/PXYZ123/alerts"
    assert headers["Accept"] == "application/vnd.pagerduty+json;version=2"
    run = _runs(rdb)[0]
    assert run["frames"] == 2 and run["error_type"] == "ZeroDivisionError"


def test_sigkilled_worker_job_finishes_once_within_30s(
    app_client: TestClient, workers: Workers, worker_env: dict[str, str], rdb: redis.Redis
) -> None:
    """The job of a worker killed mid-run is redelivered and finishes once within 30 s.

    With the default 10 s lease (12-15 s from kill to done on a quiet machine)."""
    pool = _workers(workers, worker_env)
    first, second = pool.start(), pool.start()
    store = JobStore(worker_env["REDIS_URL"])
    # Both workers must be consuming before the kill: on a fresh install the survivor's first
    # start (bytecode compiled, SDKs imported) can otherwise eat the 30 s.
    wait_for(lambda: workers.logs().count("worker.started") >= 2, 60, "both workers to start")
    job = _queue(app_client, "sleeper", "301")  # sleeps 4 s
    # Killed mid-run: once the handler has recorded its run, not merely once the job is
    # claimed (a kill between claim and handler would leave attempt 1 unrecorded).
    wait_for(lambda: len(_runs(rdb)) == 1, 20, "the job's handler to start")
    holder_id = (rdb.hget(f"selfheal:job:{job}", "worker") or b"").decode()
    holder = first if f":{first.pid}:" in holder_id else second
    os.kill(holder.pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def diagnosis() -> str:
        return f"runs={_runs(rdb)} record={store.get(job)}\n{workers.logs()[-4000:]}"

    try:
        wait_for(lambda: _state(store, job) == "done", 30, f"job {job} to finish after the kill")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {diagnosis()}") from None
    assert time.monotonic() - killed_at < 30
    assert rdb.lrange("test:done", 0, -1) == [job.encode()], diagnosis()  # finished once
    runs = _runs(rdb)
    assert [r["attempt"] for r in runs] == [1, 2], diagnosis()
    assert runs[0]["pid"] == holder.pid and runs[1]["pid"] != holder.pid, diagnosis()
    final = store.get(job)
    assert final is not None and final.attempts == 2


def test_poison_job_is_quarantined_after_3_attempts_and_others_flow(
    app_client: TestClient, workers: Workers, worker_env: dict[str, str], rdb: redis.Redis
) -> None:
    pool = _workers(workers, worker_env, SELFHEAL_LEASE_SECONDS="2")
    pool.start()
    pool.start()
    store = JobStore(worker_env["REDIS_URL"])
    poison = _queue(app_client, "poison", "401")
    others = [_queue(app_client, p, f"40{i + 2}") for i, p in enumerate(("alpha", "beta", "gamma"))]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        while len(pool.alive()) < 2:  # a supervisor restarts dead workers
            pool.start()
        if _state(store, poison) == "quarantined" and all(
            _state(store, j) == "done" for j in others
        ):
            break
        time.sleep(0.1)
    record = store.get(poison)
    assert record is not None and record.state == "quarantined", workers.logs()
    assert record.attempts == 3
    assert record.outcome and "quarantined" in record.outcome["summary"]
    assert [_state(store, j) for j in others] == ["done"] * 3
    assert store.quarantined() == [poison]
    assert sum(1 for r in _runs(rdb) if r["job"] == poison) == 3
    # Dead workers' Dramatiq messages for the poison job come back later: they never run it again.
    assert "job.quarantined" in workers.logs()
