"""The bot's own Sentry events: real sentry-sdk in a child process, a local ingest endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bot.settings import load_settings
from bot.telemetry import init_telemetry
from tests.support.sentry_ingest import sentry_ingest

ROOT = Path(__file__).resolve().parents[2]

# Realistic shapes: a stateless installation token, a fine-grained PAT, an OpenAI key.
GHS = "ghs_" + "A1b2C3d4E5" * 4 + ".eyJhbGciOiJSUzI1NiJ9.sig_part_0123456789"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
OPENAI = "sk-proj-" + "Zy9Xw8Vu7T" * 4
BEARER = "Bearer opaque.vendor.token.1234567890"
DB_URL = "postgres://admin:hunter2-db-password@db.internal:5432/app"

CHILD = textwrap.dedent(
    """
    import logging, subprocess, sys
    import sentry_sdk
    from bot.settings import load_settings
    from bot.telemetry import init_telemetry

    GHS, PAT, OPENAI, BEARER, DB_URL, DSN = sys.argv[1:7]
    settings = load_settings(environ={"SENTRY_DSN": DSN, "OPENAI_API_KEY": OPENAI,
                                      "SELFHEAL_ENVIRONMENT": "staging"})
    assert init_telemetry(settings, "worker")

    def push_fix(branch):
        installation_token = GHS
        personal = PAT
        headers = {"Authorization": BEARER}
        database = DB_URL
        url = "https://x-access-token:" + installation_token + "@127.0.0.1:9/o/r.git"
        subprocess.run(["git", "ls-remote", url], capture_output=True)
        logging.getLogger("bot.delivery").warning("push failed with %s", headers)
        raise RuntimeError("git push " + url + " failed for " + personal)

    try:
        push_fix("selfheal/fix-1")
    except RuntimeError:
        sentry_sdk.capture_exception()

    # An unhandled error in a web route, with a token in a header and in the body.
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def webhook(request):
        installation_token = GHS
        raise ValueError("bad payload")

    app = Starlette(routes=[Route("/webhooks/github", webhook, methods=["POST"])])
    TestClient(app, raise_server_exceptions=False).post(
        "/webhooks/github", headers={"Authorization": BEARER}, content=PAT.encode()
    )
    sentry_sdk.flush(10)
    print(sorted(sentry_sdk.get_client().integrations))
    """
)


def test_tokens_in_locals_and_subprocess_urls_never_reach_sentry() -> None:
    with sentry_ingest() as ingest:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("SENTRY_DSN", None)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, GHS, PAT, OPENAI, BEARER, DB_URL, ingest.dsn],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        events = ingest.events()
    assert len(events) == 2, ingest.paths
    assert "'dramatiq'" in result.stdout and "'starlette'" in result.stdout
    event, web_event = events
    everything = b"\n".join(ingest.raw).decode()
    for secret in (GHS, "A1b2C3d4E5A1b2", PAT, OPENAI, "opaque.vendor.token", "hunter2-db"):
        assert secret not in everything
    # The event still says what happened, where, in which release and environment.
    assert event["environment"] == "staging"
    assert event["release"].startswith("selfheal@")
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    push = next(f for f in frames if f["function"] == "push_fix")
    assert push["vars"]["branch"] == "'selfheal/fix-1'"
    assert "[Redacted]" in push["vars"]["installation_token"]
    assert "127.0.0.1:9/o/r.git" in push["vars"]["url"]
    crumbs = event["breadcrumbs"]["values"]
    subprocess_crumbs = [c for c in crumbs if c.get("category") == "subprocess"]
    assert subprocess_crumbs, crumbs
    assert "[Redacted]@127.0.0.1:9/o/r.git" in subprocess_crumbs[0]["message"]
    assert "push failed" in everything
    assert "git push https://[Redacted]@127.0.0.1:9/o/r.git failed for [Redacted]" in everything
    # The Starlette integration reported the route's error, without the header or body.
    assert web_event["exception"]["values"][0]["type"] == "ValueError"
    assert web_event["request"]["url"].endswith("/webhooks/github")
    assert web_event["request"].get("data") in (None, "", {}), web_event["request"]


def test_telemetry_is_off_without_a_dsn() -> None:
    assert init_telemetry(load_settings(environ={})) is False
