"""Sentry: the REST event, the three webhook resources with an error, and the rest refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.errors import IncidentFormatError
from bot.readers import from_sentry_event, from_sentry_issue, from_sentry_webhook

Load = Callable[[str], Any]
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"


def test_api_event_maps_every_field(load_json: Load) -> None:
    incident = from_sentry_event(
        load_json("sentry-api.event.python.json"), project_repos={"5236886": "acme/shop"}
    )
    assert incident.source == "sentry"
    assert incident.title == "ZeroDivisionError: division by zero"
    assert incident.error_type == "ZeroDivisionError"
    assert incident.error_message == "division by zero"
    assert incident.repo == "acme/shop"
    assert incident.ref == SHA  # from "shop-backend@<sha>"
    assert incident.severity == "error"
    assert incident.last_seen == "2026-11-30T09:14:02.118000Z"
    assert incident.external_id == "4412345678"
    assert incident.event_count == 1
    # Frames of the raised (last) exception, outermost first, as Sentry orders them.
    assert [(f.file, f.line, f.function, f.in_app) for f in incident.frames] == [
        ("flask/app.py", 880, "dispatch_request", False),
        ("shop/views.py", 42, "cart_summary", True),
        ("shop/cart.py", 27, "average_price", True),
    ]
    crash = incident.frames[-1]
    assert crash.module == "shop.cart"
    assert "    return sum(prices) / len(prices)" in crash.context
    assert incident.extra["event_id"] == "4f3b6c1d2e8a4b9c9d0e1f2a3b4c5d6e"
    assert incident.extra["environment"] == "production"
    assert incident.extra["chained_exceptions"] == ["KeyError: 'quantity'"]
    assert incident.extra["organization"] == "acme"
    assert incident.extra["release"] == f"shop-backend@{SHA}"
    assert "ref_hint" not in incident.extra  # the release named a SHA: it is the ref


def test_release_that_is_not_a_sha_stays_a_hint(load_json: Load) -> None:
    event = load_json("sentry-api.event.python.json")
    event["release"] = {"version": "2.4.1"}
    event["tags"] = []
    incident = from_sentry_event(event)
    assert incident.ref is None
    assert incident.extra["ref_hint"] == "2.4.1"
    assert incident.repo is None  # no mapping given


def test_release_only_in_tags_is_read(load_json: Load) -> None:
    event = load_json("sentry-api.event.python.json")
    event["release"] = None
    assert from_sentry_event(event).ref == SHA


def test_issue_webhook_has_no_frames_and_asks_for_the_latest_event(load_json: Load) -> None:
    body = load_json("sentry-issue.created.json")
    incident = from_sentry_webhook("issue", body, project_repos={"front-end": "acme/web"})
    assert incident.frames == ()
    assert incident.extra["needs_event_fetch"] is True
    assert incident.extra["issue_id"] == "1170820242"
    assert incident.external_id == "1170820242"
    assert incident.extra["short_id"] == "FRONT-END-9"
    assert incident.extra["action"] == "created"
    assert incident.title == "ReferenceError: blooopy is not defined"
    assert incident.error_type == "ReferenceError"
    assert incident.repo == "acme/web"
    assert incident.first_seen == incident.last_seen == "2019-08-19T20:58:37.391000Z"
    assert incident.event_count == 1
    assert incident.severity == "error"


def test_issue_links_and_count(load_json: Load) -> None:
    body = load_json("sentry-issue.created.json")
    body["data"]["issue"]["count"] = "1523"
    body["data"]["issue"]["web_url"] = "https://sentry.io/organizations/acme/issues/1170820242/"
    incident = from_sentry_webhook(None, body, project_repos={"acme/front-end": "acme/web"})
    assert incident.event_count == 1523
    assert incident.links == ("https://sentry.io/organizations/acme/issues/1170820242/",)
    assert incident.repo == "acme/web"  # org/slug key, org read from web_url


def test_event_alert_webhook(load_json: Load) -> None:
    body = load_json("sentry-event_alert.triggered.json")
    incident = from_sentry_webhook("event_alert", body, project_repos={"front-end": "acme/web"})
    assert incident.title == "ReferenceError: heck is not defined"
    assert incident.error_message == "heck is not defined"
    assert len(incident.frames) == 3
    assert incident.frames[-1].file == "<anonymous>"
    assert incident.frames[-1].line == 3
    assert all(not f.in_app for f in incident.frames)  # Sentry said in_app: false
    assert incident.repo == "acme/web"  # slug parsed from data.event.url
    assert incident.external_id == "1117540176"
    assert incident.links == (
        "https://sentry.io/organizations/test-org/issues/1117540176/events/"
        "e4874d664c3540c1a32eab185f12c5ab/",
    )
    assert incident.extra["triggered_rule"] == "Very Important Alert Rule!"
    assert incident.extra["resource"] == "event_alert"
    assert incident.ref is None


def test_error_webhook_reads_snake_case_context(load_json: Load) -> None:
    body = load_json("sentry-error.created.json")
    incident = from_sentry_webhook("error", body)
    (frame,) = incident.frames
    assert frame.file == "/runner"
    assert frame.line == 3
    assert frame.module == "runner"
    # pre_context + context_line + post_context, in order, around the line
    assert frame.context[:3] == ("<!doctype html>", "<html>", "<meta charset=utf-8>")
    assert frame.context[3] == "<title>JS Bin Runner</title>"
    assert incident.last_seen == "2019-08-19T20:58:37.391000Z"
    assert incident.external_id == "1170820242"


def test_webhook_resource_inferred_from_data(load_json: Load) -> None:
    body = load_json("sentry-error.created.json")
    assert from_sentry_webhook(None, body).extra["resource"] == "error"


def test_webhook_frames_without_in_app_use_the_path(load_json: Load) -> None:
    body = load_json("sentry-error.created.json")
    frames = body["data"]["error"]["exception"]["values"][0]["stacktrace"]["frames"]
    frames[:] = [
        {"filename": "app/models.py", "lineno": 4, "function": "save"},
        {"abs_path": "/venv/lib/python3.11/site-packages/sqlalchemy/orm.py", "lineno": 9},
    ]
    incident = from_sentry_webhook("error", body)
    assert [f.in_app for f in incident.frames] == [True, False]


@pytest.mark.parametrize(
    "name", ["sentry-comment.created.json", "sentry-metric_alert.resolved.json"]
)
def test_webhooks_without_an_error_are_refused(load_json: Load, name: str) -> None:
    with pytest.raises(IncidentFormatError, match="carries no error to fix"):
        from_sentry_webhook(None, load_json(name))


@pytest.mark.parametrize(
    ("resource", "body", "path"),
    [
        ("issue", {"action": "created", "data": {}}, "data.issue"),
        ("issue", {"action": "created", "data": {"issue": {"title": "x"}}}, "data.issue.id"),
        ("event_alert", {"action": "triggered", "data": {"event": []}}, "data.event"),
        ("error", {"action": "created", "data": {"error": None}}, "data.error"),
        ("error", {"action": "created"}, "data"),
        ("error", {"action": "created", "data": {"error": {"level": "error"}}}, "data.error"),
    ],
)
def test_missing_required_field_names_its_json_path(
    resource: str, body: dict[str, Any], path: str
) -> None:
    with pytest.raises(IncidentFormatError) as caught:
        from_sentry_webhook(resource, body)
    assert path in str(caught.value)
    assert "\n" not in str(caught.value)


def test_optional_fields_of_wrong_types_never_raise() -> None:
    event = {
        "title": "Boom",
        "tags": "nonsense",
        "release": 12,
        "metadata": [],
        "exception": {"values": [{"type": ["x"], "stacktrace": {"frames": [1, None, {}]}}]},
        "level": {"a": 1},
        "contexts": None,
    }
    incident = from_sentry_event(event)
    assert incident.title == "Boom"
    assert incident.frames == ()
    assert incident.severity is None
    assert incident.error_type is None


def test_sentry_issue_object_from_the_api(load_json: Load) -> None:
    issue = load_json("sentry-issue.created.json")["data"]["issue"]
    incident = from_sentry_issue(issue)
    assert incident.extra["needs_event_fetch"] is True
    assert incident.external_id == "1170820242"
