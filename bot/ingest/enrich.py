"""Worker-side enrichment: fetch what a webhook leaves out before the pipeline runs.

Sentry `issue.created` has no stack trace: fetch the issue's latest event
(`GET {SENTRY_API_URL}/issues/{id}/events/latest/`, Bearer SENTRY_AUTH_TOKEN). PagerDuty
webhooks carry no alert details: fetch `GET {PAGERDUTY_API_URL}/incidents/{id}/alerts`
(`Token token=PAGERDUTY_API_TOKEN`). Runs in the worker, never in the web process. A failed
fetch is noted on the job and the job runs with what the webhook gave. The responses are read
by bot.readers. May import: bot.incident, bot.jobs, bot.settings, bot.errors,
bot.ingest.routes, bot.readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bot.errors import IncidentFormatError
from bot.incident import Incident
from bot.ingest.routes import text
from bot.jobs import MAX_FRAMES, JobRequest
from bot.readers import from_pagerduty_alerts, from_sentry_event
from bot.settings import Settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def enrich(request: JobRequest, settings: Settings, client: httpx.Client) -> tuple[JobRequest, str]:
    """The request with a fuller incident, and a note saying what was fetched or why not."""
    incident = request.incident
    if incident is None:
        return request, ""
    if request.source == "sentry" and incident.extra.get("needs_event") and not incident.frames:
        return _sentry(request, incident, settings, client)
    if request.source == "pagerduty" and incident.extra.get("needs_alerts"):
        return _pagerduty(request, incident, settings, client)
    return request, ""


def _replace(request: JobRequest, incident: Incident) -> JobRequest:
    return JobRequest.from_dict({**request.to_dict(), "incident": incident.to_dict()})


def _sentry(
    request: JobRequest, incident: Incident, settings: Settings, client: httpx.Client
) -> tuple[JobRequest, str]:
    if settings.sentry_auth_token is None:
        return request, "SENTRY_AUTH_TOKEN is not set: running without the stack trace"
    url = f"{settings.sentry_api_url.rstrip('/')}/issues/{incident.external_id}/events/latest/"
    token = settings.sentry_auth_token.get_secret_value()
    try:
        response = client.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        response.raise_for_status()
        event = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return request, f"could not fetch the latest Sentry event: {_why(exc)}"
    fetched = _sentry_event(event, settings)
    if fetched is None:
        return request, "the latest Sentry event could not be read"
    extra = {**incident.extra, "needs_event": False, "event_id": text(event, "eventID", 64)}
    merged = incident.with_changes(
        frames=fetched.frames,
        error_type=fetched.error_type or incident.error_type,
        error_message=fetched.error_message or incident.error_message,
        ref=fetched.ref or incident.ref,
        extra=extra,
        fingerprint=incident.fingerprint if not fetched.frames else "",
    )
    return _replace(
        request, merged
    ), f"fetched the latest Sentry event ({len(fetched.frames)} frames)"


def _pagerduty(
    request: JobRequest, incident: Incident, settings: Settings, client: httpx.Client
) -> tuple[JobRequest, str]:
    if settings.pagerduty_api_token is None:
        return request, "PAGERDUTY_API_TOKEN is not set: running without the alert details"
    url = f"{settings.pagerduty_api_url.rstrip('/')}/incidents/{incident.external_id}/alerts"
    headers = {
        "Authorization": f"Token token={settings.pagerduty_api_token.get_secret_value()}",
        "Accept": "application/vnd.pagerduty+json;version=2",
    }
    try:
        response = client.get(url, headers=headers, timeout=TIMEOUT)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return request, f"could not fetch the PagerDuty alerts: {_why(exc)}"
    fetched = _pagerduty_alerts(body, settings)
    extra = {**incident.extra, "needs_alerts": False}
    if fetched is None:
        return _replace(
            request, incident.with_changes(extra=extra, fingerprint=incident.fingerprint)
        ), "the PagerDuty alerts held no details"
    extra.update({k: v for k, v in fetched.extra.items() if k not in extra})
    merged = incident.with_changes(
        frames=fetched.frames or incident.frames,
        error_type=fetched.error_type or incident.error_type,
        error_message=fetched.error_message or incident.error_message,
        extra=extra,
        fingerprint=incident.fingerprint if not fetched.frames else "",
    )
    return _replace(request, merged), f"fetched the PagerDuty alerts ({len(merged.frames)} frames)"


def _why(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _capped(incident: Incident) -> Incident:
    """At most the innermost MAX_FRAMES frames, so job records stay small."""
    if len(incident.frames) <= MAX_FRAMES:
        return incident
    return incident.with_changes(frames=incident.frames[-MAX_FRAMES:])


def _sentry_event(event: Any, settings: Settings) -> Incident | None:
    if not isinstance(event, Mapping):
        return None
    try:
        incident = from_sentry_event(event, project_repos=settings.sentry_project_repos)
    except IncidentFormatError:
        return None
    return _capped(incident)


def _pagerduty_alerts(body: Any, settings: Settings) -> Incident | None:
    if not isinstance(body, Mapping):
        return None
    try:
        incident = from_pagerduty_alerts(body, service_repos=settings.pagerduty_service_repos)
    except IncidentFormatError:
        return None
    return _capped(incident)
