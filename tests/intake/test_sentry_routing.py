"""The Sentry alert fast read (routing fields only) answers exactly as the full parse does:
the same job, fingerprint, delivery id and incident, or the same refusal and message."""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from bot.ingest import sentry
from bot.ingest.routes import Ignored, NewJob, PayloadError
from bot.settings import Settings, load_settings
from bot.web import create_app
from tests.intake.conftest import BASE_ENV, dumps, fixture_json, sentry_alert, signed_headers


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except ValueError as exc:
        raise PayloadError(f"invalid JSON: {str(exc)[:120]}") from None


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        decision = call()
    except PayloadError as exc:
        return ("error", str(exc))
    if isinstance(decision, NewJob):
        incident = decision.make_incident()
        return ("job", decision.repo, decision.fingerprint, decision.delivery_key, incident)
    assert isinstance(decision, Ignored)
    return ("ignored", decision.reason)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()
ALERT = "sentry-event_alert.triggered.json"
ERROR = "sentry-error.created.json"
CASES: list[tuple[str, str, Callable[[dict[str, Any]], None] | None]] = [
    ("event_alert", ALERT, None),
    ("error", ERROR, None),
    ("event_alert", ALERT, _set("action", 7)),
    ("event_alert", ALERT, _set("action", "  ")),
    ("event_alert", ALERT, _set("action", "resolved")),
    ("event_alert", ALERT, _set("installation", _DELETE)),
    ("event_alert", ALERT, _set("installation.uuid", ["x"])),
    ("event_alert", ALERT, _set("data", [1, 2])),
    ("event_alert", ALERT, _set("data.event", _DELETE)),
    ("event_alert", ALERT, _set("data.event", "text")),
    ("event_alert", ALERT, _set("data.event.issue_id", 1117540176)),
    ("event_alert", ALERT, _set("data.event.issue_id", True)),
    ("event_alert", ALERT, _set("data.event.event_id", "")),
    ("event_alert", ALERT, _set("data.event.event_id", "e" * 500)),
    ("event_alert", ALERT, _set("data.event.url", {"not": "a url"})),
    ("event_alert", ALERT, _set("data.event.url", "https://sentry.io/nowhere/")),
    (
        "event_alert",
        ALERT,
        _set("data.event.url", "https://sentry.io/api/0/projects/other/unmapped/events/1/"),
    ),
    ("error", ERROR, _set("data.error.exception", None)),
    ("error", ALERT, None),  # an error resource whose body holds an event: refused alike
]


@pytest.mark.parametrize(("resource", "fixture", "change"), CASES)
def test_fast_read_matches_full_parse(
    settings: Settings,
    resource: str,
    fixture: str,
    change: Callable[[dict[str, Any]], None] | None,
) -> None:
    payload = copy.deepcopy(fixture_json(fixture))
    if change is not None:
        change(payload)
    body = dumps(payload)
    fast = _outcome(lambda: sentry.route_body(resource, body, settings, _parse))
    full = _outcome(lambda: sentry.route(resource, _parse(body), settings))
    assert fast == full


@pytest.mark.parametrize(
    "body", [b"{", b"[1, 2]", b'{"action": "triggered",}', b"\xff\xfe", b"null"]
)
def test_bodies_that_are_not_json_objects_get_the_full_parse_error(
    settings: Settings, body: bytes
) -> None:
    fast = _outcome(lambda: sentry.route_body("event_alert", body, settings, _parse))
    full = _outcome(lambda: sentry.route("event_alert", _parse(body), settings))
    assert fast == full
    assert fast[0] == "error"


def test_the_alert_fixture_takes_the_fast_read_and_builds_the_full_incident(
    settings: Settings,
) -> None:
    body = dumps(fixture_json(ALERT))
    parsed: list[bytes] = []

    def counting(raw: bytes) -> Any:
        parsed.append(raw)
        return _parse(raw)

    decision = sentry.route_body("event_alert", body, settings, counting)
    assert isinstance(decision, NewJob)
    assert parsed == []  # routed without building the body into objects
    incident = decision.make_incident()
    assert parsed == [body]  # a new job's incident comes from the whole body
    assert incident is not None and incident.frames and incident.repo == "acme/web"


def test_a_redis_that_never_answers_gets_503_within_sentrys_window() -> None:
    """A hung Redis (accepts, never replies) must not hold a Sentry delivery past its 1 s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        settings = load_settings({**BASE_ENV, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        with TestClient(create_app(settings)) as client:
            for _ in range(2):  # a new connection, then the one left open
                body = sentry_alert()
                started = time.monotonic()
                response = client.post(
                    "/webhooks/sentry",
                    content=body,
                    headers={
                        **signed_headers("sentry", body),
                        "Sentry-Hook-Resource": "event_alert",
                    },
                )
                took = time.monotonic() - started
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"]
                assert took < 1.0, f"answered after {took:.2f} s"
