"""Git credentials for an installation token, kept out of argv, URLs, .git/config and logs.

git reads extra configuration from `GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_n` /
`GIT_CONFIG_VALUE_n` in its environment (git >= 2.31). We pass the token there as an
`Authorization` header scoped to the remote's origin (`http.<origin>/.extraHeader`), so it is
never on a command line (visible in `ps`), in a remote URL, in `.git/config`, or in a log line,
and it is not sent to any other host (a submodule elsewhere does not see it). Never give this
environment to sandboxed commands. May import: nothing from bot.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import urlsplit


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) remote URL, got {url!r}")
    if parts.username or parts.password:
        raise ValueError("the remote URL must not carry credentials")
    return f"{parts.scheme}://{parts.netloc}/"


def git_auth_env(
    token: str, url: str | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment variables that make git authenticate with `token`.

    `url` scopes the header to that remote's origin (recommended); `base` is an environment
    that may already carry GIT_CONFIG_* entries, which are kept. Returns only the variables to
    add (merge them over the environment you run git with).
    """
    if not token or any(c in token for c in "\r\n"):
        raise ValueError("the token is empty or contains a line break")
    existing = dict(base or {})
    try:
        count = int(existing.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    key = f"http.{_origin(url)}.extraHeader" if url else "http.extraHeader"
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": key,
        f"GIT_CONFIG_VALUE_{count}": f"Authorization: Basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",  # fail instead of asking for a password
        "GCM_INTERACTIVE": "never",
    }
