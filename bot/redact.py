"""Remove secrets from text and nested data before it leaves the process.

The one place that knows what a secret looks like; logs (bot.logging) and error reports
(bot.telemetry) both use it. May import: nothing from bot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[Redacted]"

# Shapes of credentials the bot handles or may meet in error messages and argv.
SECRET_RE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
    r"|\bgh[pousr]_[A-Za-z0-9_.\-]{16,}"  # GitHub tokens (ghs_ may be a 520-char JWT)
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bsk-(?:ant-)?[A-Za-z0-9_\-]{16,}"  # OpenAI / Anthropic keys
    r"|\b[Bb]earer\s+[A-Za-z0-9_.~+/=\-]{8,}"
    r"|\b[Tt]oken\s+[A-Za-z0-9_.~+/=\-]{20,}"
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWTs
)
# scheme://user:password@host -> keep the scheme and host, drop the credentials.
URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s:@]*:[^/\s@]*@")

# Mapping keys whose values are secret whatever they look like (compared lowercased).
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "pem",
        "jwt",
        "client_secret",
        "webhook_secret",
        "installation_token",
        "access_token",
        "x-hub-signature-256",
        "sentry-hook-signature",
        "x-pagerduty-signature",
        "signature",
    }
)
# ... and keys ending in one of these words (`installation_token`, `X-Api-Key`; not `input_tokens`).
_SECRET_KEY_END = re.compile(
    r"(?:^|_)(?:token|secret|password|passwd|private_key|api_key|apikey|authorization|signature"
    r"|pem|jwt|dsn|credentials)$"
)

_known: set[str] = set()


def add_known_secrets(values: Iterable[str | None]) -> None:
    """Remember configured secret values (>= 8 chars) so they are redacted wherever they appear."""
    for value in values:
        if value and len(value) >= 8:
            _known.add(value)


def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (e.g. `installation_token`, `X-Api-Key`)."""
    lowered = key.lower().replace("-", "_")
    return lowered in SECRET_KEYS or _SECRET_KEY_END.search(lowered) is not None


def redact_text(text: str) -> str:
    """Replace every secret in `text` with [Redacted]."""
    for value in _known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = URL_CREDENTIALS_RE.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return SECRET_RE.sub(REDACTED, text)


def redact(value: Any, _depth: int = 0) -> Any:
    """Return a copy of `value` (str, dict, list, tuple) with secrets and secret keys redacted."""
    if _depth > 40:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and is_secret_key(key) and value_is_set(item)
                else redact(item, _depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, _depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item, _depth + 1) for item in value)
    return value


def value_is_set(item: Any) -> bool:
    """Keep empty or boolean values of secret-named keys visible (`token: null` says a lot)."""
    return not (item is None or isinstance(item, bool) or item == "")
