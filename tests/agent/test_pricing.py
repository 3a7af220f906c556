"""The price table: defaults, dated snapshots, SELFHEAL_PRICES as JSON or a TOML/JSON file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agent.pricing import load_prices
from bot.errors import SettingsError
from bot.settings import load_settings


def test_defaults_and_dated_snapshots() -> None:
    table = load_prices(load_settings({}))
    usage = table.usage("anthropic", "claude-sonnet-4-5-20250929", 1_000_000, 100_000)
    assert usage.cost_usd == pytest.approx(3.0 + 1.5)
    # gpt-4.1-mini must not be priced as gpt-4.1 (longest prefix wins).
    assert table.usage("openai", "gpt-4.1-mini-2025-04-14", 1_000_000, 0).cost_usd == pytest.approx(
        0.4
    )
    # Gateways name models provider/model.
    assert table.usage(
        "openai-compatible", "openai/gpt-4o-mini", 1_000_000, 0
    ).cost_usd == pytest.approx(0.15)
    assert table.usage("openai-compatible", "llama3.1:8b", 10, 10).priced is False


def test_toml_file_overrides_with_provider_specific_keys(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '["qwen2.5-coder"]\ninput = 0.1\noutput = 0.2\n\n'
        '["openai:gpt-4.1"]\ninput = 1\noutput = 4\n'
    )
    table = load_prices(load_settings({"SELFHEAL_PRICES": str(path)}))
    assert table.usage(
        "openai-compatible", "qwen2.5-coder", 10_000_000, 0
    ).cost_usd == pytest.approx(1.0)
    assert table.usage("openai", "gpt-4.1", 0, 1_000_000).cost_usd == pytest.approx(4.0)
    # The provider-specific key does not apply to another provider serving a same-named model.
    assert table.usage("openai-compatible", "gpt-4.1", 0, 1_000_000).cost_usd == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{oops", r"SELFHEAL_PRICES: invalid JSON"),
        ('{"m": {"input": 1}}', r"'m' in the JSON must be"),
        ('{"m": {"input": -1, "output": 1}}', r"non-negative numbers"),
        ('{"m": {"input": "1", "output": 1}}', r"non-negative numbers"),
        ("/nonexistent/prices.toml", r"cannot read /nonexistent/prices.toml"),
    ],
)
def test_bad_price_settings_name_the_variable(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_prices(load_settings({"SELFHEAL_PRICES": value}))


def test_a_broken_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[m\ninput = 1")
    with pytest.raises(SettingsError, match=r"SELFHEAL_PRICES: p.toml is not valid"):
        load_prices(load_settings({"SELFHEAL_PRICES": str(path)}))
