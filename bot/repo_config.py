"""The repository's `.github/selfheal.yml`: schema, safe defaults, and a loader whose errors
name the field and the line. May import: bot.errors.

The file is read from the default branch only, so a pull request cannot loosen its own policy.
An absent file gives the defaults; an invalid one raises ConfigError (the job then ends as a
report and the bot explains the error where the job was triggered).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError

CONFIG_PATH = ".github/selfheal.yml"
# The bot's own config can never be changed by a fix, whatever `allowed_paths` says.
SELF_CONFIG_PATHS: tuple[str, ...] = (CONFIG_PATH, ".github/selfheal.yaml")
MAX_CONFIG_BYTES = 64 * 1024

# Paths a fix may never touch unless the repository lists them in `policy.allowed_paths`:
# CI, dependency manifests and lockfiles, migrations, ownership and the bot's own config.
DEFAULT_FORBIDDEN_PATHS: tuple[str, ...] = (
    ".github/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    "Jenkinsfile",
    "azure-pipelines.yml",
    ".travis.yml",
    "CODEOWNERS",
    "docs/CODEOWNERS",
    "**/migrations/**",
    "**/pyproject.toml",
    "**/setup.py",
    "**/setup.cfg",
    "**/requirements*.txt",
    "**/Pipfile",
    "**/Pipfile.lock",
    "**/poetry.lock",
    "**/uv.lock",
    "**/package.json",
    "**/package-lock.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/go.mod",
    "**/go.sum",
    "**/Cargo.toml",
    "**/Cargo.lock",
    "**/Gemfile",
    "**/Gemfile.lock",
    "**/Dockerfile",
)

Source = Literal["sentry", "pagerduty", "github", "traceback", "nodejs", "local"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Severity = Literal[
    "debug", "info", "low", "warning", "medium", "error", "high", "critical", "fatal"
]


WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
MERGE_SOURCES: tuple[Source, ...] = ("sentry", "pagerduty", "github")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_hhmm(value: object) -> str:
    """Normalize a time of day to HH:MM; accepts `9:30`, `09:30` and quoted forms."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError('expected a time as HH:MM (quote it: "09:30")')
    hours, sep, minutes = value.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"expected a time as HH:MM, got {value!r}")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{value!r} is not a time of day (00:00 to 23:59)")
    return f"{int(hours):02d}:{minutes}"


class MergeWindow(_Strict):
    """A time window in which the bot may merge, in `tz` (an IANA zone, UTC by default).

    `start` and `end` are inclusive, minute resolution. When `end` is before `start` the
    window runs past midnight (22:00-06:00) and belongs to the day it starts on.
    """

    days: list[Weekday] = Field(default_factory=lambda: list(WORKDAYS))
    start: str = "00:00"  # HH:MM
    end: str = "23:59"
    tz: str = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, value: object) -> str:
        return _parse_hhmm(value)

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
            ) from None
        return value


class PolicyConfig(_Strict):
    """The merge policy's knobs. Defaults are shadow mode: never merge, record what would merge."""

    auto_merge: bool = False
    auto_merge_sources: list[Source] = Field(default_factory=lambda: list(MERGE_SOURCES))
    max_changed_lines: int = Field(default=40, ge=0)
    max_changed_files: int = Field(default=3, ge=0)
    allowed_paths: list[str] = Field(default_factory=list)  # empty: anywhere not forbidden
    forbidden_paths: list[str] = Field(default_factory=list)  # added to the defaults
    min_severity: Severity | None = None  # merge only at or above this severity
    daily_merge_cap: int = Field(default=3, ge=0)
    merge_windows: list[MergeWindow] = Field(default_factory=list)  # empty: any time
    allow_flaky: bool = False
    allow_sleeps: bool = False
    allow_retries: bool = False
    allow_timeout_increase: bool = False
    merge_method: Literal["merge", "squash", "rebase"] = "squash"


class BudgetConfig(_Strict):
    """Per-job limits; when one runs out the job ends with a report."""

    max_steps: int = Field(default=60, ge=1)
    max_tokens: int = Field(default=2_000_000, ge=1)
    max_usd: float = Field(default=5.0, ge=0)
    max_wall_s: int = Field(default=1800, ge=1)


class RepoConfig(_Strict):
    """The whole `.github/selfheal.yml`."""

    version: Literal[1] = 1
    setup: list[str] | None = None  # commands; install phase (may reach package registries)
    test: str | None = None  # the test command; detected when absent
    env: dict[str, str] = Field(default_factory=dict)  # non-secret variables for setup and tests
    models: dict[str, str] = Field(default_factory=dict)  # role -> provider:model
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    candidates: int = Field(default=1, ge=1, le=5)
    flake_reruns: int = Field(default=3, ge=0, le=10)
    revise_on_review_comments: bool = True
    labels: list[str] = Field(default_factory=lambda: ["selfheal"])

    @property
    def forbidden_paths(self) -> tuple[str, ...]:
        return (*DEFAULT_FORBIDDEN_PATHS, *self.policy.forbidden_paths)


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 base-60 numbers, so `9:30` stays the text "9:30"."""


# PyYAML's int and float patterns (resolver.py) minus their base-60 alternatives.
_INT = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, _INT if tag.endswith(":int") else _FLOAT if tag.endswith(":float") else rx)
        for tag, rx in resolvers
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    try:
        node: Any = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == key]
            if not match:
                break
            line = next(k for k, v in node.value if v is match[0]).start_mark.line + 1
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def parse_repo_config(text: str, path: str = CONFIG_PATH) -> RepoConfig:
    """Parse and validate the file's text; ConfigError names the field and the line."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: file is larger than {MAX_CONFIG_BYTES // 1024} KB")
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: line 1: expected a mapping of settings, got {type(data).__name__}"
        )
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = _line_of(text, loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        where = f" line {line}:" if line else ""
        raise ConfigError(f"{path}:{where} {field}: {message}") from None


def load_repo_config(worktree: Path) -> RepoConfig:
    """Read `.github/selfheal.yml` from a checked-out tree; defaults when absent."""
    path = worktree / CONFIG_PATH
    if not path.is_file():
        return RepoConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONFIG_PATH}: cannot read the file ({exc})") from None
    return parse_repo_config(text)
