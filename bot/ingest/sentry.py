"""Sentry integration webhooks -> Route.

Jobs start on `issue.created`, `event_alert.triggered` and `error.created`. The repository
comes from SENTRY_PROJECT_REPOS (`org/project=owner/repo`; a bare `project` key also
matches). Grouping is by Sentry issue id, so every event of one issue joins one job. The
incident is read by bot.readers. May import: bot.ingest.routes, bot.incident, bot.jobs,
bot.settings, bot.errors, bot.readers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from bot.errors import IncidentFormatError
from bot.incident import Incident
from bot.ingest.routes import (
    Ignored,
    NewJob,
    PayloadError,
    Route,
    group_fingerprint,
    need_mapping,
    need_text,
    text,
)
from bot.jobs import MAX_FRAMES
from bot.readers import from_sentry_webhook
from bot.readers.sentry import sentry_project_repo
from bot.settings import Settings

ACTED_ON = {("issue", "created"), ("event_alert", "triggered"), ("error", "created")}
_ORG_IN_URL = re.compile(r"/organizations/([^/]+)/")
_PROJECT_IN_URL = re.compile(r"/projects/([^/]+)/([^/]+)/")


# gc=False: decoded JSON is a tree (no cycles), so the collector need not track these; tracked,
# a storm's few thousand in-flight structs set off collections the bare server never pays.
class _Event(msgspec.Struct, gc=False):
    event_id: Any = None
    issue_id: Any = None
    url: Any = None


class _Data(msgspec.Struct, gc=False):
    event: _Event | None = None
    error: _Event | None = None


class _Installation(msgspec.Struct, gc=False):
    uuid: Any = None


class _Routing(msgspec.Struct, gc=False):
    """The only fields an event or error webhook needs to be routed; the rest of the body is
    checked to be JSON but not built into objects (a 5 KB event costs ~10 us, not ~40 us)."""

    action: Any = None
    installation: _Installation | None = None
    data: _Data | None = None


_ROUTING = msgspec.json.Decoder(_Routing)


def _needed(value: Any, limit: int) -> str | None:
    """`need_text` on an already-found value: None where it would refuse it."""
    kind = type(value)
    if kind is str:
        return value[:limit] if value.strip() else None
    if kind is int:
        return str(value)[:limit]
    return None


def route_body(
    resource: str, body: bytes, settings: Settings, parse: Callable[[bytes], Any]
) -> Route:
    """`route` from the raw body. Event and error alerts (storms are made of them) read only
    the routing fields; anything else, and any body the fast read does not fully accept,
    takes the full parse, so every answer and error message is the one `route` gives."""
    if resource == "event_alert" or resource == "error":
        fast = _route_fast(resource, body, settings, parse)
        if fast is not None:
            return fast
    return route(resource, parse(body), settings)


def _route_fast(
    resource: str, body: bytes, settings: Settings, parse: Callable[[bytes], Any]
) -> Route | None:
    try:
        head = _ROUTING.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    action = _needed(head.action, 100)
    data = head.data
    installation = head.installation
    if action is None or installation is None or data is None:
        return None
    if (resource, action) not in ACTED_ON or _needed(installation.uuid, 100) is None:
        return None
    event = data.event if resource == "event_alert" else data.error
    if event is None:
        return None
    event_id = _needed(event.event_id, 64)
    issue_id = _needed(event.issue_id, 64)
    url = event.url
    if event_id is None or issue_id is None or type(url) is not str:
        return None
    match = _PROJECT_IN_URL.search(url[:2000])
    if match is None:
        return None
    org, project = match.group(1), match.group(2)
    repo = _mapped(settings, org, project)
    if isinstance(repo, Ignored):
        return repo
    path = "data.event" if resource == "event_alert" else "data.error"

    def build() -> Incident:
        payload = parse(body)
        full = _event(resource, action, payload, need_mapping(payload, path), path, settings)
        assert isinstance(full, NewJob)
        incident = full.make_incident()
        assert incident is not None
        return incident

    return NewJob(
        kind="incident",
        source="sentry",
        repo=repo,
        fingerprint=group_fingerprint("sentry", repo, issue_id),
        delivery_key=f"sentry:{resource}:{action}:{event_id}",
        build=build,
    )


def route(resource: str, payload: Any, settings: Settings) -> Route:
    if type(payload) is not dict:
        raise PayloadError("the body must be a JSON object")
    action = need_text(payload, "action", 100)
    if (resource, action) not in ACTED_ON:
        return Ignored(f"sentry {resource}.{action} is not acted on")
    need_text(payload, "installation.uuid", 100)
    data = need_mapping(payload, "data")
    if resource == "issue":
        return _issue(payload, need_mapping(data, "issue"), settings)
    path = "data.event" if resource == "event_alert" else "data.error"
    return _event(resource, action, payload, need_mapping(payload, path), path, settings)


def _mapped(settings: Settings, org: str | None, project: str) -> str | Ignored:
    repo = sentry_project_repo(settings.sentry_project_repos, org, project)
    if repo is None:
        name = f"{org}/{project}" if org else project
        return Ignored(
            f"no repository mapped for Sentry project {name}: add {name}=owner/repo "
            "to SENTRY_PROJECT_REPOS"
        )
    return repo


def _issue(payload: Mapping[str, Any], issue: Mapping[str, Any], settings: Settings) -> Route:
    issue_id = need_text(payload, "data.issue.id", 64)
    project = need_text(payload, "data.issue.project.slug", 200)
    org = None
    for key in ("url", "web_url", "permalink", "project_url"):
        match = _ORG_IN_URL.search(text(issue, key, 2000) or "")
        if match:
            org = match.group(1)
            break
    repo = _mapped(settings, org, project)
    if isinstance(repo, Ignored):
        return repo
    incident = _read("issue", payload, settings) or Incident(
        source="sentry", title=text(issue, "title", 500) or f"Sentry issue {issue_id}"
    )
    incident = incident.with_changes(
        repo=repo,
        external_id=issue_id,
        extra={**incident.extra, "sentry_org": org, "sentry_project": project, "needs_event": True},
    )
    return NewJob(
        kind="incident",
        source="sentry",
        repo=repo,
        fingerprint=group_fingerprint("sentry", repo, issue_id),
        delivery_key=f"sentry:issue:created:{issue_id}",
        incident=incident,
    )


def _event(
    resource: str,
    action: str,
    payload: Mapping[str, Any],
    event: Mapping[str, Any],
    path: str,
    settings: Settings,
) -> Route:
    event_id = need_text(payload, f"{path}.event_id", 64)
    issue_id = need_text(payload, f"{path}.issue_id", 64)
    match = _PROJECT_IN_URL.search(text(event, "url", 2000) or "")
    if match is None:
        raise PayloadError(f"missing or invalid field: {path}.url (/projects/<org>/<project>/)")
    org, project = match.group(1), match.group(2)
    repo = _mapped(settings, org, project)
    if isinstance(repo, Ignored):
        return repo
    extra = {"sentry_org": org, "sentry_project": project, "event_id": event_id}

    def build() -> Incident:
        incident = _read(resource, payload, settings) or Incident(
            source="sentry", title=text(event, "title", 500) or f"Sentry issue {issue_id}"
        )
        incident = incident.with_changes(
            repo=repo, external_id=issue_id, extra={**incident.extra, **extra}
        )
        if not incident.frames:
            incident = incident.with_changes(extra={**incident.extra, "needs_event": True})
        return incident

    return NewJob(
        kind="incident",
        source="sentry",
        repo=repo,
        fingerprint=group_fingerprint("sentry", repo, issue_id),
        delivery_key=f"sentry:{resource}:{action}:{event_id}",
        build=build,
    )


def _read(resource: str, payload: Mapping[str, Any], settings: Settings) -> Incident | None:
    """The incident bot.readers reads from the webhook (at most MAX_FRAMES innermost frames),
    or None when it cannot: the job then starts from the title and the worker fetches the
    latest event from the API."""
    try:
        incident = from_sentry_webhook(
            resource, payload, project_repos=settings.sentry_project_repos
        )
    except IncidentFormatError:
        return None
    if len(incident.frames) > MAX_FRAMES:
        incident = incident.with_changes(frames=incident.frames[-MAX_FRAMES:])
    return incident
