"""Recognise what an incident file holds (by content, never by its name) and read it.

JSON objects are matched by shape: a wrapper `{"headers", "body"}` is unwrapped first (the
`Sentry-Hook-Resource` header, when present, names the Sentry resource); then a PagerDuty V3
webhook (`event.event_type`), a PagerDuty alerts response (`alerts`), a Sentry webhook
(`action` + `data`), a Sentry issue (`shortId` + `metadata`) or a Sentry event (`entries`,
`exception`, `eventID`/`event_id`); any other JSON object, or a JSON-lines log, is searched
for a string holding a traceback. Text is searched for a Python traceback, then a Node.js
stack. May import: bot.errors, bot.incident, bot.readers.*.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.errors import IncidentFormatError
from bot.incident import Incident
from bot.readers.common import ACCEPTED_FORMATS, MAX_FILE_BYTES, iter_strings, one_line
from bot.readers.node_stack import contains_node_stack, from_node_stack
from bot.readers.pagerduty import from_pagerduty_alerts, from_pagerduty_webhook
from bot.readers.python_traceback import contains_python_traceback, from_python_traceback
from bot.readers.sentry import from_sentry_event, from_sentry_issue, from_sentry_webhook

_TEXT_CONTROL_LIMIT = 0.05  # share of control characters above which input is binary
MAX_JSON_LINES = 100_000  # records of a JSON-lines log looked at


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name.lower() and isinstance(value, str):
            return value
    return None


def _decode(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise IncidentFormatError(
            f"incident is {len(data)} bytes, over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM (PowerShell's `>`)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IncidentFormatError(
                f"incident starts with a UTF-16 mark but is not UTF-16 text; {ACCEPTED_FORMATS}"
            ) from exc
    if b"\x00" in data:
        raise IncidentFormatError(
            f"incident is binary data (NUL bytes), not text; {ACCEPTED_FORMATS}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IncidentFormatError(
            f"incident is not UTF-8 text (bad byte at offset {exc.start}); {ACCEPTED_FORMATS}"
        ) from exc
    return text


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\x1b\x0c")
    return controls > len(sample) * _TEXT_CONTROL_LIMIT


def _stack_in_json(values: list[Any]) -> Incident | None:
    """The last traceback or stack held in a string of JSON log records (structlog, pino)."""
    found: tuple[str, str] | None = None
    for value in values:
        for text in iter_strings(value):
            if contains_python_traceback(text):
                found = ("python", text)
            elif "    at " in text and contains_node_stack(text):
                found = ("nodejs", text)
    if found is None:
        return None
    kind, text = found
    return from_python_traceback(text) if kind == "python" else from_node_stack(text)


def _json_lines(text: str) -> list[Any] | None:
    """Records of a JSON-lines log, or None when the text is not one."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not all(line.lstrip().startswith("{") for line in lines[:3]):
        return None
    records: list[Any] = []
    for line in lines[:MAX_JSON_LINES]:
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return records or None


def _from_json(
    value: Any, project_repos: Mapping[str, str] | None, service_repos: Mapping[str, str] | None
) -> Incident:
    if not isinstance(value, Mapping):
        raise IncidentFormatError(
            f"incident JSON is a {type(value).__name__}, not an object; {ACCEPTED_FORMATS}"
        )
    resource: str | None = None
    if "body" in value and ("headers" in value or len(value) == 1):
        resource = _header(value.get("headers"), "Sentry-Hook-Resource")
        body = value.get("body")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise IncidentFormatError(f"body: not valid JSON ({one_line(str(exc))})") from exc
        if not isinstance(body, Mapping):
            raise IncidentFormatError("body: missing or not a JSON object")
        value = body
    event = value.get("event")
    if isinstance(event, Mapping) and "event_type" in event:
        return from_pagerduty_webhook(value, service_repos=service_repos)
    if isinstance(value.get("alerts"), list):
        return from_pagerduty_alerts(value, service_repos=service_repos)
    if "action" in value and isinstance(value.get("data"), Mapping):
        return from_sentry_webhook(resource, value, project_repos=project_repos)
    if isinstance(event, Mapping) and ("exception" in event or "event_id" in event):
        # Sentry's legacy per-project WebHooks plugin: the event plus the project slug.
        slug = value.get("project_slug") or value.get("project")
        repos = project_repos
        if project_repos and isinstance(slug, str) and slug in project_repos:
            repos = {**project_repos, str(event.get("project")): project_repos[slug]}
        return from_sentry_event(event, project_repos=repos, path="event")
    if "shortId" in value and isinstance(value.get("metadata"), Mapping):
        return from_sentry_issue(value, project_repos=project_repos, path="issue")
    if (
        isinstance(value.get("entries"), list)
        or isinstance(value.get("exception"), Mapping)
        or (
            ("eventID" in value or "event_id" in value)
            and ("title" in value or "metadata" in value)
        )
    ):
        return from_sentry_event(value, project_repos=project_repos)
    logged = _stack_in_json([value])
    if logged is not None:
        return logged
    keys = ", ".join(sorted(str(k) for k in list(value)[:8]))
    raise IncidentFormatError(
        f"incident JSON matches no known shape (top-level keys: {one_line(keys, 120)}); "
        f"{ACCEPTED_FORMATS}"
    )


def parse_incident(
    content: str | bytes,
    *,
    project_repos: Mapping[str, str] | None = None,
    service_repos: Mapping[str, str] | None = None,
) -> Incident:
    """Read an incident from its content, whatever accepted format it is in.

    `project_repos` maps Sentry projects (slug, `org/slug` or id) to `owner/name`
    (SENTRY_PROJECT_REPOS); `service_repos` maps PagerDuty services (id or name) likewise
    (PAGERDUTY_SERVICE_REPOS). Raises IncidentFormatError with one line saying what is wrong.
    """
    if isinstance(content, bytes | bytearray):
        text = _decode(bytes(content))
    elif isinstance(content, str):
        if len(content) > MAX_FILE_BYTES:
            raise IncidentFormatError(
                f"incident is over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit"
            )
        text = content.lstrip("\ufeff")
        if "\x00" in text:
            raise IncidentFormatError(
                f"incident is binary data (NUL bytes), not text; {ACCEPTED_FORMATS}"
            )
    else:
        raise IncidentFormatError(f"incident must be text or bytes, not {type(content).__name__}")
    stripped = text.strip()
    if not stripped:
        raise IncidentFormatError(f"incident is empty; {ACCEPTED_FORMATS}")
    if _looks_binary(stripped):
        raise IncidentFormatError(f"incident is binary data, not text; {ACCEPTED_FORMATS}")

    json_error: str | None = None
    if stripped[0] in "{[":
        try:
            value = json.loads(stripped)
        except RecursionError as exc:
            raise IncidentFormatError("incident JSON is nested too deeply to read") from exc
        except ValueError as exc:
            json_error = one_line(str(exc), 120)
        else:
            return _from_json(value, project_repos, service_repos)

    if json_error is not None:
        records = _json_lines(stripped)
        logged = _stack_in_json(records) if records else None
        if logged is not None:
            return logged
    if contains_python_traceback(stripped):
        return from_python_traceback(stripped)
    if contains_node_stack(stripped):
        return from_node_stack(stripped)
    if json_error is not None:
        raise IncidentFormatError(
            f"incident looks like JSON but is invalid ({json_error}); {ACCEPTED_FORMATS}"
        )
    raise IncidentFormatError(
        f"incident text holds no Python traceback or Node.js stack trace; {ACCEPTED_FORMATS}"
    )


def read_incident(
    path: Path,
    *,
    project_repos: Mapping[str, str] | None = None,
    service_repos: Mapping[str, str] | None = None,
) -> Incident:
    """Read the incident file at `path` (see `parse_incident`); errors name the file."""
    shown = one_line(str(path), 300)
    try:
        if not path.is_file():
            state = "does not exist" if not path.exists() else "is not a regular file"
            raise IncidentFormatError(f"{shown}: {state}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise IncidentFormatError(
                f"{shown}: {size} bytes, over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit "
                "for incident files"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise IncidentFormatError(f"{shown}: cannot read ({exc.strerror or exc})") from exc
    try:
        return parse_incident(data, project_repos=project_repos, service_repos=service_repos)
    except IncidentFormatError as exc:
        raise IncidentFormatError(f"{shown}: {exc}") from exc
