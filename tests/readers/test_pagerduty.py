"""PagerDuty: V3 webhooks (no stack) and the alerts response (stack in the details)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.errors import IncidentFormatError
from bot.readers import from_pagerduty_alerts, from_pagerduty_webhook, parse_incident

Load = Callable[[str], Any]

PY_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/mail/mailer/send.py", line 88, in deliver\n'
    "    smtp.send(message)\n"
    '  File "/srv/mail/mailer/smtp.py", line 12, in send\n'
    "    raise ConnectionRefusedError(111, 'Connection refused')\n"
    "ConnectionRefusedError: [Errno 111] Connection refused\n"
)
NODE_STACK = (
    "TypeError: Cannot read properties of undefined (reading 'id')\n"
    "    at renderUser (/app/src/users.js:41:18)\n"
    "    at /app/src/server.js:12:3\n"
)


@pytest.mark.parametrize(
    "name",
    [
        "pagerduty-incident.priority_updated.json",
        "pagerduty-webhook-signed.incident.priority_updated.json",
    ],
)
def test_webhook_maps_incident_fields(load_json: Load, name: str) -> None:
    incident = from_pagerduty_webhook(load_json(name), service_repos={"PF9KMXH": "acme/api"})
    assert incident.source == "pagerduty"
    assert incident.title == "A little bump in the road"
    assert incident.external_id == "PGR0VU2"
    assert incident.links == ("https://acme.pagerduty.com/incidents/PGR0VU2",)
    assert incident.severity == "P1"  # priority wins over urgency when set
    assert incident.extra["urgency"] == "high"
    assert incident.extra["service_id"] == "PF9KMXH"
    assert incident.extra["service"] == "API Service"
    assert incident.extra["event_type"] == "incident.priority_updated"
    assert incident.extra["needs_alerts_fetch"] is True
    assert incident.repo == "acme/api"
    assert incident.frames == ()


def test_webhook_created_at_and_urgency_without_priority(load_json: Load) -> None:
    body = load_json("pagerduty-incident.priority_updated.json")
    body["event"]["event_type"] = "incident.triggered"
    body["event"]["data"]["priority"] = None
    incident = from_pagerduty_webhook(body, service_repos={"API Service": "acme/api"})
    assert incident.severity == "high"
    assert incident.first_seen == "2020-04-09T15:16:27Z"
    assert incident.last_seen == "2020-10-02T18:45:22.169Z"
    assert incident.repo == "acme/api"  # by service name


def test_webhook_tolerates_missing_optional_fields() -> None:
    incident = from_pagerduty_webhook({"event": {"data": {"id": "P1", "type": "incident"}}})
    assert incident.title == "PagerDuty incident P1"
    assert incident.links == ()
    assert incident.severity is None


def test_annotated_event_reads_the_incident_reference() -> None:
    body = {
        "event": {
            "event_type": "incident.annotated",
            "data": {
                "incident": {
                    "id": "PGR0VU2",
                    "html_url": "https://x.pagerduty.com/incidents/PGR0VU2",
                },
                "content": "restarted the pods",
                "type": "incident_note",
            },
        }
    }
    incident = from_pagerduty_webhook(body)
    assert incident.external_id == "PGR0VU2"
    assert incident.error_message == "restarted the pods"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "event"),
        ({"event": {"event_type": "incident.triggered"}}, "event.data"),
        (
            {"event": {"event_type": "incident.triggered", "data": {"type": "incident"}}},
            "event.data.id",
        ),
        ({"event": {"event_type": "incident.triggered", "data": "x"}}, "event.data"),
    ],
)
def test_webhook_missing_required_field_names_its_path(body: dict[str, Any], path: str) -> None:
    with pytest.raises(IncidentFormatError) as caught:
        from_pagerduty_webhook(body)
    assert f"{path} " in str(caught.value)


def test_ping_is_refused_clearly() -> None:
    body = {"event": {"event_type": "pagey.ping", "data": None}}
    with pytest.raises(IncidentFormatError, match=r"'pagey\.ping' is a test ping"):
        from_pagerduty_webhook(body)
    body = {"event": {"event_type": "pagey.ping", "data": {"message": "hi"}}}
    with pytest.raises(IncidentFormatError, match=r"'pagey\.ping' is a test ping"):
        from_pagerduty_webhook(body)


def test_alerts_response_without_a_stack(load_json: Load) -> None:
    incident = from_pagerduty_alerts(load_json("pagerduty-rest.incident-alerts.response.json"))
    assert incident.source == "pagerduty"
    assert incident.title == "The server is on fire."
    assert incident.severity == "critical"
    assert incident.external_id == "PT4KHLK"
    assert incident.links == ("https://subdomain.pagerduty.com/alerts/PXPGF42",)
    assert incident.frames == ()
    assert incident.extra["alert_key"] == "baf7cf21b1da41b4b0221008339ff357"


def test_alerts_python_traceback_in_cef_details(load_json: Load) -> None:
    body = load_json("pagerduty-rest.incident-alerts.response.json")
    body["alerts"][0]["body"]["cef_details"] = {"details": {"error": "x", "stack": PY_TRACE}}
    incident = from_pagerduty_alerts(body, service_repos={"PIJ90N7": "acme/mail"})
    assert incident.source == "pagerduty"
    assert incident.error_type == "ConnectionRefusedError"
    assert incident.error_message == "[Errno 111] Connection refused"
    assert [(f.file, f.line, f.function) for f in incident.frames] == [
        ("/srv/mail/mailer/send.py", 88, "deliver"),
        ("/srv/mail/mailer/smtp.py", 12, "send"),
    ]
    assert incident.extra["stack_format"] == "python"
    assert incident.repo == "acme/mail"


def test_alerts_node_stack_in_body_details_nested(load_json: Load) -> None:
    body = load_json("pagerduty-rest.incident-alerts.response.json")
    body["alerts"][0]["body"]["details"] = {"customKey": "x", "error": {"stack": NODE_STACK}}
    incident = from_pagerduty_alerts(body)
    assert incident.error_type == "TypeError"
    assert incident.frames[-1].file == "/app/src/users.js"
    assert incident.frames[-1].function == "renderUser"
    assert incident.extra["stack_format"] == "nodejs"


def test_alerts_file_detected_by_content(load_json: Load) -> None:
    body = load_json("pagerduty-rest.incident-alerts.response.json")
    body["alerts"][0]["body"]["details"]["trace"] = PY_TRACE
    incident = parse_incident(json.dumps(body))
    assert incident.source == "pagerduty"
    assert incident.error_type == "ConnectionRefusedError"


@pytest.mark.parametrize(
    ("body", "needle"),
    [({"alerts": []}, "alerts is empty"), ({"alerts": [1, 2]}, "alerts[0]")],
)
def test_alerts_bad_shapes(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(IncidentFormatError) as caught:
        from_pagerduty_alerts(body)
    assert needle in str(caught.value)


def test_service_events_are_refused() -> None:
    body = {
        "event": {
            "event_type": "service.updated",
            "resource_type": "service",
            "data": {"id": "PF9KMXH", "type": "service", "summary": "API Service"},
        }
    }
    with pytest.raises(IncidentFormatError, match="resource_type 'service' is not an incident"):
        from_pagerduty_webhook(body)
