"""Logs: JSON in production, console in a terminal, job context on every line, no secrets."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from bot.logging import (
    bind_job_context,
    clear_job_context,
    configure_logging,
    get_logger,
    job_context,
)
from bot.redact import redact, redact_text
from bot.settings import load_settings

TOKEN = "ghs_" + "Q" * 36


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, level="INFO")
    yield out
    clear_job_context()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_every_line_of_a_job_carries_its_identity(stream: io.StringIO) -> None:
    bind_job_context(delivery_id="72d3162e-cc78-11e3", job_id="job-7", repo="acme/shop")
    get_logger("bot.pipeline").info("stage finished", stage="reproduce", input_tokens=812)
    logging.getLogger("dramatiq.worker").warning("message %s retried", "m-1")  # a library line
    clear_job_context()
    get_logger("bot.web").info("idle")
    first, second, third = lines(stream)
    for line in (first, second):
        assert (line["delivery_id"], line["job_id"], line["repo"]) == (
            "72d3162e-cc78-11e3",
            "job-7",
            "acme/shop",
        )
    assert first["input_tokens"] == 812 and first["stage"] == "reproduce"
    assert second["event"] == "message m-1 retried" and second["level"] == "warning"
    assert "job_id" not in third


def test_job_context_is_per_thread_and_restored(stream: io.StringIO) -> None:
    def other() -> None:
        with job_context(job_id="job-b", repo="acme/b"):
            get_logger().info("in b")

    with job_context(job_id="job-a", repo="acme/a"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        get_logger().info("in a")
    get_logger().info("outside")
    by_event = {line["event"]: line for line in lines(stream)}
    assert by_event["in b"]["job_id"] == "job-b"
    assert by_event["in a"]["job_id"] == "job-a"
    assert "job_id" not in by_event["outside"]


def test_secrets_never_reach_the_log(stream: io.StringIO) -> None:
    settings = load_settings(environ={"GITHUB_WEBHOOK_SECRET": "plain-words-webhook-secret"})
    configure_logging(settings, fmt="json", stream=stream)
    log = get_logger("bot.delivery")
    log.info("cloning", url=f"https://x-access-token:{TOKEN}@github.com/acme/shop.git")
    log.info("headers", headers={"Authorization": "token abc", "X-GitHub-Event": "push"})
    log.info("configured secret seen: plain-words-webhook-secret")
    try:
        raise RuntimeError(f"push failed: {TOKEN}")
    except RuntimeError:
        log.exception("push failed")
    text = stream.getvalue()
    assert TOKEN not in text and "plain-words-webhook-secret" not in text
    records = lines(stream)
    assert records[0]["url"] == "https://[Redacted]@github.com/acme/shop.git"
    assert records[1]["headers"] == {"Authorization": "[Redacted]", "X-GitHub-Event": "push"}
    assert "push failed: [Redacted]" in json.dumps(records[3]["exception"])


def test_every_configured_secret_is_redacted_by_value(stream: io.StringIO) -> None:
    # Neither value has a credential's shape: only the settings can say they are secret.
    key, dsn = "gateway-key-7f3a9c2e", "https://4d1e5b8a90c2@o17.ingest.example.io/42"
    settings = load_settings(environ={"OPENAI_COMPATIBLE_API_KEY": key, "SENTRY_DSN": dsn})
    configure_logging(settings, fmt="json", stream=stream)
    get_logger("bot.agent").info(f"calling gateway with {key}", reporting_to=dsn)
    text = stream.getvalue()
    assert key not in text and "4d1e5b8a90c2" not in text
    assert lines(stream)[0]["event"] == "calling gateway with [Redacted]"


def test_console_format_is_readable_not_json() -> None:
    out = io.StringIO()
    configure_logging(fmt="console", stream=out)
    with job_context(job_id="job-9", repo="acme/shop"):
        get_logger("bot.web").info("webhook accepted", source="github")
    text = out.getvalue()
    assert not text.lstrip().startswith("{")
    assert "webhook accepted" in text and "job_id=job-9" in text and "source=github" in text


@pytest.mark.parametrize(
    "secret",
    [
        "ghp_" + "a" * 36,
        "gho_" + "b" * 36,
        "ghs_" + "c" * 36 + ".eyJ0eXAiOiJKV1Qi.abcdEFGH_ijkl-mnop",
        "github_pat_11AAAAAAA0" + "x" * 40,
        "sk-" + "d" * 40,
        "sk-ant-api03-" + "e" * 40,
        "Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_redactor_knows_each_credential_shape(secret: str) -> None:
    kept = "Bearer [Redacted]" if secret.startswith("Bearer ") else "[Redacted]"
    assert redact_text(f"before {secret} after") == f"before {kept} after"


def test_redactor_keeps_ordinary_text_and_counts() -> None:
    text = "KeyError: 'sku' in shop/cart.py line 42; see https://github.com/acme/shop/pull/7"
    assert redact_text(text) == text
    assert redact({"input_tokens": 10, "token": None, "api_key": "x" * 10}) == {
        "input_tokens": 10,
        "token": None,
        "api_key": "[Redacted]",
    }
