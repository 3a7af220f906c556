"""Every line a job logs, in the worker and in its handler, carries the job's identity as JSON,
and no secret reaches the log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bot.jobs import JobOutcome, JobRequest
from bot.logging import configure_logging
from bot.settings import Settings
from bot.state import JobStore
from bot.worker import JobWorker
from tests.wiring.conftest import WEBHOOK_SECRET
from tests.wiring.test_dashboard_store import _admit

TOKEN = "ghs_" + "a1B2c3D4e5F6g7H8i9J0" * 2


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "selfheal"]:
        root.removeHandler(handler)


def handler(request: JobRequest, settings: Settings) -> JobOutcome:
    structlog.get_logger("selfheal.test").info(
        "handler.working", step="clone", url=f"https://x-access-token:{TOKEN}@github.com/acme/shop"
    )
    logging.getLogger("some.library").warning("retrying with secret %s", WEBHOOK_SECRET)
    return JobOutcome(ok=True, summary="done", decision="report")


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_job_lines_carry_job_id_repo_and_delivery_id_and_no_secret(
    settings: Settings, store: JobStore, log_lines: io.StringIO
) -> None:
    configure_logging(settings, fmt="json", stream=log_lines)
    request = _admit(store, "acme/shop", "KeyError in cart")
    worker = JobWorker(settings, handler=handler, store=store)
    try:
        worker.run_message(request.job_id)
    finally:
        worker.http.close()
    record = store.get(request.job_id)
    assert record is not None and record.state == "done"

    lines = _lines(log_lines)
    events = [line["event"] for line in lines]
    assert "job.start" in events and "job.end" in events and "handler.working" in events
    job_lines = [line for line in lines if line.get("job_id") == request.job_id]
    # Every line of the job (the worker's, the handler's, a library's) carries its identity.
    assert len(job_lines) == len(lines) >= 4
    for line in job_lines:
        assert line["repo"] == "acme/shop"
        assert line["delivery_id"] == request.delivery_id
    text = log_lines.getvalue()
    assert TOKEN not in text and WEBHOOK_SECRET not in text
    assert "retrying with secret" in text  # the line is kept, only the secret is gone

    # Once the job has ended, the context is gone: later lines carry no job id.
    structlog.get_logger("selfheal.test").info("after.job")
    assert "job_id" not in _lines(log_lines)[-1]


def test_uvicorn_lines_started_by_its_own_command_use_the_same_handler(
    settings: Settings, log_lines: io.StringIO
) -> None:
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    # What `uvicorn --factory bot.web:create_app` does before calling the factory.
    logging.config.dictConfig(LOGGING_CONFIG)
    configure_logging(settings, fmt="json", stream=log_lines)
    logging.getLogger("uvicorn.error").warning("Started server process with %s", WEBHOOK_SECRET)
    line = _lines(log_lines)[-1]
    assert line["logger"] == "uvicorn.error" and line["level"] == "warning"
    assert WEBHOOK_SECRET not in log_lines.getvalue()
