"""Remove secrets from text before it is logged, recorded or shown to a model.

`redact(text)` replaces tokens that look like credentials (GitHub tokens, OpenAI and Anthropic
keys, bearer tokens, passwords in URLs, private key blocks) with a marker; `redact_obj(obj)`
does the same for every string inside JSON-like data. May import: nothing from bot.
"""

from __future__ import annotations

import re
from typing import Any

MARK = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block (or everything after an unterminated BEGIN line).
    (
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        MARK,
    ),
    # GitHub tokens: classic / OAuth / app installation / refresh / fine-grained.
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})"), MARK),
    # Anthropic and OpenAI style keys (sk-ant-..., sk-proj-..., sk-...).
    (re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_\-]{16,}"), MARK),
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=\-]{12,}"), rf"\1 {MARK}"),
    # Credentials in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]*:[^/\s@]+@"), rf"\1{MARK}@"),
    # key=value style secrets in env dumps and query strings.
    (
        re.compile(
            r"(?i)\b([A-Z0-9_]*(?:API_KEY|SECRET|TOKEN|PASSWORD|PRIVATE_KEY)[A-Z0-9_]*)"
            r"(\s*[=:]\s*)(?!\[REDACTED\])[^\s'\"&,]{6,}"
        ),
        rf"\1\2{MARK}",
    ),
)


def redact(text: str) -> str:
    """Return `text` with every credential-looking token replaced by [REDACTED]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_obj(obj: Any) -> Any:
    """Return a copy of JSON-like `obj` (dicts, lists, tuples, strings) with strings redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(str(k)) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj
