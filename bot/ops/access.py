"""Who may open the operator pages: the holder of SELFHEAL_ADMIN_TOKEN.

The token is accepted as `Authorization: Bearer <token>` or through the session cookie the
login form sets, which holds an HMAC of the token, never the token. May import: bot.settings.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from bot.settings import Settings

SESSION_COOKIE = "selfheal_admin"


def session_value(token: str) -> str:
    """The cookie value: an HMAC of the admin token, so the token itself is never stored."""
    return hmac.new(token.encode(), b"selfheal-dashboard-session-v1", hashlib.sha256).hexdigest()


def authorized(settings: Settings, request: Request) -> bool:
    """True when the request carries the admin token (header) or a valid session cookie."""
    if settings.selfheal_admin_token is None:
        return False
    token = settings.selfheal_admin_token.get_secret_value()
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and given:
        return hmac.compare_digest(given.strip().encode(), token.encode())
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(token).encode())
