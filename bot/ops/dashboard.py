"""The jobs dashboard: a server-rendered list of recent jobs and a page per job's evidence.

Jobs are read through the read-only `JobSource` protocol (the job store implements it); the
job page shows what bot.ops.artifacts reads from the job's artifacts folder. Access needs
SELFHEAL_ADMIN_TOKEN (as a Bearer header, or typed once into the login form, which sets an
HttpOnly cookie derived from the token), or a GitHub sign-in (the App's OAuth client) by a
login listed in SELFHEAL_ADMIN_USERS (bot.ops.access).
May import: bot.settings, bot.ops.access, bot.ops.artifacts, bot.ops.render,
bot.ops.setup_flow.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode

from githubkit.exception import GitHubException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ops.access import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    LoginThrottle,
    SingleUseStates,
    admin_users,
    authorized,
    github_sign_in_enabled,
    github_user_login,
    session_value,
    user_session_value,
)
from bot.ops.artifacts import (
    ARTIFACTS,
    epoch,
    fmt_duration,
    fmt_int,
    fmt_time,
    fmt_usd,
    load_job_page,
    read_artifact,
)
from bot.ops.render import SECURITY_HEADERS, render
from bot.ops.setup_flow import github_web_url
from bot.settings import Settings

SOURCES = ("github", "sentry", "pagerduty", "cli")
STATES = ("queued", "running", "done", "failed", "quarantined")
DECISIONS = ("merge", "pr", "draft_pr", "report")
MAX_FORM = 4096
OAUTH_COOKIE = "selfheal_oauth_state"


@dataclass(frozen=True)
class JobFilters:
    """Exact-match filters; None means any."""

    repo: str | None = None
    source: str | None = None
    state: str | None = None
    decision: str | None = None

    def matches(self, job: dict[str, Any]) -> bool:
        return all(
            want is None or job.get(key) == want
            for key, want in (
                ("repo", self.repo),
                ("source", self.source),
                ("state", self.state),
                ("decision", self.decision),
            )
        )


class JobSource(Protocol):
    """Read-only access to jobs as plain dicts with the keys: id, repo, source, state,
    fingerprint, events, created_at, updated_at, decision, cost_usd, duration_s, artifacts_dir."""

    def list_jobs(self, filters: JobFilters, limit: int) -> list[dict[str, Any]]:
        """The newest jobs first, at most `limit`, those matching `filters`."""
        ...

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """One job, or None when it is unknown."""
        ...


class ListJobSource:
    """A JobSource over a list of job dicts (for a single process, tests and demos)."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs

    def list_jobs(self, filters: JobFilters, limit: int) -> list[dict[str, Any]]:
        ordered = sorted(self.jobs, key=lambda j: epoch(j.get("created_at")) or 0, reverse=True)
        return [job for job in ordered if filters.matches(job)][:limit]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return next((job for job in self.jobs if str(job.get("id")) == job_id), None)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def dashboard_routes(settings: Settings, job_source: JobSource) -> list[BaseRoute]:
    """GET /, /jobs/{job_id}, /jobs/{job_id}/files/{name}; GET|POST /login; POST /logout;
    GET /login/github and /login/github/callback (GitHub sign-in, when configured)."""

    failures = LoginThrottle()

    with_github = github_sign_in_enabled(settings)
    oauth_states = SingleUseStates()

    def secure(request: Request) -> bool:
        return request.url.scheme == "https" or (settings.selfheal_public_url or "").startswith(
            "https://"
        )

    def start_session(request: Request, value: str, next_url: str) -> Response:
        response = RedirectResponse(next_url, status_code=303)
        # Lax, not Strict: the GitHub sign-in ends with a redirect from github.com.
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=SESSION_TTL_S,
            httponly=True,
            samesite="lax",
            secure=secure(request),
            path="/",
        )
        return response

    def login_page(status: int, next_url: str, error: str | None) -> Response:
        return render(
            "login.html",
            status_code=status,
            next_url=next_url,
            error=error,
            with_token=settings.selfheal_admin_token is not None,
            with_github=with_github,
        )

    def gate(request: Request) -> Response | None:
        if settings.selfheal_admin_token is None and not with_github:
            return render(
                "message.html",
                status_code=503,
                title="Dashboard disabled",
                detail="Set SELFHEAL_ADMIN_TOKEN (a long random string) to open the dashboard, "
                "or SELFHEAL_ADMIN_USERS to let those GitHub users sign in.",
            )
        if authorized(settings, request):
            return None
        if request.headers.get("authorization"):
            return PlainTextResponse("invalid token\n", status_code=401, headers=SECURITY_HEADERS)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def index(request: Request) -> Response:
        denied = gate(request)
        if denied is not None:
            return denied
        params = request.query_params

        def pick(name: str) -> str | None:
            value = params.get(name, "").strip()
            return value[:200] or None

        filters = JobFilters(
            repo=pick("repo"), source=pick("source"), state=pick("state"), decision=pick("decision")
        )
        try:
            limit = min(max(int(params.get("limit", "50")), 1), 500)
        except ValueError:
            limit = 50
        jobs = await run_in_threadpool(job_source.list_jobs, filters, limit)
        return render(
            "dashboard.html",
            jobs=jobs,
            filters=filters,
            limit=limit,
            sources=SOURCES,
            states=STATES,
            decisions=DECISIONS,
            fmt_usd=fmt_usd,
            fmt_duration=fmt_duration,
            fmt_time=fmt_time,
            fmt_int=fmt_int,
            logged_in=True,
            refresh=any(job.get("state") in ("queued", "running") for job in jobs),
        )

    async def job_page(request: Request) -> Response:
        denied = gate(request)
        if denied is not None:
            return denied
        job_id = request.path_params["job_id"]
        job = await run_in_threadpool(job_source.get_job, job_id)
        if job is None:
            return render(
                "message.html", status_code=404, title="No such job", detail=job_id, logged_in=True
            )
        page = await run_in_threadpool(load_job_page, job)
        return render(
            "job.html",
            job=job,
            page=page,
            fmt_usd=fmt_usd,
            fmt_duration=fmt_duration,
            fmt_time=fmt_time,
            fmt_int=fmt_int,
            logged_in=True,
        )

    async def job_file(request: Request) -> Response:
        denied = gate(request)
        if denied is not None:
            return denied
        name = request.path_params["name"]
        job = await run_in_threadpool(job_source.get_job, request.path_params["job_id"])
        if name not in ARTIFACTS or job is None:
            return PlainTextResponse("not found\n", status_code=404, headers=SECURITY_HEADERS)
        folder = job.get("artifacts_dir")
        text = await run_in_threadpool(read_artifact, Path(folder) if folder else None, name)
        if text is None:
            return PlainTextResponse("not found\n", status_code=404, headers=SECURITY_HEADERS)
        return PlainTextResponse(text, headers=SECURITY_HEADERS)

    async def login(request: Request) -> Response:
        next_url = _safe_next(request.query_params.get("next"))
        if settings.selfheal_admin_token is None and not with_github:
            return gate(request) or RedirectResponse("/", status_code=303)
        if request.method == "GET":
            return login_page(200, next_url, None)
        if settings.selfheal_admin_token is None:
            return PlainTextResponse("sign in with GitHub\n", status_code=404)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return login_page(413, next_url, "Too long.")
        client = request.client.host if request.client else "?"
        if not failures.allow(client):
            return login_page(429, next_url, "Too many failed attempts; wait a minute.")
        form = parse_qs(body.decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        next_url = _safe_next((form.get("next") or [next_url])[0])
        token = settings.selfheal_admin_token.get_secret_value()
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            failures.record(client)
            return login_page(401, next_url, "That token is not valid.")
        return start_session(request, session_value(token), next_url)

    def callback_url(request: Request) -> str:
        base = (settings.selfheal_public_url or str(request.base_url)).rstrip("/")
        return f"{base}/login/github/callback"

    async def github_login(request: Request) -> Response:
        if not with_github:
            return PlainTextResponse("GitHub sign-in is not configured\n", status_code=404)
        next_url = _safe_next(request.query_params.get("next"))
        state = oauth_states.issue(next_url)
        query = urlencode(
            {
                "client_id": settings.github_client_id,
                "redirect_uri": callback_url(request),
                "state": state,
                "allow_signup": "false",
            }
        )
        web = github_web_url(settings.github_api_url)
        response = RedirectResponse(f"{web}/login/oauth/authorize?{query}", status_code=303)
        response.set_cookie(
            OAUTH_COOKIE,
            state,
            max_age=600,
            httponly=True,
            samesite="lax",
            secure=secure(request),
            path="/login/github",
        )
        return response

    async def github_callback(request: Request) -> Response:
        if not with_github or settings.github_client_secret is None:
            return PlainTextResponse("GitHub sign-in is not configured\n", status_code=404)
        code = request.query_params.get("code", "")
        state = request.query_params.get("state", "")
        cookie = request.cookies.get(OAUTH_COOKIE, "")
        next_url = oauth_states.consume(state) if state else None
        if (
            next_url is None
            or not code
            or len(code) > 128
            or not hmac.compare_digest(cookie.encode(), state.encode())
        ):
            return render(
                "message.html",
                status_code=403,
                title="Sign-in refused",
                detail="This sign-in link was not started here, was already used, or expired.",
            )
        try:
            login_name = await github_user_login(settings, code, callback_url(request))
        except (GitHubException, KeyError, TypeError, ValueError):
            return render(
                "message.html",
                status_code=400,
                title="GitHub sign-in failed",
                detail="GitHub did not accept the sign-in; try again.",
            )
        if login_name.lower() not in admin_users(settings):
            return render(
                "message.html",
                status_code=403,
                title="Not an admin",
                detail=f"{login_name} is not listed in SELFHEAL_ADMIN_USERS.",
            )
        response = start_session(request, user_session_value(settings, login_name), next_url)
        response.delete_cookie(OAUTH_COOKIE, path="/login/github")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return [
        Route("/", index, methods=["GET"]),
        Route("/jobs/{job_id}", job_page, methods=["GET"]),
        Route("/jobs/{job_id}/files/{name}", job_file, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/login/github", github_login, methods=["GET"]),
        Route("/login/github/callback", github_callback, methods=["GET"]),
    ]
