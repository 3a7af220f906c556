"""Fixtures for the incident readers: the vendor payloads copied into tests/fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def fixture_path() -> Callable[[str], Path]:
    def path(name: str) -> Path:
        found = FIXTURES / name
        assert found.is_file(), f"missing fixture {found}"
        return found

    return path


@pytest.fixture
def load_json(fixture_path: Callable[[str], Path]) -> Callable[[str], Any]:
    """A fresh parsed copy of a fixture (tests may change it)."""

    def load(name: str) -> Any:
        return json.loads(fixture_path(name).read_text())

    return load
