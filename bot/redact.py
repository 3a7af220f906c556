"""Remove secrets from text and nested data before it leaves the process.

The one place that knows what a secret looks like: logs, error reports, trajectories, tool
results and model context all pass through it. `redact(value)` takes a string or JSON-like
data (dicts, lists, tuples) and returns a copy with credentials replaced by [REDACTED]: token
shapes (GitHub, OpenAI, Anthropic, bearer, JWT), passwords in URLs, private key blocks,
`*_TOKEN=` / `*_KEY=` style assignments, the values of secret-named mapping keys, and every
configured secret value registered with `add_known_secrets`. May import: nothing from bot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"
MARK = REDACTED

# Shapes of credentials the bot handles or may meet in error messages, argv and tool output.
SECRET_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"
    r"|\bgh[pousr]_[A-Za-z0-9_.\-]{16,}"  # GitHub tokens (ghs_ may be a 520-char JWT)
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bsk-(?:ant-)?[A-Za-z0-9_\-]{16,}"  # OpenAI / Anthropic keys
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWTs
)
# Authorization schemes: keep the scheme word, drop the credential.
AUTH_SCHEME_RE = re.compile(
    r"\b([Bb]earer|[Bb]asic)\s+[A-Za-z0-9_.~+/=\-]{8,}|\b([Tt]oken)\s+[A-Za-z0-9_.~+/=\-]{20,}"
)
# scheme://user:password@host -> keep the scheme and host, drop the credentials.
URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s:@]*:[^/\s@]*@")
# NAME=value / NAME: value where NAME says secret (env dumps, config files, query strings).
ASSIGNMENT_RE = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:API_KEY|SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_KEY|DSN)[A-Z0-9_]*)"
    r"(\s*[=:]\s*)(?!\[REDACTED\])[^\s'\"&,]{6,}"
)

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
    """Replace every secret in `text` with [REDACTED]."""
    for value in _known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = URL_CREDENTIALS_RE.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = SECRET_RE.sub(REDACTED, text)
    text = AUTH_SCHEME_RE.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    return ASSIGNMENT_RE.sub(rf"\1\2{REDACTED}", text)


def redact(value: Any, _depth: int = 0) -> Any:
    """Return a copy of `value` (str, dict, list, tuple) with secrets and secret keys redacted.

    A string comes back as a string; tuples come back as tuples.
    """
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


def redact_obj(obj: Any) -> Any:
    """`redact` for JSON-like data; kept as a name of its own for callers that say so."""
    return redact(obj)


def value_is_set(item: Any) -> bool:
    """Keep empty or boolean values of secret-named keys visible (`token: null` says a lot)."""
    return not (item is None or isinstance(item, bool) or item == "")
