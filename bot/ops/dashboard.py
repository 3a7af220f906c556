"""The jobs dashboard: a server-rendered list of recent jobs and a page per job's evidence.

Jobs are read through the read-only `JobSource` protocol (the job store implements it); each
job's artifacts folder holds report.json, report.md, patch.diff, test-before.log,
test-after.log and trajectory.jsonl, which the job page reads (size-capped, symlinks refused,
secrets redacted again on the way out). Access needs SELFHEAL_ADMIN_TOKEN (as a Bearer header,
or typed once into the login form, which sets an HttpOnly cookie derived from the token), or a
GitHub sign-in (the App's OAuth client) by a login listed in SELFHEAL_ADMIN_USERS.
May import: bot.settings, bot.redact, bot.ops.access, bot.ops.render, bot.ops.setup_flow.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode

from githubkit import GitHub, OAuthWebAuthStrategy
from githubkit.exception import GitHubException
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ops.access import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    admin_users,
    authorized,
    github_sign_in_enabled,
    session_value,
    user_session_value,
)
from bot.ops.render import SECURITY_HEADERS, render
from bot.ops.setup_flow import github_web_url
from bot.redact import redact, redact_text
from bot.settings import Settings

SOURCES = ("github", "sentry", "pagerduty", "cli")
STATES = ("queued", "running", "done", "failed", "dead")
DECISIONS = ("merge", "pr", "draft_pr", "report")
ARTIFACTS = (
    "report.json",
    "report.md",
    "patch.diff",
    "test-before.log",
    "test-after.log",
    "trajectory.jsonl",
)
MAX_TEXT = 512 * 1024  # bytes shown of a log or diff (the tail of a log, the head of a diff)
MAX_STEPS = 2000
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
        ordered = sorted(self.jobs, key=lambda j: _epoch(j.get("created_at")) or 0, reverse=True)
        return [job for job in ordered if filters.matches(job)][:limit]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return next((job for job in self.jobs if str(job.get("id")) == job_id), None)


# --- formatting -------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def fmt_time(value: Any) -> str:
    epoch = _epoch(value)
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_usd(value: Any) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"
    return "—"


def fmt_duration(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return "—"
    seconds = round(value)
    if seconds < 60:
        return f"{value:.1f}s" if value < 10 else f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"


# --- artifacts --------------------------------------------------------------------------


def _read(folder: Path | None, name: str, *, tail: bool = False) -> str | None:
    """A text artifact, capped at MAX_TEXT (head, or tail for logs); None when absent."""
    if folder is None:
        return None
    path = folder / name
    try:
        if path.is_symlink() or not path.is_file():
            return None
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size > MAX_TEXT and tail:
                handle.seek(size - MAX_TEXT)
            data = handle.read(MAX_TEXT)
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    if size > MAX_TEXT:
        note = f"[{size - MAX_TEXT:,} bytes not shown]"
        text = f"{note}\n{text}" if tail else f"{text}\n{note}"
    return redact_text(text)


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


@dataclass
class Step:
    index: int
    offset_s: float | None
    role: str
    kind: str
    what: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    elapsed_s: float | None


def read_trajectory(text: str | None) -> tuple[list[Step], int]:
    """Steps from trajectory.jsonl and the number of unreadable lines skipped."""
    if not text:
        return [], 0
    steps: list[Step] = []
    skipped = 0
    start: float | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        if len(steps) >= MAX_STEPS:
            skipped += 1
            continue
        ts = _epoch(record.get("ts"))
        if ts is not None and start is None:
            start = ts
        kind = str(record.get("kind") or "")
        what = str(record.get("tool") or "") if kind == "tool" else str(record.get("model") or "")

        def num(key: str, rec: dict[str, Any] = record) -> Any:
            value = rec.get(key)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        steps.append(
            Step(
                index=len(steps) + 1,
                offset_s=(ts - start) if ts is not None and start is not None else None,
                role=str(record.get("role") or "—"),
                kind=kind or "—",
                what=what or "—",
                input_tokens=num("input_tokens"),
                output_tokens=num("output_tokens"),
                cost_usd=num("cost_usd"),
                elapsed_s=num("elapsed_s"),
            )
        )
    return steps, skipped


def cost_by_role(report: dict[str, Any], steps: list[Step]) -> list[dict[str, Any]]:
    """Per-role cost: report.json's cost.by_role, else summed from the trajectory."""
    by_role = _get(report, "cost.by_role")
    rows: dict[str, dict[str, Any]] = {}
    if isinstance(by_role, dict) and by_role:
        for role, entry in by_role.items():
            entry = entry if isinstance(entry, dict) else {}
            rows[str(role)] = {
                "usd": float(entry.get("usd") or 0),
                "input_tokens": int(entry.get("input_tokens") or 0),
                "output_tokens": int(entry.get("output_tokens") or 0),
                "calls": int(entry.get("calls") or 0),
            }
    else:
        for step in steps:
            if step.kind != "model":
                continue
            row = rows.setdefault(
                step.role, {"usd": 0.0, "input_tokens": 0, "output_tokens": 0, "calls": 0}
            )
            row["usd"] += step.cost_usd or 0
            row["input_tokens"] += step.input_tokens or 0
            row["output_tokens"] += step.output_tokens or 0
            row["calls"] += 1
    top = max((r["usd"] for r in rows.values()), default=0) or 1
    return [
        {"role": role, **row, "share": row["usd"] / top}
        for role, row in sorted(rows.items(), key=lambda kv: -kv[1]["usd"])
    ]


def diff_html(diff: str | None) -> str:
    if not diff:
        return ""
    return highlight(diff, DiffLexer(), HtmlFormatter(cssclass="highlight", wrapcode=True))


def load_job_page(job: dict[str, Any]) -> dict[str, Any]:
    """Everything the job page shows, read from the artifacts folder."""
    folder_value = job.get("artifacts_dir")
    folder = Path(folder_value) if folder_value else None
    problems: list[str] = []
    report: dict[str, Any] = {}
    raw_report = _read(folder, "report.json")
    if raw_report is not None:
        try:
            loaded = json.loads(raw_report)
            report = redact(loaded) if isinstance(loaded, dict) else {}
            if not isinstance(loaded, dict):
                problems.append("report.json is not a JSON object")
        except json.JSONDecodeError as exc:
            problems.append(f"report.json is not valid JSON ({exc.msg} at line {exc.lineno})")
    elif folder is not None:
        problems.append("report.json is missing")
    steps, skipped = read_trajectory(_read(folder, "trajectory.jsonl"))
    if skipped:
        problems.append(f"trajectory.jsonl: {skipped} line(s) unreadable or over the limit")
    diff = _read(folder, "patch.diff")
    reasons = _get(report, "decision.reasons")
    suite = _get(report, "evidence.suite")
    return {
        "report": report,
        "title": _get(report, "incident.title") or job.get("fingerprint") or job.get("id"),
        "fingerprint": _get(report, "incident.fingerprint") or job.get("fingerprint"),
        "action": _get(report, "decision.action") or job.get("decision"),
        "reasons": [r for r in reasons if isinstance(r, dict)] if isinstance(reasons, list) else [],
        "reproduction": _get(report, "evidence.reproduction") or {},
        "suite": suite if isinstance(suite, dict) else ({"summary": suite} if suite else {}),
        "patch": report.get("patch") if isinstance(report.get("patch"), dict) else {},
        "models": report.get("models"),
        "total_usd": _get(report, "cost.usd"),
        "report_md": _read(folder, "report.md"),
        "diff": diff,
        "diff_html": diff_html(diff),
        "before_log": _read(folder, "test-before.log", tail=True),
        "after_log": _read(folder, "test-after.log", tail=True),
        "steps": steps,
        "roles": cost_by_role(report, steps),
        "problems": problems,
    }


# --- access -----------------------------------------------------------------------------


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
        text = await run_in_threadpool(_read, Path(folder) if folder else None, name)
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
