"""Job handlers for worker tests, chosen by SELFHEAL_JOB_HANDLER=tests.intake.handlers:run.

What `run` does depends on the job's repository name (set by the test through the
SENTRY_PROJECT_REPOS / PAGERDUTY_SERVICE_REPOS mappings):
    */kill*    the worker kills itself with SIGKILL (a poison job)
    */sleep-N  sleep N seconds, then succeed
    */fail     return a failed outcome
    */raise    raise an exception
    anything else: succeed at once
Every run is appended to the Redis list `test:runs`; every finished run to `test:done`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import redis

from bot.jobs import JobOutcome, JobRequest
from bot.settings import Settings


def run(request: JobRequest, settings: Settings) -> Any:
    client = redis.Redis.from_url(settings.redis_url)
    incident = request.incident
    client.rpush(
        "test:runs",
        json.dumps(
            {
                "job": request.job_id,
                "attempt": request.attempt,
                "pid": os.getpid(),
                "repo": request.repo,
                "frames": len(incident.frames) if incident else 0,
                "error_type": incident.error_type if incident else None,
                "kind": request.kind,
            }
        ),
    )
    name = request.repo.split("/", 1)[1]
    if name.startswith("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    if name.startswith("sleep-"):
        time.sleep(float(name.removeprefix("sleep-")))
    if name == "raise":
        raise RuntimeError("the handler broke")
    client.rpush("test:done", request.job_id)
    if name == "fail":
        return JobOutcome(ok=False, summary="no fix found")
    return JobOutcome(ok=True, summary="fixed", decision="pr", url="https://example.invalid/pr/1")
