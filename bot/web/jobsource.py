"""The dashboard's view of the job store: `bot.ops.dashboard.JobSource` over Redis job records.

Maps a `JobRecord` to the plain dict the dashboard shows: decision and cost from the job's
outcome, duration once the job has ended, and the artifacts folder the run wrote (the
outcome's `details["artifacts"]`, else `SELFHEAL_ARTIFACTS_DIR/<id>`). Outcomes are read
defensively: any field may be missing or of the wrong type.
May import: bot.state, bot.jobs, bot.settings, bot.ops.dashboard (the protocol's filters).
"""

from __future__ import annotations

import math
from typing import Any

from bot.jobs import JobRecord
from bot.ops.dashboard import JobFilters
from bot.settings import Settings
from bot.state import JobStore

ENDED_STATES = ("done", "failed", "quarantined")
# With filters, how many of the newest records are scanned per job asked for.
SCAN_FACTOR = 10
MAX_SCAN = 2000


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _text(value: Any, limit: int = 4096) -> str | None:
    return value[:limit] if isinstance(value, str) and value.strip() else None


class StoreJobSource:
    """`JobSource` over `bot.state.JobStore` (synchronous; the dashboard calls it in a thread)."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def job_dict(self, record: JobRecord) -> dict[str, Any]:
        outcome = record.outcome if isinstance(record.outcome, dict) else {}
        raw_details = outcome.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        decision = _text(outcome.get("decision"), 32) or _text(details.get("decision"), 32)
        cost = _number(details.get("cost_usd"))
        if cost is None:
            cost = _number(outcome.get("cost_usd"))
        ended = record.state in ENDED_STATES
        duration = (
            max(record.updated_at - record.created_at, 0.0)
            if ended and record.created_at and record.updated_at
            else None
        )
        artifacts = _text(details.get("artifacts")) or str(
            self.settings.selfheal_artifacts_dir / record.id
        )
        return {
            "id": record.id,
            "repo": record.repo,
            "source": record.source,
            "kind": record.kind,
            "state": record.state,
            "fingerprint": record.fingerprint,
            "events": record.events,
            "attempts": record.attempts,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "decision": decision,
            "cost_usd": cost,
            "duration_s": duration,
            "artifacts_dir": artifacts,
            "url": _text(outcome.get("url"), 2000),
            "summary": _text(outcome.get("summary"), 1000),
        }

    def list_jobs(self, filters: JobFilters, limit: int) -> list[dict[str, Any]]:
        limit = max(limit, 1)
        filtered = any((filters.repo, filters.source, filters.state, filters.decision))
        scan = min(limit * SCAN_FACTOR, MAX_SCAN) if filtered else limit
        jobs = [self.job_dict(record) for record in self.store.recent(scan)]
        return [job for job in jobs if filters.matches(job)][:limit]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        if not job_id or len(job_id) > 200:
            return None
        record = self.store.get(job_id)
        return self.job_dict(record) if record is not None else None
