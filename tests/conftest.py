"""Fixtures shared by the whole suite. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import redis_server

# pytest and its dependencies as wheels: the suite's package index (it has no network).
WHEELS = Path(__file__).resolve().parent / "fixtures" / "wheels"
OFFLINE_UV = ("--offline", "--no-index", "--find-links", str(WHEELS))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free port, shared by the session (tests flush what they use)."""
    workdir: Path = tmp_path_factory.mktemp("redis")
    with redis_server(workdir) as url:
        yield url


@pytest.fixture
def offline_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs install Python dependencies from WHEELS only: the index options, and the
    wheelhouse added to the paths the sandbox mounts (after any set before this fixture)."""
    mounted = [p for p in os.environ.get("SELFHEAL_SANDBOX_RO_PATHS", "").split(",") if p]
    monkeypatch.setenv("SELFHEAL_UV_INDEX_ARGS", shlex.join(OFFLINE_UV))
    monkeypatch.setenv("SELFHEAL_SANDBOX_RO_PATHS", ",".join([*mounted, str(WHEELS)]))
