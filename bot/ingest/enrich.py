"""Worker-side enrichment: fetch what a webhook leaves out before the pipeline runs.

Sentry `issue.created` has no stack trace: fetch the issue's latest event
(`GET {SENTRY_API_URL}/issues/{id}/events/latest/`, Bearer SENTRY_AUTH_TOKEN). PagerDuty
webhooks carry no alert details: fetch `GET {PAGERDUTY_API_URL}/incidents/{id}/alerts`
(`Token token=PAGERDUTY_API_TOKEN`). Runs in the worker, never in the web process. A failed
fetch is noted on the job and the job runs with what the webhook gave.
May import: bot.incident, bot.jobs, bot.settings, bot.ingest.routes, bot.readers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from bot.incident import Frame, Incident
from bot.ingest.routes import get, text
from bot.jobs import MAX_FRAMES, JobRequest
from bot.settings import Settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)(?:, in (\S+))?')
_PY_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\w*): ?(.*)$")
STACK_KEYS = ("stack", "stacktrace", "stack_trace", "traceback", "exception", "error")


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


def _sentry_event(event: Any, settings: Settings) -> Incident | None:
    if not isinstance(event, Mapping):
        return None
    try:
        from bot.readers import from_sentry_event  # type: ignore[attr-defined,unused-ignore]

        incident: Incident = from_sentry_event(event, project_repos=settings.sentry_project_repos)
        return incident
    except ImportError:
        return sentry_api_event(event)
    except Exception:
        return sentry_api_event(event)


def _pagerduty_alerts(body: Any, settings: Settings) -> Incident | None:
    if not isinstance(body, Mapping):
        return None
    try:
        from bot.readers import from_pagerduty_alerts  # type: ignore[attr-defined,unused-ignore]

        incident: Incident = from_pagerduty_alerts(
            body, service_repos=settings.pagerduty_service_repos
        )
        return incident
    except ImportError:
        return pagerduty_alerts(body)
    except Exception:
        return pagerduty_alerts(body)


# Minimal readers of the Sentry REST event and PagerDuty alerts; replaced by bot.readers on merge.
def sentry_api_event(event: Mapping[str, Any]) -> Incident | None:
    entries = event.get("entries")
    values: list[Any] = []
    if isinstance(entries, list):
        for entry in entries:
            if get(entry, "type") == "exception" and isinstance(get(entry, "data.values"), list):
                values = get(entry, "data.values")
    exc = values[-1] if values and isinstance(values[-1], Mapping) else {}
    frames: list[Frame] = []
    raw = get(exc, "stacktrace.frames")
    for item in raw[-MAX_FRAMES:] if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        file = text(item, "filename", 1000) or text(item, "absPath", 1000)
        if not file:
            continue
        line = item.get("lineNo")
        raw_context = item.get("context")
        context: list[Any] = raw_context if isinstance(raw_context, list) else []
        frames.append(
            Frame(
                file=file,
                line=line if isinstance(line, int) and not isinstance(line, bool) else None,
                function=text(item, "function", 300),
                in_app=item.get("inApp") is not False,
                context=tuple(
                    str(c[1])[:500] for c in context[:15] if isinstance(c, list) and len(c) == 2
                ),
                module=text(item, "module", 300),
            )
        )
    release = get(event, "release.version") or (
        event.get("release") if isinstance(event.get("release"), str) else None
    )
    return Incident(
        source="sentry",
        title=text(event, "title", 500) or "Sentry event",
        error_type=text(exc, "type", 200),
        error_message=text(exc, "value", 2000),
        frames=tuple(frames),
        ref=str(release)[:200] if release else None,
    )


def pagerduty_alerts(body: Mapping[str, Any]) -> Incident | None:
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        return None
    for alert in alerts[:50]:
        details = get(alert, "body.details")
        if not isinstance(details, Mapping):
            continue
        hint = text(details, "repo", 200) or text(details, "repository", 200)
        for key, value in details.items():
            if str(key).lower() in STACK_KEYS and isinstance(value, str):
                parsed = python_traceback(value[:200_000])
                if parsed is not None:
                    return parsed.with_changes(extra={"repo_hint": hint})
        return Incident(
            source="pagerduty",
            title=text(alert, "summary", 500) or "PagerDuty alert",
            extra={
                "repo_hint": hint,
                "details": {str(k)[:100]: str(v)[:2000] for k, v in list(details.items())[:20]},
            },
        )
    return None


def python_traceback(stack: str) -> Incident | None:
    frames = [
        Frame(file=m.group(1), line=int(m.group(2)), function=m.group(3))
        for m in _PY_FRAME.finditer(stack)
    ][-MAX_FRAMES:]
    if not frames:
        return None
    error_type = message = None
    for line in reversed(stack.strip().splitlines()):
        match = _PY_ERROR.match(line.strip())
        if match:
            error_type, message = match.group(1), match.group(2)
            break
    return Incident(
        source="pagerduty",
        title=f"{error_type}: {message}" if error_type else "PagerDuty alert",
        error_type=error_type,
        error_message=message,
        frames=tuple(frames),
    )
