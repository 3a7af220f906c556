"""Back-links after a PR opens or merges: a note on the PagerDuty incident, a comment on the
Sentry issue. Each runs only when its token is configured and the incident came from that
source. One attempt each, never retried (a retried note would be posted twice) and never
fatal: a failure becomes a note in the delivery result and a log line.
May import: bot.settings, bot.incident.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import structlog

from bot.incident import Incident
from bot.settings import Settings

log = structlog.get_logger(__name__)
TIMEOUT = httpx.Timeout(10.0)


def backlink_text(pr_url: str, merged: bool) -> str:
    if merged:
        return f"Selfheal merged a validated fix: {pr_url}"
    return f"Selfheal opened a pull request with a validated fix: {pr_url}"


def post_pagerduty_note(
    settings: Settings, incident_id: str, text: str, client: httpx.Client
) -> str:
    """POST /incidents/{id}/notes with the required `From` header; returns the note id."""
    assert settings.pagerduty_api_token is not None
    resp = client.post(
        f"{settings.pagerduty_api_url.rstrip('/')}/incidents/{incident_id}/notes",
        headers={
            "Authorization": f"Token token={settings.pagerduty_api_token.get_secret_value()}",
            "Accept": "application/vnd.pagerduty+json;version=2",
            "From": settings.pagerduty_from_email or "",
        },
        json={"note": {"content": text}},
    )
    resp.raise_for_status()
    return str(resp.json().get("note", {}).get("id", ""))


def post_sentry_comment(settings: Settings, issue_id: str, text: str, client: httpx.Client) -> str:
    """POST /api/0/issues/{id}/comments/ ; returns the comment id."""
    assert settings.sentry_auth_token is not None
    resp = client.post(
        f"{settings.sentry_api_url.rstrip('/')}/issues/{issue_id}/comments/",
        headers={"Authorization": f"Bearer {settings.sentry_auth_token.get_secret_value()}"},
        json={"text": text},
    )
    resp.raise_for_status()
    return str(resp.json().get("id", ""))


def post_backlinks(
    settings: Settings,
    incident: Incident,
    pr_url: str,
    merged: bool,
    client: httpx.Client | None = None,
) -> list[str]:
    """Post the back-links that apply; returns one note per link posted or failed."""
    text = backlink_text(pr_url, merged)
    notes: list[str] = []
    target = incident.external_id
    if not target or not target.replace("-", "").isalnum():
        return notes
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT)
    try:
        if incident.source == "pagerduty" and settings.pagerduty_api_token:
            if not settings.pagerduty_from_email:
                notes.append("PagerDuty note skipped: PAGERDUTY_FROM_EMAIL is not set")
            else:
                notes.append(
                    _attempt("PagerDuty note", post_pagerduty_note, settings, target, text, http)
                )
        if incident.source == "sentry" and settings.sentry_auth_token:
            notes.append(
                _attempt("Sentry comment", post_sentry_comment, settings, target, text, http)
            )
    finally:
        if own:
            http.close()
    return notes


def _attempt(
    what: str,
    post: Callable[[Settings, str, str, httpx.Client], str],
    settings: Settings,
    target: str,
    text: str,
    http: httpx.Client,
) -> str:
    try:
        post(settings, target, text, http)
    except (httpx.HTTPError, ValueError) as exc:
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        log.warning("backlink_failed", what=what, target=target, status=status)
        return f"{what} on {target} failed ({status or type(exc).__name__})"
    return f"{what} posted on {target}"
