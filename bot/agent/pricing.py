"""The price table: USD per million input / output tokens per model, and the cost of a call.

Defaults below cover the models the bot names; SELFHEAL_PRICES (inline JSON, or a path to a
.json / .toml file) adds or replaces entries: `{"MODEL": {"input": 3.0, "output": 15.0}}`.
Keys may be a bare model name or `provider:model`. A model that matches nothing costs 0 and its
Usage says `priced=False`. May import: bot.errors, bot.settings, bot.agent.messages.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.agent.messages import Usage
from bot.errors import SettingsError
from bot.settings import Settings


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float


# Public list prices (USD per 1M tokens, standard tier, no caching) as of late 2025.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.4),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-4.1-nano": Price(0.1, 0.4),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "o3": Price(2.0, 8.0),
    "o4-mini": Price(1.1, 4.4),
}


class PriceTable:
    """Looks up a model's price: exact key, then the longest known prefix (dated snapshots)."""

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self.prices = dict(prices)

    def price_for(self, provider: str, model: str) -> Price | None:
        for key in (f"{provider}:{model}", model, model.rsplit("/", 1)[-1]):
            if key in self.prices:
                return self.prices[key]
        bare = model.rsplit("/", 1)[-1]
        matches = [k for k in self.prices if ":" not in k and bare.startswith(k + "-")]
        if matches:
            return self.prices[max(matches, key=len)]
        return None

    def usage(self, provider: str, model: str, input_tokens: int, output_tokens: int) -> Usage:
        price = self.price_for(provider, model)
        if price is None:
            return Usage(input_tokens, output_tokens, 0.0, priced=False)
        cost = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
        return Usage(input_tokens, output_tokens, cost, priced=True)


def _parse_overrides(raw: Any, origin: str) -> dict[str, Price]:
    if not isinstance(raw, dict):
        raise SettingsError(
            f'SELFHEAL_PRICES: {origin} must map model -> {{"input": N, "output": N}}'
        )
    prices: dict[str, Price] = {}
    for model, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise SettingsError(
                f'SELFHEAL_PRICES: {model!r} in {origin} must be {{"input": N, "output": N}}'
            )
        values = [entry["input"], entry["output"]]
        if (
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            or min(values) < 0
        ):
            raise SettingsError(
                f"SELFHEAL_PRICES: {model!r} in {origin}: prices must be non-negative numbers"
            )
        prices[str(model)] = Price(float(entry["input"]), float(entry["output"]))
    return prices


def load_prices(settings: Settings) -> PriceTable:
    """The default table with SELFHEAL_PRICES applied; SettingsError names what is wrong."""
    raw = (settings.selfheal_prices or "").strip()
    if not raw:
        return PriceTable(DEFAULT_PRICES)
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"SELFHEAL_PRICES: invalid JSON ({exc.msg})") from None
        return PriceTable({**DEFAULT_PRICES, **_parse_overrides(data, "the JSON")})
    path = Path(raw)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"SELFHEAL_PRICES: cannot read {path} ({exc.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"SELFHEAL_PRICES: {path.name} is not valid ({exc})") from None
    return PriceTable({**DEFAULT_PRICES, **_parse_overrides(data, path.name)})
