"""What a verified webhook asks for: a new job, a record, a pong, or nothing (with a reason).

`PayloadError` is a payload missing a field routing needs (answered 400, naming the field).
May import: bot.jobs, bot.incident.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.incident import Incident
from bot.jobs import GitHubEvent


class PayloadError(ValueError):
    """A signed payload lacks a field the bot needs; the message names the field."""


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Pong:
    """A vendor's test delivery (GitHub ping, PagerDuty pagey.ping)."""


@dataclass(frozen=True)
class InstallationChange:
    """GitHub installation events: which repositories the App may touch."""

    installation_id: str
    action: str
    info: dict[str, Any] | None  # None: the installation is gone
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    replace: bool = False


@dataclass(slots=True)
class NewJob:
    """An event that starts a job (or joins the one that owns its fingerprint).

    Built once per accepted webhook and never changed; plain slots rather than frozen, since
    a frozen dataclass pays an `object.__setattr__` call per field on every webhook."""

    kind: str
    source: str
    repo: str
    fingerprint: str
    delivery_key: str
    installation_id: str | None = None
    incident: Incident | None = None
    github: GitHubEvent | None = None
    # Builds the incident only when the event starts a new job (storms are mostly joins).
    build: Callable[[], Incident] | None = None

    def make_incident(self) -> Incident | None:
        if self.incident is None and self.build is not None:
            return self.build()
        return self.incident


Route = Ignored | Pong | InstallationChange | NewJob


@functools.lru_cache(maxsize=4096)
def group_fingerprint(*parts: str | int) -> str:
    """A fingerprint from a source's own grouping key (Sentry issue id, PagerDuty incident...).

    Remembered for the last few thousand keys: a storm repeats a few issues thousands of times."""
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()


def get(data: Any, path: str) -> Any:
    """`a.b.c` from nested dicts; None when any step is missing or not a dict.

    Payloads come from a JSON parser, so `dict` (not the slower `Mapping` ABC) is checked.
    """
    for key in path.split("."):
        if type(data) is not dict:
            return None
        data = data.get(key)
    return data


def need_text(data: Any, path: str, limit: int = 512) -> str:
    value = get(data, path)
    kind = type(value)
    if (kind is not str and kind is not int) or (kind is str and not value.strip()):
        raise PayloadError(f"missing or invalid field: {path}")
    return str(value)[:limit]


def need_int(data: Any, path: str) -> int:
    value = get(data, path)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit() and len(value) < 20:
            return int(value)
        raise PayloadError(f"missing or invalid field: {path}")
    return value


def need_mapping(data: Any, path: str) -> Mapping[str, Any]:
    value = get(data, path)
    if type(value) is not dict:
        raise PayloadError(f"missing or invalid field: {path}")
    return value


def text(data: Any, path: str, limit: int = 512) -> str | None:
    value = get(data, path)
    kind = type(value)
    if kind is str:
        return str(value[:limit])
    if kind is int:
        return str(value)
    return None
