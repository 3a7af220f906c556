"""Constant-time HMAC-SHA256 checks of webhook signatures over the exact raw body.

May import: nothing from bot.
"""

from __future__ import annotations

import hashlib
import hmac

# Longest signature header considered (PagerDuty sends one v1= entry per active secret).
MAX_HEADER = 4096


def _digest(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def github_valid(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>`; the legacy sha1 header is never accepted."""
    if not secret or not header or len(header) > MAX_HEADER:
        return False
    expected = "sha256=" + _digest(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def sentry_valid(secret: str, body: bytes, header: str | None) -> bool:
    """`Sentry-Hook-Signature: <hex>` keyed with the integration's Client Secret."""
    if not secret or not header or len(header) > MAX_HEADER:
        return False
    return hmac.compare_digest(
        _digest(secret, body).encode(), header.strip().encode("utf-8", "replace")
    )


def pagerduty_valid(secret: str, body: bytes, header: str | None) -> bool:
    """`X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`: any entry matching is enough."""
    if not secret or not header or len(header) > MAX_HEADER:
        return False
    expected = _digest(secret, body).encode()
    ok = False
    for entry in header.split(","):
        entry = entry.strip()
        if entry.startswith("v1="):
            # No early exit: every entry is compared, in constant time each.
            ok |= hmac.compare_digest(expected, entry[3:].encode("utf-8", "replace"))
    return ok


def github_signature(secret: str, body: bytes) -> str:
    """The header value GitHub would send (tests, benchmarks, local tools)."""
    return "sha256=" + _digest(secret, body)


def sentry_signature(secret: str, body: bytes) -> str:
    return _digest(secret, body)


def pagerduty_signature(secret: str, body: bytes) -> str:
    return "v1=" + _digest(secret, body)
