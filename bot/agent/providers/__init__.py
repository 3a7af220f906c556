"""Model providers behind one interface: `make_model("provider:model", settings, role=...)`.

Providers: `openai:MODEL` (OPENAI_API_KEY, OPENAI_BASE_URL), `openai-compatible:MODEL[@URL]`
(OPENAI_COMPATIBLE_BASE_URL, OPENAI_COMPATIBLE_API_KEY), `anthropic:MODEL` (ANTHROPIC_API_KEY,
ANTHROPIC_BASE_URL) and `scripted:FILE` (replays turns from a script or a trajectory).
May import: bot.errors, bot.redact, bot.settings, bot.agent.messages, bot.agent.pricing,
bot.agent.trajectory and the modules of this package. Every model `make_model` returns counts
its calls, tokens and cost in bot.metrics (providers/metered.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.agent.messages import ChatModel
from bot.agent.pricing import PriceTable, load_prices
from bot.agent.providers.metered import MeteredModel
from bot.agent.providers.retry import RetryPolicy
from bot.agent.providers.scripted import Script, ScriptedModel, load_script
from bot.errors import SettingsError, UsageError
from bot.redact import redact
from bot.settings import Settings

ROLES: tuple[str, ...] = ("planner", "localizer", "reproducer", "fixer", "reviewer")
PROVIDERS: tuple[str, ...] = ("openai", "openai-compatible", "anthropic", "scripted")
_ACCEPTED = "use openai:MODEL, openai-compatible:MODEL@BASE_URL, anthropic:MODEL or scripted:FILE"

__all__ = [
    "PROVIDERS",
    "ROLES",
    "ScriptCache",
    "make_model",
    "make_models",
    "parse_spec",
    "resolve_model_specs",
    "retry_policy",
]


class ScriptCache:
    """Loaded scripts by resolved path, so every role made from one file shares its queues."""

    def __init__(self) -> None:
        self._scripts: dict[Path, Script] = {}

    def get(self, path: str) -> Script:
        resolved = Path(path).expanduser().resolve()
        if resolved not in self._scripts:
            script = load_script(resolved)
            script.source = Path(path)
            self._scripts[resolved] = script
        return self._scripts[resolved]


def parse_spec(spec: str) -> tuple[str, str]:
    """`provider:model` -> (provider, model); UsageError naming the accepted providers."""
    provider, sep, model = spec.strip().partition(":")
    provider = provider.strip().lower()
    shown = redact(spec)[:200]
    if not sep or not model.strip():
        raise UsageError(f"model {shown!r} is not PROVIDER:MODEL: {_ACCEPTED}")
    if provider not in PROVIDERS:
        raise UsageError(f"unknown model provider {provider[:40]!r} in {shown!r}: {_ACCEPTED}")
    return provider, model.strip()


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.selfheal_model_max_attempts,
        max_total_wait_s=settings.selfheal_model_max_retry_wait_s,
        timeout_s=settings.selfheal_model_timeout_s,
        base_delay_s=settings.selfheal_model_retry_base_s,
    )


def _key(value: object, variable: str, spec: str, role: str) -> str:
    secret = getattr(value, "get_secret_value", None)
    key = secret() if callable(secret) else None
    if not key:
        raise SettingsError(
            f"{variable} is not set: role {role} uses {spec}; set it, or pick another model "
            f"with --model {role}=PROVIDER:MODEL"
        )
    return str(key)


def make_model(
    spec: str,
    settings: Settings,
    *,
    role: str,
    scripts: ScriptCache | None = None,
    prices: PriceTable | None = None,
) -> ChatModel:
    """The ChatModel for `spec`. Pass one `scripts` cache to share scripted queues across roles."""
    return MeteredModel(_make_model(spec, settings, role=role, scripts=scripts, prices=prices))


def _make_model(
    spec: str,
    settings: Settings,
    *,
    role: str,
    scripts: ScriptCache | None,
    prices: PriceTable | None,
) -> ChatModel:
    provider, model = parse_spec(spec)
    if provider == "scripted":
        script = (scripts or ScriptCache()).get(model)
        return ScriptedModel(script, role=role)
    table = prices or load_prices(settings)
    policy = retry_policy(settings)
    max_tokens = settings.selfheal_model_max_output_tokens
    if provider == "anthropic":
        from bot.agent.providers.anthropic_messages import AnthropicModel

        return AnthropicModel(
            model,
            api_key=_key(settings.anthropic_api_key, "ANTHROPIC_API_KEY", spec, role),
            base_url=settings.anthropic_base_url,
            policy=policy,
            prices=table,
            max_output_tokens=max_tokens,
        )
    from bot.agent.providers.openai_chat import OpenAIChatModel

    if provider == "openai":
        return OpenAIChatModel(
            model,
            api_key=_key(settings.openai_api_key, "OPENAI_API_KEY", spec, role),
            base_url=settings.openai_base_url,
            policy=policy,
            prices=table,
            max_output_tokens=max_tokens,
        )
    # openai-compatible: MODEL@BASE_URL, or OPENAI_COMPATIBLE_BASE_URL
    name, at, url = model.partition("@")
    base_url = url.strip() if at else settings.openai_compatible_base_url
    if not name.strip() or not base_url:
        raise SettingsError(
            f"{redact(spec)!r}: no server for role {role}; write "
            "openai-compatible:MODEL@BASE_URL or set OPENAI_COMPATIBLE_BASE_URL"
        )
    if not re.match(r"^https?://", base_url):
        raise UsageError(f"{redact(spec)!r}: the base URL must start with http:// or https://")
    key = settings.openai_compatible_api_key
    return OpenAIChatModel(
        name.strip(),
        # Local servers need no key, but the SDK insists on one; send a placeholder.
        api_key=key.get_secret_value() if key is not None else "unused",
        base_url=base_url,
        policy=policy,
        prices=table,
        max_output_tokens=max_tokens,
        provider="openai-compatible",
    )


def make_models(specs: Mapping[str, str], settings: Settings) -> dict[str, ChatModel]:
    """One ChatModel per role; roles naming the same script file share its per-role queues."""
    scripts = ScriptCache()
    prices = load_prices(settings)
    return {
        role: make_model(spec, settings, role=role, scripts=scripts, prices=prices)
        for role, spec in specs.items()
    }


_ROLE_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=(.+)$")


def resolve_model_specs(
    base: Mapping[str, str], overrides: Sequence[str] = (), *, roles: Sequence[str] = ROLES
) -> dict[str, str]:
    """Apply `--model` values to `base` (role -> spec): `ROLE=PROVIDER:MODEL` sets one role,
    a bare `PROVIDER:MODEL` (e.g. `scripted:demo.json`) sets every role. Later values win."""
    result = {role: base[role] for role in roles if role in base}
    result.update({k: v for k, v in base.items() if k not in result})
    for value in overrides:
        match = _ROLE_SPEC.match(value)
        if match and ":" not in match.group(1):
            role, spec = match.group(1), match.group(2).strip()
            if role not in roles:
                raise UsageError(
                    f"--model {value!r}: unknown role {role!r}; roles are {', '.join(roles)}"
                )
            parse_spec(spec)
            result[role] = spec
        else:
            parse_spec(value)
            for role in roles:
                result[role] = value.strip()
    return result
