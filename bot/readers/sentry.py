"""Read Sentry events and Sentry integration webhooks into `Incident`s.

Two event shapes exist: the REST API's (`GET .../events/{id}/`: camelCase keys, frames under
`entries[type=exception].data.values[].stacktrace.frames[]` with `lineNo`, `inApp` and
`context: [[lineno, code], ...]`) and the raw event the webhooks carry (snake_case keys, frames
under `exception.values[].stacktrace.frames[]` with `lineno`, `in_app`, `context_line`,
`pre_context`, `post_context`). `from_sentry_event` reads both. Webhook resources with an error
are `issue` (no frames: the Incident asks for the latest event to be fetched), `event_alert`
and `error`. May import: bot.errors, bot.incident, bot.readers.common.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.errors import IncidentFormatError
from bot.incident import Frame, Incident
from bot.readers.common import (
    MAX_CONTEXT_LINES,
    as_int,
    cap_frames,
    clean,
    clean_message,
    get,
    make_frame,
    release_ref,
    repo_for,
    require_mapping,
    require_text,
    small_extra,
)

SENTRY_RESOURCES = ("issue", "event_alert", "error")  # webhook resources that carry an error
MAX_CHAIN = 20  # chained exception values looked at
_PROJECT_URL = re.compile(r"/projects/(?P<org>[^/]+)/(?P<project>[^/]+)/")
_ORG_URL = re.compile(r"/organizations/(?P<org>[^/]+)/")


def sentry_project_repo(
    mapping: Mapping[str, str] | None,
    org: str | None,
    slug: str | None,
    project_id: str | None = None,
) -> str | None:
    """The repository `SENTRY_PROJECT_REPOS` maps a Sentry project to: the key `org/slug`
    first, then a bare `slug`, then the numeric project id, then (org unknown) the one
    `*/slug` key if exactly one exists. The one lookup used by the CLI and the webhooks."""
    if not mapping:
        return None
    # `org/slug` looked up directly: every webhook of a storm asks for it.
    full = mapping.get(f"{org}/{slug}") if org and slug else None
    found = full or repo_for(mapping, slug, project_id)
    if found or org is not None or not slug:
        return found
    matches = [v for k, v in mapping.items() if k.rsplit("/", 1)[-1] == slug]
    return matches[0] if len(matches) == 1 else None


def _tags(event: Mapping[str, Any]) -> dict[str, str]:
    """Tags as a dict from either `[[key, value], ...]` (webhook) or `[{key, value}]` (API)."""
    tags: dict[str, str] = {}
    raw = event.get("tags")
    if isinstance(raw, Mapping):
        raw = list(raw.items())
    if not isinstance(raw, list):
        return tags
    for item in raw[:500]:
        if isinstance(item, Mapping):
            key, value = item.get("key"), item.get("value")
        elif isinstance(item, list) and len(item) == 2:
            key, value = item
        else:
            continue
        if isinstance(key, str) and isinstance(value, str | int | float):
            tags[key] = str(value)
    return tags


def _exception_values(event: Mapping[str, Any]) -> list[Any]:
    """The exception values of either event shape (chained: the raised one is last)."""
    values = get(event, "exception", "values")
    if isinstance(values, list):
        return values
    entries = event.get("entries")
    if isinstance(entries, list):
        for entry in entries[:100]:
            if get(entry, "type") == "exception":
                found = get(entry, "data", "values")
                if isinstance(found, list):
                    return found
    return []


def _fallback_stacktrace(event: Mapping[str, Any]) -> Any:
    """A stack trace outside `exception` (events captured with attach_stacktrace)."""
    stacktrace = event.get("stacktrace")
    if isinstance(stacktrace, Mapping):
        return stacktrace
    entries = event.get("entries")
    if isinstance(entries, list):
        for entry in entries[:100]:
            if get(entry, "type") == "stacktrace":
                return get(entry, "data")
    return None


def _frame_context(raw: Mapping[str, Any]) -> list[Any]:
    """Source lines around the frame from either shape, at most MAX_CONTEXT_LINES."""
    context = raw.get("context")
    if isinstance(context, list):  # API: [[lineno, code], ...]
        lines = [item[1] for item in context[:50] if isinstance(item, list) and len(item) == 2]
        return lines[:MAX_CONTEXT_LINES]
    pre = raw.get("pre_context")
    post = raw.get("post_context")
    line = raw.get("context_line")
    if line is None and not pre and not post:
        return []
    half = MAX_CONTEXT_LINES // 2
    before = pre[-half:] if isinstance(pre, list) else []
    after = post[:half] if isinstance(post, list) else []
    return [*before, line if line is not None else "", *after]


def _frames(stacktrace: Any) -> tuple[list[Frame], int]:
    raw_frames, omitted = cap_frames(get(stacktrace, "frames"))
    frames: list[Frame] = []
    for raw in raw_frames:
        if not isinstance(raw, Mapping):
            continue
        in_app = raw.get("in_app", raw.get("inApp"))
        made = make_frame(
            raw.get("filename") or raw.get("abs_path") or raw.get("absPath") or raw.get("module"),
            raw.get("lineno", raw.get("lineNo")),
            raw.get("function"),
            in_app=in_app,
            context=_frame_context(raw),
            module=raw.get("module"),
        )
        if made is not None:
            frames.append(made)
    return frames, omitted


def _release(event: Mapping[str, Any], tags: Mapping[str, str]) -> str | None:
    release = event.get("release")
    if isinstance(release, Mapping):  # API: the release object
        release = release.get("version") or release.get("shortVersion")
    return clean(release, 200) or clean(tags.get("release"), 200)


def _title(error_type: str | None, message: str | None, *fallbacks: Any) -> str:
    for candidate in fallbacks:
        text = clean(candidate)
        if text:
            return text
    first_line = message.splitlines()[0] if message else None
    if error_type and first_line:
        return clean(f"{error_type}: {first_line}") or error_type
    return error_type or clean(first_line) or "Sentry event"


def from_sentry_event(
    event: Mapping[str, Any],
    *,
    project_repos: Mapping[str, str] | None = None,
    path: str = "",
) -> Incident:
    """A Sentry event (REST API response or the webhook's raw event) as an Incident.

    `path` is the JSON path of `event` inside a larger payload, used in error messages.
    `project_repos` maps a project slug, `org/slug` or numeric project id to `owner/name`.
    """
    where = path or "event"
    event = require_mapping(event, where, "Sentry event")
    tags = _tags(event)
    # The raised exception is last; a hostile chain is cut to its newest links.
    values = [v for v in _exception_values(event)[-MAX_CHAIN:] if isinstance(v, Mapping)]
    raised = values[-1] if values else {}
    stacktrace = None
    for value in reversed(values):  # the raised exception, or the nearest one with frames
        if isinstance(get(value, "stacktrace", "frames"), list):
            stacktrace = value.get("stacktrace")
            break
    if stacktrace is None:
        stacktrace = _fallback_stacktrace(event)
    frames, omitted = _frames(stacktrace)

    metadata = event.get("metadata") if isinstance(event.get("metadata"), Mapping) else {}
    error_type = clean(raised.get("type")) or clean(get(metadata, "type"))
    message = (
        clean_message(raised.get("value"))
        or clean_message(get(metadata, "value"))
        or clean_message(event.get("message"))
        or clean_message(get(event, "logentry", "formatted"))
    )
    title_field = event.get("title")
    if not (error_type or message or clean(title_field) or frames):
        raise IncidentFormatError(
            f"Sentry event: {where}.exception.values (or entries[type=exception]) is missing "
            "and there is no title or message"
        )

    url = clean(event.get("url"), 2000)
    web_url = clean(event.get("web_url"), 2000)
    project_match = _PROJECT_URL.search(url or "")
    org_match = _ORG_URL.search(web_url or "")
    org = (
        (project_match["org"] if project_match else None)
        or (org_match["org"] if org_match else None)
        or clean(get(event, "contexts", "organization", "slug"))
    )
    project_slug = project_match["project"] if project_match else None
    project_id = clean(event.get("projectID") or event.get("project"))
    release = _release(event, tags)
    ref = release_ref(release)
    issue_id = clean(event.get("groupID") or event.get("issue_id") or event.get("group_id"))
    when = clean(event.get("dateCreated") or event.get("datetime"))
    links = tuple(link for link in (web_url, clean(event.get("permalink"), 2000)) if link)
    repo = sentry_project_repo(project_repos, org, project_slug, project_id)
    return Incident(
        source="sentry",
        title=_title(error_type, message, title_field),
        error_type=error_type,
        error_message=message,
        frames=tuple(frames),
        repo=repo,
        ref=ref,
        links=links,
        severity=clean(event.get("level")) or clean(tags.get("level")),
        last_seen=when,
        event_count=1,
        external_id=issue_id,
        extra=small_extra(
            event_id=clean(event.get("eventID") or event.get("event_id") or event.get("id")),
            issue_id=issue_id,
            organization=org,
            project=project_slug,
            project_id=project_id,
            platform=clean(event.get("platform")),
            culprit=clean(event.get("culprit")),
            environment=clean(event.get("environment")) or clean(tags.get("environment")),
            release=release,
            ref_hint=release if release and ref is None else None,
            handled=get(raised, "mechanism", "handled"),
            chained_exceptions=[
                f"{get(v, 'type')}: {get(v, 'value')}" for v in values[:-1] if get(v, "type")
            ]
            or None,
            frames_omitted=omitted or None,
            api_url=url,
        ),
    )


def from_sentry_issue(
    issue: Mapping[str, Any],
    *,
    project_repos: Mapping[str, str] | None = None,
    path: str = "issue",
) -> Incident:
    """A Sentry issue (group) as an Incident without frames; the latest event is to be fetched."""
    issue = require_mapping(issue, path, "Sentry issue")
    issue_id = require_text(issue.get("id"), f"{path}.id", "Sentry issue")
    metadata = issue.get("metadata") if isinstance(issue.get("metadata"), Mapping) else {}
    error_type = clean(get(metadata, "type"))
    message = clean_message(get(metadata, "value"))
    project = issue.get("project") if isinstance(issue.get("project"), Mapping) else {}
    project_slug = clean(get(project, "slug"))
    project_id = clean(get(project, "id"))
    web_url = clean(issue.get("web_url"), 2000)
    permalink = clean(issue.get("permalink"), 2000)
    org_match = _ORG_URL.search(web_url or permalink or "")
    org = org_match["org"] if org_match else None
    repo = sentry_project_repo(project_repos, org, project_slug, project_id)
    links = tuple(dict.fromkeys(link for link in (web_url, permalink) if link))
    return Incident(
        source="sentry",
        title=_title(error_type, message, issue.get("title")),
        error_type=error_type,
        error_message=message,
        repo=repo,
        links=links,
        severity=clean(issue.get("level")),
        first_seen=clean(issue.get("firstSeen")),
        last_seen=clean(issue.get("lastSeen")),
        event_count=max(1, as_int(issue.get("count"), 1) or 1),
        external_id=issue_id,
        extra=small_extra(
            needs_event_fetch=True,
            issue_id=issue_id,
            short_id=clean(issue.get("shortId")),
            organization=org,
            project=project_slug,
            project_id=project_id,
            platform=clean(issue.get("platform")),
            culprit=clean(issue.get("culprit")),
            status=clean(issue.get("status")),
            filename=clean(get(metadata, "filename")),
            function=clean(get(metadata, "function")),
            api_url=clean(issue.get("url"), 2000),
        ),
    )


def sentry_webhook_resource(payload: Mapping[str, Any]) -> str | None:
    """The resource a webhook body is about, from the keys under `data`."""
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None
    for key, resource in (
        ("issue", "issue"),
        ("event", "event_alert"),
        ("error", "error"),
        ("metric_alert", "metric_alert"),
        ("comment", "comment"),
        ("installation", "installation"),
    ):
        if key in data:
            return resource
    if "run_id" in data or "group_id" in data:
        return "seer"
    return None


def from_sentry_webhook(
    resource: str | None,
    payload: Mapping[str, Any],
    *,
    project_repos: Mapping[str, str] | None = None,
) -> Incident:
    """A Sentry integration webhook body (`{"action", "data", ...}`) as an Incident.

    `resource` is the `Sentry-Hook-Resource` header; None reads it from the keys of `data`.
    Resources without an error (comment, metric_alert, installation, seer) raise
    IncidentFormatError, as does a missing required field (the message names its JSON path).
    """
    payload = require_mapping(payload, "body", "Sentry webhook")
    data = require_mapping(payload.get("data"), "data", "Sentry webhook")
    resource = clean(resource, 50) or sentry_webhook_resource(payload)
    action = clean(payload.get("action"), 50)
    if resource == "issue":
        issue = require_mapping(data.get("issue"), "data.issue", "Sentry webhook")
        incident = from_sentry_issue(issue, project_repos=project_repos, path="data.issue")
    elif resource == "event_alert":
        event = require_mapping(data.get("event"), "data.event", "Sentry webhook")
        incident = from_sentry_event(event, project_repos=project_repos, path="data.event")
        rule = clean(data.get("triggered_rule"))
        if rule:
            incident = incident.with_changes(extra={**incident.extra, "triggered_rule": rule})
    elif resource == "error":
        event = require_mapping(data.get("error"), "data.error", "Sentry webhook")
        incident = from_sentry_event(event, project_repos=project_repos, path="data.error")
    else:
        raise IncidentFormatError(
            f"Sentry webhook: resource {resource or 'unknown'!r} carries no error to fix; "
            f"accepted resources: {', '.join(SENTRY_RESOURCES)}"
        )
    extra = {**incident.extra, "resource": resource}
    if action:
        extra["action"] = action
    return incident.with_changes(extra=extra)
