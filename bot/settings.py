"""The one typed settings object, read from the environment and an optional `.env`.

Nothing else in the bot reads the environment. Secrets are `SecretStr`: they never appear in
reprs, errors, logs or `--help`. May import: bot.errors.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.errors import SettingsError

Mapping_ = Annotated[dict[str, str], NoDecode]
SandboxBackend = Literal["bwrap", "docker", "none"]

DEFAULT_MODELS: dict[str, str] = {
    # A frontier model plans and fixes; small fast models localize, reproduce and review.
    "planner": "anthropic:claude-sonnet-4-5",
    "fixer": "anthropic:claude-sonnet-4-5",
    "localizer": "openai:gpt-4.1-mini",
    "reproducer": "openai:gpt-4.1-mini",
    "reviewer": "openai:gpt-4.1-mini",
}


def _parse_mapping(value: Any) -> dict[str, str]:
    """Parse `a=b,c=d` (or a dict) into a mapping; used by the *_REPOS variables."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if value is None or value == "":
        return {}
    result: dict[str, str] = {}
    for part in str(value).split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, target = part.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise ValueError(f"expected KEY=owner/repo pairs separated by commas, got {part!r}")
        result[key.strip()] = target.strip()
    return result


class Settings(BaseSettings):
    """Every setting of the bot. Field names are the environment variable names, lowercased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # GitHub App
    github_app_id: int | None = None
    github_private_key: SecretStr | None = None
    github_private_key_path: Path | None = None
    github_webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_app_slug: str | None = None
    github_trigger_label: str = "selfheal"
    github_write_interval_s: float = 1.0  # pause between GitHub writes (secondary limits)

    # Sentry (as a signal source)
    sentry_client_secret: SecretStr | None = None
    sentry_auth_token: SecretStr | None = None
    sentry_api_url: str = "https://sentry.io/api/0"
    sentry_project_repos: Mapping_ = Field(default_factory=dict)

    # PagerDuty
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_api_token: SecretStr | None = None
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_service_repos: Mapping_ = Field(default_factory=dict)
    pagerduty_from_email: str | None = None

    # Queue
    redis_url: str = "redis://127.0.0.1:6379/0"

    # Models
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    selfheal_models: Mapping_ = Field(default_factory=dict)

    # The bot's own error reporting
    sentry_dsn: SecretStr | None = None
    selfheal_environment: str = "production"

    # Where the bot keeps things
    selfheal_cache_dir: Path = Path.home() / ".cache" / "selfheal"
    selfheal_artifacts_dir: Path = Path("selfheal-artifacts")
    selfheal_sandbox: SandboxBackend = "bwrap"
    # Extra host paths visible read-only inside the sandbox (toolchains outside /usr), comma separated.
    selfheal_sandbox_ro_paths: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    selfheal_docker_image: str = "python:3.11-slim"  # image for SELFHEAL_SANDBOX=docker
    selfheal_cache_max_mb: int = 10_240  # mirrors and environments; least recently used go first
    # Hosts the install phase may reach (comma-separated; "*" = unfiltered network). Empty:
    # the public package registries (bot.sandbox.egress.DEFAULT_ALLOW).
    selfheal_egress_allow: str = ""
    # Index options for the install phase's `uv pip install`, shell-split (a private index:
    # "--index-url https://pypi.example.com/simple"; a wheelhouse: "--offline --no-index
    # --find-links /srv/wheels", listed in SELFHEAL_SANDBOX_RO_PATHS). Empty: uv's defaults.
    selfheal_uv_index_args: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Operating the bot: setup flow, dashboard, logs, doctor
    selfheal_public_url: str | None = None  # https://selfheal.example.com, used by /setup
    selfheal_env_file: Path = Path(".env")  # where /setup writes the new App's credentials
    selfheal_admin_token: SecretStr | None = None  # opens the dashboard at /
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    selfheal_admin_users: str | None = None  # GitHub logins that may sign in to the dashboard
    selfheal_log_format: Literal["auto", "json", "console"] = "auto"
    selfheal_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    selfheal_release: str | None = None  # reported to Sentry; defaults to the package version
    selfheal_min_free_disk_gb: float = 5.0  # doctor fails below this much free cache space

    # --- intake: webhooks, job queue, worker (docs/intake.md) ---
    # Delivery ids are remembered this long for dedupe (>= the 7-day redelivery windows).
    selfheal_delivery_retention_seconds: Annotated[int, Field(ge=7 * 24 * 3600)] = 7 * 24 * 3600
    # After a job for a fingerprint ends, new events with that fingerprint join it this long.
    selfheal_fingerprint_cooldown_seconds: Annotated[int, Field(ge=0)] = 3600
    # Jobs one installation may start per clock hour; more wait for the next hour.
    selfheal_installation_jobs_per_hour: Annotated[int, Field(ge=1)] = 20
    # How long finished job records stay in Redis.
    selfheal_job_retention_seconds: Annotated[int, Field(ge=60)] = 30 * 24 * 3600
    # A job whose worker died this many times is quarantined.
    selfheal_max_attempts: Annotated[int, Field(ge=1)] = 3
    # A running job's lease; a worker that stops renewing it this long is presumed dead.
    selfheal_lease_seconds: Annotated[int, Field(ge=1, le=600)] = 10
    # `module:function` run for each job; unset means bot.pipeline.run_job.
    selfheal_job_handler: str | None = None
    # How often a worker redelivers the App's failed GitHub deliveries (0 turns it off).
    selfheal_redeliver_interval_seconds: Annotated[int, Field(ge=0)] = 600
    # --- end intake ---

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values given to the constructor, then the `.env` file; never os.environ directly:
        # load_settings passes the environment it was given, so a mapping is the whole input.
        return init_settings, dotenv_settings

    @field_validator(
        "sentry_project_repos", "pagerduty_service_repos", "selfheal_models", mode="before"
    )
    @classmethod
    def _mapping(cls, value: Any) -> dict[str, str]:
        return _parse_mapping(value)

    @field_validator("selfheal_sandbox_ro_paths", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> list[Path]:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(",") if p.strip()]
        return list(value or [])

    @field_validator("selfheal_uv_index_args", mode="before")
    @classmethod
    def _shell_words(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"not a valid shell-quoted list of arguments ({exc})") from None
        return [str(v) for v in value or []]

    def private_key(self) -> str | None:
        """The App's private key, from GITHUB_PRIVATE_KEY or the file at GITHUB_PRIVATE_KEY_PATH."""
        if self.github_private_key is not None:
            return self.github_private_key.get_secret_value().replace("\\n", "\n")
        if self.github_private_key_path is not None:
            try:
                return self.github_private_key_path.read_text()
            except OSError as exc:
                raise SettingsError(
                    f"GITHUB_PRIVATE_KEY_PATH: cannot read {self.github_private_key_path} "
                    f"({exc.strerror}); point it at the App's .pem file"
                ) from exc
        return None

    def secret_values(self) -> list[str]:
        """Every configured secret's value (each SecretStr field that is set and not empty)."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [
            value.get_secret_value()
            for value in values
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]

    def models(self) -> dict[str, str]:
        """Role -> provider:model, defaults overridden by SELFHEAL_MODELS."""
        return {**DEFAULT_MODELS, **self.selfheal_models}

    # --- model providers: calls, retries, prices ---
    # Hard limit for one model call (connect + response), seconds.
    selfheal_model_timeout_s: float = Field(default=120.0, gt=0)
    # Attempts per call, counting the first; 429 / 5xx / timeouts are retried.
    selfheal_model_max_attempts: int = Field(default=4, ge=1, le=20)
    # Most seconds spent waiting between attempts of one call, all waits together.
    selfheal_model_max_retry_wait_s: float = Field(default=90.0, ge=0)
    # First backoff between attempts when the server gives no Retry-After; doubles per attempt.
    selfheal_model_retry_base_s: float = Field(default=1.0, ge=0)
    # Most tokens a model may write in one reply.
    selfheal_model_max_output_tokens: int = Field(default=8192, ge=1)
    # Price overrides in USD per million tokens: inline JSON
    # {"model": {"input": 3.0, "output": 15.0}} or a path to a .json / .toml file of that shape.
    selfheal_prices: str | None = None
    # Any OpenAI-compatible server (vLLM, Ollama, a gateway) for `openai-compatible:MODEL`;
    # `openai-compatible:MODEL@BASE_URL` names the server per role instead. The key is optional
    # and never falls back to OPENAI_API_KEY, so that key is not sent to another host.
    openai_compatible_base_url: str | None = None
    openai_compatible_api_key: SecretStr | None = None

    # --- delivery on GitHub: how long a `merge` decision waits for the PR's checks ---
    # Most seconds to wait for green checks before a REST merge (then the merge stays pending).
    selfheal_checks_wait_s: float = Field(default=300.0, ge=0)
    # With no checks at all on the PR: wait this long for CI to appear before merging.
    selfheal_checks_settle_s: float = Field(default=30.0, ge=0)
    # Seconds between two reads of the PR's checks while waiting.
    selfheal_checks_poll_s: float = Field(default=5.0, gt=0)


_EXPECTS = {
    "int_parsing": "an integer",
    "literal_error": "one of the listed values",
    "url_parsing": "a URL",
    "bool_parsing": "true or false",
}


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Build Settings from `environ` (default: the process environment) and `env_file`.

    Raises SettingsError with one line naming the variable and what it expects.
    """
    env = dict(os.environ if environ is None else environ)
    try:
        # Settings reads no environment itself (settings_customise_sources): these values rank
        # above the `.env` file, which is read only when no mapping is given.
        fields = Settings.model_fields
        values: dict[str, Any] = {n: env[n.upper()] for n in fields if n.upper() in env}
        if environ is not None:
            values["_env_file"] = None
        else:
            values["_env_file"] = env_file
        return Settings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        expects = _EXPECTS.get(error["type"], "")
        detail = (
            error["msg"].removeprefix("Value error, ") if not expects else f"expected {expects}"
        )
        if error["type"] == "literal_error":
            detail = error["msg"].replace("Input should be", "expected")
        raise SettingsError(f"{name}: invalid value ({detail})") from None
