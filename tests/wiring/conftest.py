"""Fixtures for the wiring between parts: a clean Redis per test and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import Settings, load_settings
from bot.state import JobStore
from tests import test_cli_fix
from tests.intake import conftest as intake

ADMIN = "wiring-admin-token-0123456789"
WEBHOOK_SECRET = "wiring-webhook-secret-abcdef"

redis_db = intake.redis_db  # the session's redis-server, emptied before each test
sample = test_cli_fix.sample  # the demo repository, incident and model script in tmp_path


@pytest.fixture
def settings(redis_db: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "REDIS_URL": redis_db,
            "SELFHEAL_ADMIN_TOKEN": ADMIN,
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SELFHEAL_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        }
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[JobStore]:
    job_store = JobStore(settings.redis_url)
    yield job_store
    job_store.client.close()
