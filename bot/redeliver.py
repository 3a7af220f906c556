"""Redeliver the App's failed GitHub webhook deliveries (GitHub never retries by itself).

Lists `GET /app/hook/deliveries` (JWT auth) newest first back to `since`, groups attempts by
`guid` (= X-GitHub-Delivery, shared by redeliveries) and asks for one redelivery
(`POST /app/hook/deliveries/{id}/attempts`) of each group with no successful attempt.
Calls go through the App's own client (bot.github.app: JWT cache, rate-limit waits, read
retries, paced writes). May import: bot.settings, bot.errors, bot.github.app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from githubkit import GitHub

from bot.errors import SettingsError
from bot.github.app import GitHubApp
from bot.settings import Settings

_CURSOR = re.compile(r"<[^>]*[?&]cursor=([^&>]+)[^>]*>;\s*rel=\"next\"")
_DURATION = re.compile(r"^(\d+)([smhd])$")
MAX_PAGES = 50


def parse_duration(text: str) -> int:
    """`72h`, `30m`, `2d`, `90s` -> seconds; anything else raises SettingsError-like UsageError."""
    match = _DURATION.match(text.strip())
    if not match:
        raise SettingsError(f"--since: expected a duration like 72h, 30m or 2d, got {text!r}")
    value, unit = int(match.group(1)), match.group(2)
    return value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@dataclass
class RedeliveryReport:
    """What one pass found and did."""

    failed: list[dict[str, Any]] = field(default_factory=list)  # one entry per failed guid
    redelivered: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"failed": self.failed, "redelivered": self.redelivered, "errors": self.errors}


def app_client(settings: Settings) -> GitHub[Any]:
    """The App-authenticated (JWT) client; SettingsError naming what to set without an App."""
    return GitHubApp.from_settings(settings).app_client


def redeliver_failed(
    settings: Settings, since_seconds: int, dry_run: bool = False
) -> RedeliveryReport:
    since = datetime.now(UTC) - timedelta(seconds=since_seconds)
    report = RedeliveryReport()
    groups: dict[str, list[dict[str, Any]]] = {}
    with app_client(settings) as github:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {"per_page": 100}
            if cursor:
                kwargs["cursor"] = cursor
            response = github.rest.apps.list_webhook_deliveries(**kwargs)
            items = response.json()
            old = False
            for item in items if isinstance(items, list) else []:
                delivered = _when(item.get("delivered_at"))
                if delivered is not None and delivered < since:
                    old = True
                    continue
                groups.setdefault(str(item.get("guid")), []).append(item)
            match = _CURSOR.search(response.headers.get("link", ""))
            if old or not match:
                break
            cursor = match.group(1)
        for guid, attempts in groups.items():
            if any(a.get("status") == "OK" for a in attempts):
                continue
            newest = max(attempts, key=lambda a: str(a.get("delivered_at") or ""))
            report.failed.append(
                {
                    "guid": guid,
                    "id": newest.get("id"),
                    "event": newest.get("event"),
                    "action": newest.get("action"),
                    "status_code": newest.get("status_code"),
                    "delivered_at": newest.get("delivered_at"),
                    "attempts": len(attempts),
                }
            )
            if dry_run:
                continue
            try:
                github.rest.apps.redeliver_webhook_delivery(int(newest["id"]))
                report.redelivered.append(int(newest["id"]))
            except Exception as exc:
                report.errors.append(f"{newest.get('id')}: {type(exc).__name__}")
    return report


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
