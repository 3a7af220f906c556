"""PagerDuty V3 webhooks -> Route.

Jobs start on `incident.triggered` and `incident.reopened`; the service -> repo mapping is
PAGERDUTY_SERVICE_REPOS. The incident is read by bot.readers; alerts (with stack traces) are
fetched by the worker. May import: bot.ingest.routes, bot.errors, bot.settings, bot.readers.
"""

from __future__ import annotations

from typing import Any

from bot.errors import IncidentFormatError
from bot.ingest.routes import (
    Ignored,
    NewJob,
    PayloadError,
    Pong,
    Route,
    group_fingerprint,
    need_mapping,
    need_text,
    text,
)
from bot.readers import from_pagerduty_webhook
from bot.settings import Settings

ACTED_ON = ("incident.triggered", "incident.reopened")


def route(payload: Any, settings: Settings, webhook_id: str | None) -> Route:
    if type(payload) is not dict:
        raise PayloadError("the body must be a JSON object")
    need_mapping(payload, "event")
    event_type = need_text(payload, "event.event_type", 100)
    if event_type == "pagey.ping":
        return Pong()
    if event_type not in ACTED_ON:
        return Ignored(f"pagerduty {event_type} is not acted on")
    data = need_mapping(payload, "event.data")
    incident_id = need_text(payload, "event.data.id", 64)
    service_id = need_text(payload, "event.data.service.id", 64)
    repo = settings.pagerduty_service_repos.get(service_id)
    if repo is None:
        summary = text(data, "service.summary", 200)
        if summary:
            repo = settings.pagerduty_service_repos.get(summary)
    if repo is None:
        return Ignored(
            f"no repository mapped for PagerDuty service {service_id}: add "
            f"{service_id}=owner/repo to PAGERDUTY_SERVICE_REPOS"
        )
    key = webhook_id or need_text(payload, "event.id", 200)
    try:
        incident = from_pagerduty_webhook(payload, service_repos=settings.pagerduty_service_repos)
    except IncidentFormatError as exc:
        raise PayloadError(str(exc)) from None
    # The worker fetches the incident's alerts (where stack traces live) before the job runs.
    incident = incident.with_changes(repo=repo, extra={**incident.extra, "needs_alerts": True})
    return NewJob(
        kind="incident",
        source="pagerduty",
        repo=repo,
        fingerprint=group_fingerprint("pagerduty", repo, incident_id),
        delivery_key=f"pagerduty:{key}",
        incident=incident,
    )
