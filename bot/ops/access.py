"""Who may open the operator pages: the holder of SELFHEAL_ADMIN_TOKEN, or a GitHub user
listed in SELFHEAL_ADMIN_USERS who signed in with the App's OAuth credentials.

The admin token is accepted as `Authorization: Bearer <token>` or through the session cookie
the login form sets, which holds an HMAC of the token, never the token. A GitHub sign-in
session cookie holds `gh.<login>.<expiry>.<hmac>`, signed with the App's client secret, and is
checked against the current list of admin users on every request. Failed token sign-ins are
throttled per address. May import: bot.settings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from githubkit import GitHub, OAuthWebAuthStrategy
from starlette.requests import Request

from bot.settings import Settings

SESSION_COOKIE = "selfheal_admin"
SESSION_TTL_S = 12 * 3600


def session_value(token: str) -> str:
    """The cookie value: an HMAC of the admin token, so the token itself is never stored."""
    return hmac.new(token.encode(), b"selfheal-dashboard-session-v1", hashlib.sha256).hexdigest()


def admin_users(settings: Settings) -> set[str]:
    """The GitHub logins (lowercased) of SELFHEAL_ADMIN_USERS."""
    raw = settings.selfheal_admin_users or ""
    return {name.strip().lower() for name in raw.split(",") if name.strip()}


def github_sign_in_enabled(settings: Settings) -> bool:
    return bool(
        settings.github_client_id and settings.github_client_secret and admin_users(settings)
    )


def _user_signature(settings: Settings, payload: str) -> str:
    assert settings.github_client_secret is not None
    key = settings.github_client_secret.get_secret_value().encode()
    return hmac.new(key, f"selfheal-user-session-v1.{payload}".encode(), hashlib.sha256).hexdigest()


def user_session_value(settings: Settings, login: str, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + SESSION_TTL_S)
    payload = f"{login.lower()}.{expires}"
    return f"gh.{payload}.{_user_signature(settings, payload)}"


def session_user(settings: Settings, cookie: str) -> str | None:
    """The GitHub login a valid, unexpired user session cookie names, if still an admin."""
    if not cookie.startswith("gh.") or not github_sign_in_enabled(settings):
        return None
    parts = cookie.split(".")
    if len(parts) != 4:
        return None
    _, login, expires, signature = parts
    payload = f"{login}.{expires}"
    if not hmac.compare_digest(signature.encode(), _user_signature(settings, payload).encode()):
        return None
    if not expires.isdigit() or int(expires) < time.time():
        return None
    return login if login in admin_users(settings) else None


def authorized(settings: Settings, request: Request) -> bool:
    """True when the request carries the admin token, or a valid session cookie."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie.startswith("gh."):
        return session_user(settings, cookie) is not None
    if settings.selfheal_admin_token is None:
        return False
    token = settings.selfheal_admin_token.get_secret_value()
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and given:
        return hmac.compare_digest(given.strip().encode(), token.encode())
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(token).encode())


class LoginThrottle:
    """At most `limit` failed sign-ins per client address per `window_s` (one process)."""

    def __init__(self, limit: int = 10, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failed: dict[str, list[float]] = {}

    def _recent(self, client: str) -> list[float]:
        cutoff = time.monotonic() - self.window_s
        recent = [t for t in self._failed.get(client, []) if t > cutoff]
        if recent:
            self._failed[client] = recent
        else:
            self._failed.pop(client, None)
        return recent

    def allow(self, client: str) -> bool:
        return len(self._recent(client)) < self.limit

    def record(self, client: str) -> None:
        if len(self._failed) > 10_000:  # a flood of addresses: forget the oldest state
            self._failed.clear()
        self._recent(client)
        self._failed.setdefault(client, []).append(time.monotonic())


class SingleUseStates:
    """OAuth states issued by this process: each valid once, for ten minutes."""

    def __init__(self, ttl_s: float = 600.0) -> None:
        self.ttl_s = ttl_s
        self._states: dict[str, tuple[float, str]] = {}

    def issue(self, next_url: str) -> str:
        now = time.monotonic()
        self._states = {k: v for k, v in self._states.items() if v[0] > now}
        if len(self._states) > 10_000:
            self._states.clear()
        state = secrets.token_urlsafe(24)
        self._states[state] = (now + self.ttl_s, next_url)
        return state

    def consume(self, state: str) -> str | None:
        entry = self._states.pop(state, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]


async def github_user_login(settings: Settings, code: str, redirect_uri: str) -> str:
    """Exchange an OAuth code for a user token (githubkit) and return the user's login."""
    assert settings.github_client_id is not None and settings.github_client_secret is not None
    auth = OAuthWebAuthStrategy(
        settings.github_client_id,
        settings.github_client_secret.get_secret_value(),
        code,
        redirect_uri,
    )
    async with GitHub(
        auth, base_url=settings.github_api_url, auto_retry=False, http_cache=False, timeout=15.0
    ) as gh:
        user = (await gh.rest.users.async_get_authenticated()).json()
    return str(user["login"])
