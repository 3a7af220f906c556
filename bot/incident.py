"""The one normalized record every signal becomes, and its stable fingerprint.

Sentry events, PagerDuty incidents, GitHub CI failures and issues, and plain stack traces all
become an `Incident`. Readers live in `bot.readers`; this module holds only the record and
the name of the bot's branch for its problem.
May import: nothing from bot.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

# How many in-app frames (innermost first) define "the same problem".
FINGERPRINT_FRAMES = 3
SHORT_FINGERPRINT_LEN = 12
# Every branch the bot pushes starts with this; webhooks on other branches are not the bot's.
BRANCH_PREFIX = "selfheal/"


@dataclass(frozen=True)
class Frame:
    """One stack frame. `file` is as the runtime printed it; `line` is 1-based."""

    file: str
    line: int | None = None
    function: str | None = None
    in_app: bool = True
    context: tuple[str, ...] = ()  # source lines around `line`, when the signal carried them
    module: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["context"] = list(self.context)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frame:
        return cls(
            file=str(data.get("file") or ""),
            line=int(data["line"]) if data.get("line") is not None else None,
            function=data.get("function"),
            in_app=bool(data.get("in_app", True)),
            context=tuple(str(x) for x in data.get("context") or ()),
            module=data.get("module"),
        )


@dataclass(frozen=True)
class Incident:
    """A problem to heal, whatever signal reported it.

    `frames` are ordered outermost first, innermost (where the error was raised) last, as
    Python prints them. `ref` is a commit SHA or a ref name; None means the default branch.
    """

    source: str  # sentry | pagerduty | github | traceback | nodejs
    title: str
    error_type: str | None = None
    error_message: str | None = None
    frames: tuple[Frame, ...] = ()
    repo: str | None = None  # owner/name on GitHub; None for a local run
    ref: str | None = None
    links: tuple[str, ...] = ()
    severity: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    event_count: int = 1
    external_id: str | None = None  # Sentry issue id, PagerDuty incident id, check run id...
    extra: dict[str, Any] = field(default_factory=dict)  # source-specific facts (small JSON)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", compute_fingerprint(self))

    @property
    def short_fingerprint(self) -> str:
        return self.fingerprint[:SHORT_FINGERPRINT_LEN]

    @property
    def in_app_frames(self) -> tuple[Frame, ...]:
        return tuple(f for f in self.frames if f.in_app)

    def with_changes(self, **changes: Any) -> Incident:
        """A copy with fields replaced; the fingerprint is recomputed unless given."""
        changes.setdefault("fingerprint", "")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["frames"] = [f.to_dict() for f in self.frames]
        data["links"] = list(self.links)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(
            source=str(data["source"]),
            title=str(data.get("title") or ""),
            error_type=data.get("error_type"),
            error_message=data.get("error_message"),
            frames=tuple(Frame.from_dict(f) for f in data.get("frames") or ()),
            repo=data.get("repo"),
            ref=data.get("ref"),
            links=tuple(data.get("links") or ()),
            severity=data.get("severity"),
            first_seen=data.get("first_seen"),
            last_seen=data.get("last_seen"),
            event_count=int(data.get("event_count") or 1),
            external_id=data.get("external_id"),
            extra=dict(data.get("extra") or {}),
            fingerprint=str(data.get("fingerprint") or ""),
        )


def _normalize_path(path: str) -> str:
    """Drop machine-specific prefixes so the same file hashes the same on every host.

    Only the last two path components count: checkouts live under different roots on
    different hosts (/srv/app, /home/ci/work, C:\\build), but `pkg/module.py` does not move.
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p and p != "."]
    return "/".join(parts[-2:])


def compute_fingerprint(incident: Incident) -> str:
    """A stable id for "the same problem": repo, error type and the innermost in-app frames.

    Sentry incidents use Sentry's own grouping (the issue id) when they carry it.
    The message is left out on purpose: it often carries values (ids, amounts) that change
    from event to event. Without frames, the source's own id (or the title) stands in.
    """
    if incident.source == "sentry" and incident.external_id:
        # Sentry already groups events into issues: an issue webhook (no frames) and the
        # events of that issue must land on the same fingerprint, branch and PR.
        key = f"{incident.repo or ''}\nsentry-issue:{incident.external_id}"
        return hashlib.sha256(key.encode()).hexdigest()
    frames = incident.in_app_frames or incident.frames
    parts = [incident.repo or "", incident.error_type or ""]
    if frames:
        for frame in frames[-FINGERPRINT_FRAMES:]:
            parts.append(f"{_normalize_path(frame.file)}:{frame.function or ''}")
    else:
        parts.append(f"{incident.source}:{incident.external_id or incident.title}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def branch_name(incident: Incident) -> str:
    """The problem's branch: one per fingerprint, shared by every retry of the same problem."""
    return f"{BRANCH_PREFIX}{incident.short_fingerprint}"
