"""The job a webhook becomes: what the worker is asked to do, and the record kept in Redis.

A `JobRequest` is small JSON (ids, repo, fingerprint, the incident or a GitHub-event
description); the queue message carries only the job id and the request lives in the job
record. `JobOutcome` is what the handler (normally `bot.pipeline.run_job`) returns.
May import: bot.incident.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from bot.incident import Incident

JobState = Literal["queued", "running", "done", "failed", "quarantined"]
JOB_STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "quarantined")
ACTIVE_STATES: tuple[str, ...] = ("queued", "running")
# incident: Sentry/PagerDuty/CI failure; issue: labeled issue; command: /selfheal comment;
# review: review comment on the bot's own pull request; checks: green checks on a bot branch
# (finishes a merge that waited for them).
JobKind = Literal["incident", "issue", "command", "review", "checks"]

# Upper bounds on what a job request may carry, so messages and records stay small.
MAX_TEXT = 65_536
MAX_FRAMES = 64


@dataclass(frozen=True)
class GitHubEvent:
    """The facts of a GitHub event that started a job (read from the payload dict)."""

    event: str
    action: str | None
    number: int | None = None  # issue or pull request number
    comment_id: int | None = None
    comment_body: str | None = None
    sender: str | None = None
    title: str | None = None
    url: str | None = None
    head_sha: str | None = None
    head_branch: str | None = None
    run_id: int | None = None  # check run or workflow run id
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GitHubEvent:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JobRequest:
    """What one job is asked to do. Exactly one of `incident` and `github` is set."""

    job_id: str
    kind: str  # JobKind
    source: str  # github | sentry | pagerduty
    repo: str  # owner/name
    fingerprint: str
    installation_id: str | None = None
    incident: Incident | None = None
    github: GitHubEvent | None = None
    delivery_id: str | None = None  # the delivery that created the job
    created_at: float = 0.0
    attempt: int = 0  # set by the worker: 1 for the first run

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "source": self.source,
            "repo": self.repo,
            "fingerprint": self.fingerprint,
            "installation_id": self.installation_id,
            "incident": incident_dict(self.incident) if self.incident else None,
            "github": self.github.to_dict() if self.github else None,
            "delivery_id": self.delivery_id,
            "created_at": self.created_at,
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        incident = data.get("incident")
        github = data.get("github")
        return cls(
            job_id=str(data["job_id"]),
            kind=str(data["kind"]),
            source=str(data["source"]),
            repo=str(data["repo"]),
            fingerprint=str(data["fingerprint"]),
            installation_id=data.get("installation_id"),
            incident=Incident.from_dict(incident) if incident else None,
            github=GitHubEvent.from_dict(github) if github else None,
            delivery_id=data.get("delivery_id"),
            created_at=float(data.get("created_at") or 0.0),
            attempt=int(data.get("attempt") or 0),
        )


def incident_dict(incident: Incident) -> dict[str, Any]:
    """`Incident.to_dict()` without its deep copies (the webhook path serializes one per event)."""
    data = {f.name: getattr(incident, f.name) for f in fields(incident)}
    data["frames"] = [
        {**{f.name: getattr(frame, f.name) for f in fields(frame)}, "context": list(frame.context)}
        for frame in incident.frames
    ]
    data["links"] = list(incident.links)
    return data


@dataclass(frozen=True)
class JobOutcome:
    """What running a job produced: `ok` False means the job failed (state `failed`)."""

    ok: bool
    summary: str = ""
    decision: str | None = None  # merge | pr | draft_pr | report, when the pipeline decided
    url: str | None = None  # the pull request, comment or report it delivered
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: Any) -> JobOutcome:
        """Accept what a handler returned: a JobOutcome, a dict with its fields, or None."""
        if isinstance(value, JobOutcome):
            return value
        if value is None:
            return cls(ok=True, summary="handler returned nothing")
        if isinstance(value, dict):
            return cls(
                ok=bool(value.get("ok", True)),
                summary=str(value.get("summary") or ""),
                decision=value.get("decision"),
                url=value.get("url"),
                details=dict(value.get("details") or {}),
            )
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return cls.coerce(to_dict())
        return cls(ok=True, summary=str(value)[:500])


@dataclass(frozen=True)
class JobRecord:
    """A job as `selfheal jobs list|show` shows it (read back from Redis)."""

    id: str
    kind: str
    source: str
    repo: str
    fingerprint: str
    state: str
    events: int
    attempts: int
    created_at: float
    updated_at: float
    installation_id: str | None = None
    outcome: dict[str, Any] | None = None
    note: str | None = None
    deliveries: tuple[str, ...] = ()
    request: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The fields `jobs list --json` prints."""
        return {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "repo": self.repo,
            "fingerprint": self.fingerprint,
            "state": self.state,
            "events": self.events,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "outcome": self.outcome,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.summary()
        data.update(
            {
                "installation_id": self.installation_id,
                "note": self.note,
                "deliveries": list(self.deliveries),
                "request": self.request,
            }
        )
        return data
