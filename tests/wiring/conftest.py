"""Fixtures for the wiring between parts: a clean Redis per test and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.settings import Settings, load_settings
from bot.state import JobStore

ADMIN = "wiring-admin-token-0123456789"
WEBHOOK_SECRET = "wiring-webhook-secret-abcdef"


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """The session's redis-server, emptied before each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    yield redis_url


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
