"""The GitHub App: App JWT client, cached installation tokens, installation clients.

One place builds every githubkit client, so every call shares the same base URL
(`GITHUB_API_URL`: github.com, GitHub Enterprise Server, or a test server), the same
timeouts and the same retry rules:

- rate limits (primary and secondary) are waited out when the wait is short (honoring
  `Retry-After`, else `x-ratelimit-reset`), and raised as `RateLimited` when it is long, so a
  worker gives the job back instead of sleeping for an hour; never more than `max_rate_retries`
  waits for one request;
- 5xx on reads (GET/HEAD) are retried with backoff; writes are never retried here, because a
  write that failed with a 5xx or a timeout may have happened: the caller reads state first;
- at most 10 requests at once per process, and writes are spaced (1 s by default) so bursts
  stay under GitHub's secondary limits.

Installation tokens are cached until five minutes before they expire, so a token handed to git
stays valid for a clone or a push. May import: bot.settings, bot.errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestFailed,
    RequestTimeout,
)
from githubkit.retry import RetryOption
from githubkit.throttling import BaseThrottler

from bot.errors import SelfhealError, SettingsError

if TYPE_CHECKING:
    from githubkit import GitHubCore

    from bot.settings import Settings

TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
USER_AGENT = "selfheal-bot"


class RateLimited(SelfhealError):
    """GitHub asked us to wait longer than we are willing to sleep inside a job."""

    def __init__(self, message: str, retry_after: timedelta) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryPolicy:
    """githubkit retry decision: wait out short rate limits, retry reads on 5xx, never writes."""

    def __init__(
        self,
        max_rate_wait: timedelta = timedelta(seconds=90),
        max_rate_retries: int = 2,
        max_read_retries: int = 3,
        read_backoff_s: float = 0.5,
    ) -> None:
        self.max_rate_wait = max_rate_wait
        self.max_rate_retries = max_rate_retries
        self.max_read_retries = max_read_retries
        self.read_backoff_s = read_backoff_s

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if isinstance(exc, RateLimitExceeded):
            wait = max(exc.retry_after, timedelta(seconds=1))
            if wait > self.max_rate_wait or retry_count >= self.max_rate_retries:
                raise RateLimited(
                    f"GitHub rate limit on {exc.request.method} {exc.request.url.path}; "
                    f"retry after {int(wait.total_seconds())} s",
                    wait,
                ) from exc
            return RetryOption(True, wait)
        if (
            isinstance(exc, RequestFailed)
            and exc.response.status_code >= 500
            and exc.request.method in ("GET", "HEAD")
            and retry_count < self.max_read_retries
        ):
            return RetryOption(
                True, timedelta(seconds=self.read_backoff_s * (retry_count + 1) ** 2)
            )
        return RetryOption(False)


class PacedThrottler(BaseThrottler):
    """Few concurrent requests, and a pause between writes (GitHub's best practice: about a
    second between POST/PATCH/PUT/DELETE; content creation is limited to 80 a minute)."""

    WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})

    def __init__(self, max_concurrency: int = 10, write_interval_s: float = 1.0) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._write_lock = threading.Lock()
        self._interval = write_interval_s
        self._last_write = 0.0

    def _pace(self, request: httpx.Request) -> float:
        """Reserve the next write slot; returns how long to wait for it."""
        if request.method not in self.WRITES or self._interval <= 0:
            return 0.0
        with self._write_lock:
            now = time.monotonic()
            slot = max(now, self._last_write + self._interval)
            self._last_write = slot
            return slot - now

    @contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        wait = self._pace(request)
        if wait > 0:
            time.sleep(wait)
        with self._slots:
            yield

    @asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        import anyio

        wait = self._pace(request)
        if wait > 0:
            await anyio.sleep(wait)
        with self._slots:  # held briefly; async callers are rare here
            yield


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: datetime

    def __repr__(self) -> str:  # never show the token
        return f"InstallationToken(expires_at={self.expires_at.isoformat()})"


class _CachedTokenAuth(httpx.Auth):
    def __init__(self, fetch: Callable[[], str]) -> None:
        self._fetch = fetch

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"token {self._fetch()}"
        yield request


@dataclass
class InstallationAuthStrategy(BaseAuthStrategy):
    """githubkit auth that takes each request's token from the App's token cache."""

    app: GitHubApp
    installation_id: int

    def get_auth_flow(self, github: GitHubCore) -> httpx.Auth:
        return _CachedTokenAuth(lambda: self.app.installation_token(self.installation_id))


class GitHubApp:
    """The App's identity: builds clients and keeps installation tokens fresh."""

    def __init__(
        self,
        app_id: int | str,
        private_key: str,
        api_url: str = "https://api.github.com",
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        write_interval_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app_id = app_id
        self.api_url = api_url.rstrip("/") + "/"
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._tokens: dict[int, InstallationToken] = {}
        self._lock = threading.Lock()
        # Our own JWT cache: githubkit's default is process-wide and keyed by app id, so a
        # rotated key (or a second App) would keep signing with the old one for 8 minutes.
        self._cache = MemCacheStrategy()
        self._throttler = PacedThrottler(write_interval_s=write_interval_s)
        self.app_client = self._client(AppAuthStrategy(app_id, private_key))

    def __repr__(self) -> str:
        return f"GitHubApp(app_id={self.app_id}, api_url={self.api_url!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> GitHubApp:
        key = settings.private_key()
        if settings.github_app_id is None or not key:
            raise SettingsError(
                "GITHUB_APP_ID and GITHUB_PRIVATE_KEY (or GITHUB_PRIVATE_KEY_PATH) are needed "
                "to talk to GitHub; open /setup on the web process to create the App, or set them"
            )
        return cls(
            settings.github_app_id,
            key,
            settings.github_api_url,
            write_interval_s=settings.github_write_interval_s,
        )

    def _client(self, auth: Any) -> GitHub[Any]:
        # No HTTP cache: after an ambiguous write we must read the live state, never a copy.
        return GitHub(
            auth,
            base_url=self.api_url,
            timeout=self._timeout,
            user_agent=USER_AGENT,
            http_cache=False,
            auto_retry=self._retry,
            cache_strategy=self._cache,
            throttler=self._throttler,
        )

    def installation_token(self, installation_id: int) -> str:
        """A token valid for at least five more minutes (fetched or from the cache)."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - TOKEN_REFRESH_MARGIN > self._clock():
                return cached.token
            resp = self.app_client.rest.apps.create_installation_access_token(installation_id)
            data = resp.json()
            expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
            self._tokens[installation_id] = InstallationToken(str(data["token"]), expires)
            return str(data["token"])

    def installation_client(self, installation_id: int) -> GitHub[Any]:
        """A client acting as the installation; each request uses a fresh-enough token."""
        return self._client(InstallationAuthStrategy(self, installation_id))

    def installation_id_for(self, repo: str) -> int:
        """The installation id that covers `owner/name` (JWT call)."""
        owner, name = split_repo(repo)
        data = self.app_client.rest.apps.get_repo_installation(owner, name).json()
        return int(data["id"])


def describe_github_error(exc: GitHubException) -> str:
    """One line for a failed GitHub call: `GitHub answered 502 to POST /path: message`,
    `GitHub timed out on GET /path`, or the exception's type."""
    if isinstance(exc, RequestFailed):
        try:
            data = exc.response.json()
        except ValueError:
            data = {}
        message = data.get("message") if isinstance(data, dict) else None
        where = f"{exc.request.method} {exc.request.url.path}"
        return f"GitHub answered {exc.response.status_code} to {where}: {message or 'no message'}"
    if isinstance(exc, RequestTimeout):
        return f"GitHub timed out on {exc.request.method} {exc.request.url.path}"
    return type(exc).__name__


def split_repo(repo: str) -> tuple[str, str]:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise SelfhealError(f"expected a repository as owner/name, got {repo!r}")
    return owner, name
