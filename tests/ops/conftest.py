"""Fixtures for the operator pages and tools: fake vendors, job artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.fake_vendors import Vendors, fake_vendors
from tests.ops.jobdata import make_jobs


@pytest.fixture(scope="session")
def vendors() -> Iterator[Vendors]:
    with fake_vendors() as running:
        yield running


@pytest.fixture
def jobs(tmp_path: Path) -> list[dict[str, Any]]:
    return make_jobs(tmp_path / "artifacts")
