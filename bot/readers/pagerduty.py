"""Read PagerDuty V3 webhooks and the incident alerts REST response into `Incident`s.

A V3 webhook (`{"event": {"event_type", "data": {...incident...}}}`) carries no stack trace.
The alerts response (`GET /incidents/{id}/alerts`) may: any string under an alert's
`body.cef_details.details` or `body.details` holding a Python traceback or a Node.js stack is
read with those readers. May import: bot.errors, bot.incident, bot.readers.common,
bot.readers.python_traceback, bot.readers.node_stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.errors import IncidentFormatError
from bot.incident import Incident
from bot.readers.common import (
    MAX_FILE_BYTES,
    clean,
    clean_message,
    get,
    iter_strings,
    repo_for,
    require_mapping,
    require_text,
    small_extra,
)
from bot.readers.node_stack import contains_node_stack, from_node_stack
from bot.readers.python_traceback import contains_python_traceback, from_python_traceback

MAX_ALERTS = 100  # alerts looked at in one response


def _service_repo(
    service: Any, service_repos: Mapping[str, str] | None
) -> tuple[str | None, str | None, str | None]:
    """(repo, service id, service name) for a service reference."""
    service_id = clean(get(service, "id"))
    name = clean(get(service, "summary") or get(service, "name"))
    return repo_for(service_repos, service_id, name), service_id, name


def from_pagerduty_webhook(
    payload: Mapping[str, Any],
    *,
    service_repos: Mapping[str, str] | None = None,
) -> Incident:
    """A PagerDuty V3 webhook body as an Incident (no frames: PagerDuty sends none).

    `service_repos` maps a service id or name to `owner/name`. Missing optional fields never
    raise; `event.data` with an incident id is required (IncidentFormatError names the path).
    """
    payload = require_mapping(payload, "body", "PagerDuty webhook")
    event = require_mapping(payload.get("event"), "event", "PagerDuty webhook")
    event_type = clean(event.get("event_type"), 100)
    if event_type == "pagey.ping":
        raise IncidentFormatError("PagerDuty webhook: event.event_type 'pagey.ping' is a test ping")
    data = require_mapping(event.get("data"), "event.data", "PagerDuty webhook")
    resource_type = clean(event.get("resource_type"), 50)
    if resource_type not in (None, "incident"):
        raise IncidentFormatError(
            f"PagerDuty webhook: event.resource_type {resource_type!r} is not an incident"
        )
    if data.get("type") == "incident" or "incident" not in data:
        incident = data
        base = "event.data"
    else:  # incident.annotated and other sub-resources carry a reference to the incident
        incident = require_mapping(data.get("incident"), "event.data.incident", "PagerDuty webhook")
        base = "event.data.incident"
    incident_id = require_text(incident.get("id"), f"{base}.id", "PagerDuty webhook")
    repo, service_id, service_name = _service_repo(incident.get("service"), service_repos)
    priority = clean(get(incident, "priority", "summary"), 50)
    urgency = clean(incident.get("urgency"), 50)
    title = (
        clean(incident.get("title"))
        or clean(incident.get("summary"))
        or f"PagerDuty incident {incident_id}"
    )
    links = tuple(link for link in (clean(incident.get("html_url"), 2000),) if link)
    return Incident(
        source="pagerduty",
        title=title,
        error_message=clean_message(data.get("content")) if base != "event.data" else None,
        repo=repo,
        links=links,
        severity=priority or urgency,
        first_seen=clean(incident.get("created_at")),
        last_seen=clean(event.get("occurred_at")),
        external_id=incident_id,
        extra=small_extra(
            event_type=event_type,
            event_id=clean(event.get("id")),
            incident_number=clean(incident.get("number")),
            status=clean(incident.get("status")),
            urgency=urgency,
            priority=priority,
            incident_key=clean(incident.get("incident_key")),
            service_id=service_id,
            service=service_name,
            api_url=clean(incident.get("self"), 2000),
            needs_alerts_fetch=True,
        ),
    )


def _stack_in(alert: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, text) of the first traceback or stack among the alert's detail strings."""
    body = alert.get("body")
    roots = [get(body, "cef_details", "details"), get(body, "details"), body]
    for root in roots:
        for text in iter_strings(root):
            if len(text) > MAX_FILE_BYTES:
                continue
            if contains_python_traceback(text):
                return "python", text
            if "    at " in text and contains_node_stack(text):
                return "nodejs", text
    return None


def from_pagerduty_alerts(
    payload: Mapping[str, Any],
    *,
    service_repos: Mapping[str, str] | None = None,
) -> Incident:
    """The alerts REST response (`{"alerts": [...]}`) as an Incident.

    The first alert holding a stack trace in its details gives the frames and error; without
    one, the first alert gives the title. `alerts` must be a non-empty list.
    """
    payload = require_mapping(payload, "body", "PagerDuty alerts")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        state = "is empty" if isinstance(alerts, list) else "is missing"
        raise IncidentFormatError(f"PagerDuty alerts: alerts {state}")
    chosen: Mapping[str, Any] | None = None
    stack: tuple[str, str] | None = None
    for alert in alerts[:MAX_ALERTS]:
        if not isinstance(alert, Mapping):
            continue
        chosen = chosen or alert
        stack = _stack_in(alert)
        if stack is not None:
            chosen = alert
            break
    if chosen is None:
        raise IncidentFormatError("PagerDuty alerts: alerts[0] is not an object")
    repo, service_id, service_name = _service_repo(chosen.get("service"), service_repos)
    incident_id = clean(get(chosen, "incident", "id")) or clean(chosen.get("id"))
    summary = clean(chosen.get("summary"))
    parsed: Incident | None = None
    if stack is not None:
        kind, text = stack
        parsed = from_python_traceback(text) if kind == "python" else from_node_stack(text)
    links = tuple(link for link in (clean(chosen.get("html_url"), 2000),) if link)
    return Incident(
        source="pagerduty",
        title=summary or (parsed.title if parsed else None) or f"PagerDuty alert {incident_id}",
        error_type=parsed.error_type if parsed else None,
        error_message=parsed.error_message if parsed else clean_message(summary),
        frames=parsed.frames if parsed else (),
        repo=repo,
        links=links,
        severity=clean(chosen.get("severity"), 50),
        first_seen=clean(chosen.get("created_at")),
        event_count=len(alerts),
        external_id=incident_id,
        extra=small_extra(
            alert_id=clean(chosen.get("id")),
            alert_key=clean(chosen.get("alert_key")),
            status=clean(chosen.get("status")),
            service_id=service_id,
            service=service_name,
            stack_format=stack[0] if stack else None,
            frames_omitted=parsed.extra.get("frames_omitted") if parsed else None,
        ),
    )
