"""Retry-After parsing: every form servers send, and garbage ignored."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from bot.agent.providers import parse_spec
from bot.agent.providers.retry import parse_retry_after
from bot.errors import UsageError


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    in_a_minute = parse_retry_after({"Retry-After": formatdate(time.time() + 60, usegmt=True)})
    assert in_a_minute is not None and 55 < in_a_minute <= 60
    assert parse_retry_after({"Retry-After": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0
    assert parse_retry_after({}) is None


def test_a_spec_with_credentials_in_its_url_is_not_echoed() -> None:
    with pytest.raises(UsageError) as caught:
        parse_spec("ollama:llama3@http://admin:hunter2hunter2@gpu:11434/v1")
    assert "hunter2hunter2" not in str(caught.value)
