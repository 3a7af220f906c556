"""`selfheal doctor`'s checks: is this installation able to run, and if not, what to set.

Each check returns a `Check` (ok, fail, warn or skip) with a detail and, for a failure, the
fix. Checks: settings, Redis, the GitHub App (JWT -> GET /app), webhook secrets, model keys
(GET /models on each provider in use), the sandbox (bwrap runs `true`), free disk for caches.
Nothing here prints a secret. May import: bot.settings, bot.errors, bot.redact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bot.errors import SettingsError
from bot.redact import redact_text
from bot.settings import Settings, load_settings

Status = Literal["ok", "fail", "warn", "skip"]
TIMEOUT_S = 10.0
SETUP_HINT = (
    "open https://<your server>/setup to create the App in one click (SELFHEAL_PUBLIC_URL must be "
    "set), or set GITHUB_APP_ID and GITHUB_PRIVATE_KEY (or GITHUB_PRIVATE_KEY_PATH) from the "
    "App's settings page"
)


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact_text(text)[:300]


def check_redis(settings: Settings) -> list[Check]:
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=3, socket_connect_timeout=3, retry_on_timeout=False
    )
    try:
        client.ping()
        info = client.info("server")
        try:
            persistence = client.info("persistence")
        except Exception:  # some managed Redis services hide INFO sections
            persistence = {}
    except Exception as exc:  # any failure here is the check's answer
        return [
            Check(
                "redis",
                "fail",
                f"cannot reach {redact_text(settings.redis_url)}: {_short(exc)}",
                "start Redis (docker compose up redis, or apt-get install redis-server) and set "
                "REDIS_URL=redis://HOST:6379/0",
            )
        ]
    finally:
        client.close()
    checks = [Check("redis", "ok", f"Redis {info.get('redis_version', '?')} answers PING")]
    if persistence and not int(persistence.get("aof_enabled", 0) or 0):
        checks.append(
            Check(
                "redis persistence",
                "warn",
                "append-only persistence is off: a Redis restart loses queued jobs",
                "run redis-server with --appendonly yes (deploy/docker-compose.yml does)",
            )
        )
    return checks


def check_github_app(settings: Settings) -> Check:
    if settings.github_app_id is None:
        return Check("github app", "fail", "GITHUB_APP_ID is not set", SETUP_HINT)
    try:
        key = settings.private_key()
    except SettingsError as exc:
        return Check("github app", "fail", str(exc), "fix GITHUB_PRIVATE_KEY_PATH")
    if not key:
        return Check("github app", "fail", "the App's private key is not set", SETUP_HINT)
    if "PRIVATE KEY-----" not in key:
        return Check(
            "github app",
            "fail",
            "the private key is not a PEM (no BEGIN ... PRIVATE KEY line)",
            "paste the whole .pem file GitHub generated, or point GITHUB_PRIVATE_KEY_PATH at it",
        )
    from githubkit import AppAuthStrategy, GitHub
    from githubkit.exception import GitHubException, RequestFailed

    try:
        with GitHub(
            AppAuthStrategy(settings.github_app_id, key),
            base_url=settings.github_api_url,
            auto_retry=False,
            http_cache=False,
            timeout=TIMEOUT_S,
        ) as gh:
            data = gh.rest.apps.get_authenticated().json()
    except RequestFailed as exc:
        status = exc.response.status_code
        return Check(
            "github app",
            "fail",
            f"GET /app answered {status} for App {settings.github_app_id}",
            "check that GITHUB_APP_ID and the private key belong to the same App "
            "(generate a new key on the App's settings page if unsure)",
        )
    except (GitHubException, ValueError, OSError) as exc:
        return Check(
            "github app",
            "fail",
            f"cannot reach {settings.github_api_url}: {_short(exc)}",
            "check GITHUB_API_URL and this machine's outbound network",
        )
    slug = data.get("slug") if isinstance(data, dict) else None
    return Check("github app", "ok", f"signed in as App {slug or settings.github_app_id}")


def check_webhook_secrets(settings: Settings) -> list[Check]:
    checks = []
    secret = settings.github_webhook_secret
    if secret is None or not secret.get_secret_value():
        checks.append(
            Check(
                "github webhook secret",
                "fail",
                "GITHUB_WEBHOOK_SECRET is not set: GitHub deliveries would be refused",
                "set GITHUB_WEBHOOK_SECRET to the App's webhook secret (/setup writes it)",
            )
        )
    elif len(secret.get_secret_value()) < 16:
        checks.append(
            Check(
                "github webhook secret",
                "warn",
                "GITHUB_WEBHOOK_SECRET is shorter than 16 characters",
                "use a long random value: python3 -c 'import secrets; "
                "print(secrets.token_hex(20))'",
            )
        )
    else:
        checks.append(Check("github webhook secret", "ok", "set"))
    for name, value, mapping, mapping_name in (
        (
            "sentry webhook secret",
            settings.sentry_client_secret,
            settings.sentry_project_repos,
            "SENTRY_PROJECT_REPOS",
        ),
        (
            "pagerduty webhook secret",
            settings.pagerduty_webhook_secret,
            settings.pagerduty_service_repos,
            "PAGERDUTY_SERVICE_REPOS",
        ),
    ):
        variable = (
            "SENTRY_CLIENT_SECRET" if name.startswith("sentry") else "PAGERDUTY_WEBHOOK_SECRET"
        )
        if value is None and not mapping:
            checks.append(Check(name, "skip", f"{variable} not set: this source is off"))
        elif value is None:
            checks.append(
                Check(
                    name,
                    "fail",
                    f"{mapping_name} is set but {variable} is not: deliveries would be refused",
                    f"set {variable} from the integration's settings",
                )
            )
        elif not mapping:
            checks.append(
                Check(
                    name,
                    "warn",
                    f"{variable} is set but {mapping_name} is empty: no alert maps to a repository",
                    f"set {mapping_name}=name=owner/repo,...",
                )
            )
        else:
            checks.append(Check(name, "ok", f"set; {len(mapping)} mapping(s)"))
    return checks


def _models_call(provider: str, key: str, base_url: str | None) -> str:
    if provider == "openai":
        import openai

        with openai.OpenAI(
            api_key=key, base_url=base_url, timeout=TIMEOUT_S, max_retries=0
        ) as client:
            page = client.models.list()
            return f"{len(page.data)} model(s) listed"
    import anthropic

    with anthropic.Anthropic(
        api_key=key, base_url=base_url, timeout=TIMEOUT_S, max_retries=0
    ) as client:
        listed = client.models.list(limit=1)
        return f"key accepted ({len(listed.data)} model(s) on the first page)"


def check_models(settings: Settings) -> list[Check]:
    used = sorted({spec.partition(":")[0] for spec in settings.models().values()})
    checks = []
    for provider in used:
        if provider not in ("openai", "anthropic"):
            checks.append(Check(f"{provider} key", "skip", f"no check for provider {provider!r}"))
            continue
        variable = f"{provider.upper()}_API_KEY"
        secret = settings.openai_api_key if provider == "openai" else settings.anthropic_api_key
        base = settings.openai_base_url if provider == "openai" else settings.anthropic_base_url
        roles = sorted(r for r, s in settings.models().items() if s.startswith(f"{provider}:"))
        if secret is None:
            checks.append(
                Check(
                    f"{provider} key",
                    "fail",
                    f"{variable} is not set; roles {', '.join(roles)} use {provider}",
                    f"set {variable}, or move those roles with SELFHEAL_MODELS=role=provider:model",
                )
            )
            continue
        try:
            detail = _models_call(provider, secret.get_secret_value(), base)
        except Exception as exc:  # the SDKs raise many kinds; any is a failed check
            status = getattr(exc, "status_code", None)
            checks.append(
                Check(
                    f"{provider} key",
                    "fail",
                    f"GET /models failed ({status or type(exc).__name__}): {_short(exc)}",
                    f"check {variable}"
                    + (f" and {provider.upper()}_BASE_URL" if base else "")
                    + " (a 401 means the key is wrong or revoked)",
                )
            )
            continue
        checks.append(Check(f"{provider} key", "ok", detail))
    return checks


def check_sandbox(settings: Settings, runner: Callable[..., Any] = subprocess.run) -> Check:
    backend = settings.selfheal_sandbox
    if backend == "none":
        return Check(
            "sandbox",
            "warn",
            "SELFHEAL_SANDBOX=none: repository code runs unisolated",
            "install bubblewrap (apt-get install bubblewrap) and set SELFHEAL_SANDBOX=bwrap",
        )
    if backend == "docker":
        binary = shutil.which("docker")
        command = [binary or "docker", "info", "--format", "{{.ServerVersion}}"]
        fix = "install Docker and let this user reach its socket, or use SELFHEAL_SANDBOX=bwrap"
    else:
        binary = shutil.which("bwrap")
        command = [
            binary or "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "true",
        ]
        fix = (
            "install bubblewrap (apt-get install bubblewrap); in a container allow user "
            "namespaces (e.g. run with --security-opt seccomp=unconfined or a runtime that permits "
            "unprivileged user namespaces)"
        )
    if binary is None:
        return Check("sandbox", "fail", f"{command[0]} is not installed", fix)
    try:
        result = runner(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("sandbox", "fail", f"{backend} could not start: {_short(exc)}", fix)
    if result.returncode != 0:
        error = (result.stderr or result.stdout or "").strip().splitlines()
        return Check(
            "sandbox",
            "fail",
            f"{backend} exited {result.returncode}: {error[-1] if error else 'no output'}",
            fix,
        )
    return Check("sandbox", "ok", f"{backend} runs a command isolated")


def check_disk(settings: Settings) -> Check:
    path = settings.selfheal_cache_dir
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_gb = usage.free / 1024**3
    need = settings.selfheal_min_free_disk_gb
    writable = os.access(probe, os.W_OK)
    if not writable:
        return Check(
            "disk",
            "fail",
            f"{path} is not writable by this user",
            "point SELFHEAL_CACHE_DIR at a writable volume",
        )
    if free_gb < need:
        return Check(
            "disk",
            "fail",
            f"{free_gb:.1f} GiB free under {path}; at least {need:g} GiB wanted for clones and "
            "package caches",
            "free space or point SELFHEAL_CACHE_DIR at a larger volume "
            "(SELFHEAL_MIN_FREE_DISK_GB sets the threshold)",
        )
    return Check("disk", "ok", f"{free_gb:.1f} GiB free under {path}")


def run_checks(
    environ: dict[str, str] | None = None, env_file: str | Path | None = ".env"
) -> list[Check]:
    """Every check, in order; a settings error stops the checks that need settings."""
    try:
        settings = load_settings(environ, env_file=env_file)
    except SettingsError as exc:
        return [
            Check("settings", "fail", str(exc), "correct that variable (see deploy/example.env)")
        ]
    checks = [Check("settings", "ok", "all settings parse")]
    if settings.selfheal_public_url is None:
        checks.append(
            Check(
                "public url",
                "warn",
                "SELFHEAL_PUBLIC_URL is not set: /setup guesses it from the request",
                "set SELFHEAL_PUBLIC_URL=https://<host GitHub can reach>",
            )
        )
    if settings.selfheal_admin_token is None:
        checks.append(
            Check(
                "dashboard",
                "warn",
                "SELFHEAL_ADMIN_TOKEN is not set: the dashboard is closed",
                "set SELFHEAL_ADMIN_TOKEN to a long random string",
            )
        )
    checks.extend(check_redis(settings))
    checks.append(check_github_app(settings))
    checks.extend(check_webhook_secrets(settings))
    checks.extend(check_models(settings))
    checks.append(check_sandbox(settings))
    checks.append(check_disk(settings))
    return checks


MARKS = {"ok": "[ok]  ", "fail": "[FAIL]", "warn": "[warn]", "skip": "[skip]"}


def format_checklist(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        lines.append(f"{MARKS[check.status]} {check.name}: {check.detail}")
        if check.fix and check.status in ("fail", "warn"):
            lines.append(f"       fix: {check.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append("")
    lines.append(
        f"{failed} check(s) failed; fix them and run `selfheal doctor` again."
        if failed
        else "All checks passed."
    )
    return "\n".join(lines)
