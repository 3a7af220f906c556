"""One-click GitHub App creation from app.yml (the manifest flow), while the App is unconfigured.

GET /setup shows a button that posts the manifest, with this server's public URL filled in,
to GitHub's new-App form (personal account or organization). GitHub sends the browser back to
GET /setup/callback?code=...&state=...; the state must be one this server issued (single use,
one hour, tied to the browser by a cookie), the code is exchanged with
`POST /app-manifests/{code}/conversions`, and the App's credentials are written to the env
file (mode 0600). While unconfigured, anyone who reaches /setup could connect this server to
an App of theirs: set SELFHEAL_ADMIN_TOKEN first and /setup asks for it (the dashboard's
sign-in). May import: bot.settings, bot.ops.access, bot.ops.render.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml
from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.ops.access import authorized
from bot.ops.render import render
from bot.settings import Settings

STATE_TTL_S = 3600.0  # GitHub's limit for the whole flow is one hour
STATE_COOKIE = "selfheal_setup_state"
_CODE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_ORG_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,38})$")

# Written to the env file, in this order, from the conversion response.
ENV_KEYS = (
    ("GITHUB_APP_ID", "id"),
    ("GITHUB_APP_SLUG", "slug"),
    ("GITHUB_CLIENT_ID", "client_id"),
    ("GITHUB_CLIENT_SECRET", "client_secret"),
    ("GITHUB_WEBHOOK_SECRET", "webhook_secret"),
    ("GITHUB_PRIVATE_KEY", "pem"),
)


def find_manifest() -> Path:
    """app.yml in the working directory, else beside the package (a source checkout)."""
    for candidate in (Path.cwd() / "app.yml", Path(__file__).resolve().parents[2] / "app.yml"):
        if candidate.is_file():
            return candidate
    return Path.cwd() / "app.yml"


def github_web_url(api_url: str) -> str:
    """https://api.github.com -> https://github.com; https://HOST/api/v3 -> https://HOST."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.netloc == "api.github.com":
        return "https://github.com"
    path = parts.path.removesuffix("/api/v3")
    return f"{parts.scheme}://{parts.netloc}{path}"


def build_manifest(manifest_path: Path, public_url: str) -> dict[str, Any]:
    """The manifest from app.yml with every URL pointing at `public_url`."""
    data = yaml.safe_load(manifest_path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{manifest_path}: expected a mapping of manifest keys")
    base = public_url.rstrip("/")
    data["url"] = base
    hook = dict(data.get("hook_attributes") or {})
    hook["url"] = f"{base}/webhooks/github"
    hook.setdefault("active", True)
    data["hook_attributes"] = hook
    data["redirect_url"] = f"{base}/setup/callback"
    data["setup_url"] = f"{base}/setup/installed"
    data["callback_urls"] = [f"{base}/login/github/callback"]  # dashboard sign-in with GitHub
    data.setdefault("request_oauth_on_install", False)
    return data


def _quote_env(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.:/@+\-]*", value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the dotenv file at `path` (others kept), atomically, mode 0600."""
    lines = path.read_text().splitlines() if path.exists() else []
    pending = dict(values)
    kept: list[str] = []
    for line in lines:
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
        if key in pending:
            kept.append(f"{key}={_quote_env(pending.pop(key))}")
        else:
            kept.append(line)
    if pending and kept and kept[-1].strip():
        kept.append("")
    if pending:
        kept.append("# GitHub App created by /setup")
    kept.extend(f"{key}={_quote_env(value)}" for key, value in pending.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(kept) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


class SetupFlow:
    """The states issued by /setup and the App created by the callback (one web process)."""

    def __init__(
        self,
        settings: Settings,
        *,
        manifest_path: Path | None = None,
        ttl_s: float = STATE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.manifest_path = manifest_path or find_manifest()
        self.ttl_s = ttl_s
        self.clock = clock
        self._states: dict[str, float] = {}
        self._lock = threading.Lock()
        self.created: dict[str, Any] | None = None

    def configured(self) -> bool:
        """True once the App has credentials (from settings or from this flow)."""
        has_key = (
            self.settings.github_private_key is not None
            or self.settings.github_private_key_path is not None
        )
        return (self.settings.github_app_id is not None and has_key) or self.created is not None

    def issue_state(self) -> str:
        state = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._states = {s: exp for s, exp in self._states.items() if exp > now}
            self._states[state] = now + self.ttl_s
        return state

    def consume_state(self, state: str) -> bool:
        """True exactly once for a state this flow issued that has not expired."""
        with self._lock:
            expires = self._states.pop(state, None)
        return expires is not None and expires > self.clock()

    async def exchange(self, code: str) -> dict[str, Any]:
        """POST /app-manifests/{code}/conversions; the new App's id, slug, keys and secrets."""
        async with GitHub(
            base_url=self.settings.github_api_url, auto_retry=False, http_cache=False, timeout=15.0
        ) as gh:
            response = await gh.rest.apps.async_create_from_manifest(code)
        data = response.json()
        if not isinstance(data, dict) or not all(data.get(field) for _, field in ENV_KEYS):
            raise ValueError("GitHub's answer lacks the App's id, key or secrets")
        return data

    def save(self, app: dict[str, Any]) -> Path:
        values = {name: str(app[field]) for name, field in ENV_KEYS}
        path = self.settings.selfheal_env_file
        write_env_file(path, values)
        self.created = {k: app.get(k) for k in ("id", "slug", "name", "html_url", "owner")}
        return path


def _public_url(settings: Settings, request: Request) -> tuple[str, bool]:
    if settings.selfheal_public_url:
        return settings.selfheal_public_url.rstrip("/"), True
    return str(request.base_url).rstrip("/"), False


def _error(status: int, title: str, detail: str) -> Response:
    return render("setup_error.html", status_code=status, title=title, detail=detail)


def setup_routes(settings: Settings, flow: SetupFlow | None = None) -> list[BaseRoute]:
    """GET /setup, GET /setup/callback, GET /setup/installed."""
    flow = flow or SetupFlow(settings)

    async def setup_page(request: Request) -> Response:
        if flow.configured():
            return _error(
                404, "The App is configured", "Setup is only offered while no App is configured."
            )
        if settings.selfheal_admin_token is not None and not authorized(settings, request):
            # With an admin token set, only its holder may connect this server to an App.
            return RedirectResponse("/login?next=%2Fsetup", status_code=303)
        org = request.query_params.get("org", "").strip()
        if org and not _ORG_RE.match(org):
            return _error(400, "Invalid organization", "Use the organization's login name.")
        public_url, from_settings = _public_url(settings, request)
        try:
            manifest = build_manifest(flow.manifest_path, public_url)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            return _error(500, "app.yml is unusable", f"{flow.manifest_path}: {exc}")
        state = flow.issue_state()
        web = github_web_url(settings.github_api_url)
        target = (
            f"{web}/organizations/{org}/settings/apps/new" if org else f"{web}/settings/apps/new"
        )
        response = render(
            "setup.html",
            action=f"{target}?{urlencode({'state': state})}",
            manifest_json=json.dumps(manifest, indent=2),
            manifest=manifest,
            org=org,
            public_url=public_url,
            from_settings=from_settings,
            env_file=str(settings.selfheal_env_file),
            home="/setup",
        )
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=int(flow.ttl_s),
            httponly=True,
            samesite="lax",
            secure=public_url.startswith("https://"),
            path="/setup",
        )
        return response

    async def callback(request: Request) -> Response:
        code = request.query_params.get("code", "")
        state = request.query_params.get("state", "")
        if not code or not state or not _CODE_RE.match(code):
            return _error(400, "Incomplete callback", "The link from GitHub lacks a code or state.")
        cookie = request.cookies.get(STATE_COOKIE, "")
        # Consume first: a state is spent even by a failed attempt.
        valid = flow.consume_state(state)
        if not valid or not secrets.compare_digest(cookie.encode(), state.encode()):
            return _error(
                403,
                "Setup link refused",
                "This link was not issued to this browser, was already used, or has expired. "
                "Start again from /setup.",
            )
        if flow.configured():
            return _error(409, "The App is configured", "An App was already created here.")
        try:
            app = await flow.exchange(code)
        except RequestFailed as exc:
            status = exc.response.status_code
            return _error(
                400 if status < 500 else 502,
                "GitHub refused the code",
                f"GitHub answered {status}: the code is unknown, used or older than an hour. "
                "Start again from /setup.",
            )
        except (GitHubException, ValueError) as exc:
            return _error(502, "GitHub could not be reached", str(exc))
        try:
            path = flow.save(app)
        except OSError as exc:
            return _error(
                500,
                "Could not write the env file",
                f"{settings.selfheal_env_file}: {exc.strerror}. The App {app.get('slug')} exists "
                "on GitHub; delete it there and run setup again once the file is writable.",
            )
        html_url = str(app.get("html_url") or "")
        response = render(
            "setup_done.html",
            app=app,
            install_url=f"{html_url.rstrip('/')}/installations/new" if html_url else "",
            env_file=str(path),
            home="/setup",
        )
        response.delete_cookie(STATE_COOKIE, path="/setup")
        return response

    async def installed(request: Request) -> Response:
        return render("setup_installed.html", home="/")

    return [
        Route("/setup", setup_page, methods=["GET"]),
        Route("/setup/callback", callback, methods=["GET"]),
        Route("/setup/installed", installed, methods=["GET"]),
    ]
