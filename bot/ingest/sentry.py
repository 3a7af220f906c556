"""Sentry integration webhooks -> Route.

Jobs start on `issue.created`, `event_alert.triggered` and `error.created`. The repository
comes from SENTRY_PROJECT_REPOS (`org/project=owner/repo`; a bare `project` key also
matches). Grouping is by Sentry issue id, so every event of one issue joins one job. The
incident is read by bot.readers. May import: bot.ingest.routes, bot.incident, bot.jobs,
bot.settings, bot.errors, bot.readers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
from bot.settings import Settings

ACTED_ON = {("issue", "created"), ("event_alert", "triggered"), ("error", "created")}
_ORG_IN_URL = re.compile(r"/organizations/([^/]+)/")
_PROJECT_IN_URL = re.compile(r"/projects/([^/]+)/([^/]+)/")


def repo_for(mapping: Mapping[str, str], org: str | None, project: str) -> str | None:
    """`org/project` first, then a bare `project` key, then a unique `*/project` key."""
    if org and f"{org}/{project}" in mapping:
        return mapping[f"{org}/{project}"]
    if project in mapping:
        return mapping[project]
    if org is None:
        matches = [v for k, v in mapping.items() if k.rsplit("/", 1)[-1] == project]
        if len(matches) == 1:
            return matches[0]
    return None


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
    repo = repo_for(settings.sentry_project_repos, org, project)
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
