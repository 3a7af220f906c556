"""`selfheal models`: which model each role uses, and (`--check`) one real call to each.

May import: bot.cli, bot.errors, bot.settings, bot.agent.providers, bot.agent.pricing,
bot.agent.messages.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from bot.agent.messages import Message, ToolSpec
from bot.agent.pricing import load_prices
from bot.agent.providers import ROLES, ScriptCache, make_model, parse_spec, resolve_model_specs
from bot.cli import app, fail
from bot.errors import SelfhealError
from bot.settings import Settings, load_settings

PING = ToolSpec(
    "ping",
    "Answer a connectivity check.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)
PROMPT = 'This is a connectivity check. Call the ping tool with {"word": "ok"} and nothing else.'


def check_model(spec: str, settings: Settings, role: str) -> dict[str, Any]:
    """One small call with one tool; what came back, how long it took and what it cost."""
    started = time.monotonic()
    try:
        model = make_model(spec, settings, role=role, scripts=ScriptCache())
        reply = model.complete([Message("user", PROMPT)], [PING], role=role)
    except SelfhealError as error:
        return {"spec": spec, "ok": False, "error": str(error)}
    return {
        "spec": spec,
        "ok": True,
        "tool_call": any(c.name == "ping" for c in reply.tool_calls),
        "stop_reason": reply.stop_reason,
        "input_tokens": reply.usage.input_tokens,
        "output_tokens": reply.usage.output_tokens,
        "cost_usd": round(reply.usage.cost_usd, 6),
        "priced": reply.usage.priced,
        "elapsed_s": round(time.monotonic() - started, 2),
    }


def describe(settings: Settings, specs: dict[str, str]) -> list[dict[str, Any]]:
    prices = load_prices(settings)
    rows = []
    for role, spec in specs.items():
        provider, model = parse_spec(spec)
        name = model.partition("@")[0] if provider == "openai-compatible" else model
        price = None if provider == "scripted" else prices.price_for(provider, name)
        rows.append(
            {
                "role": role,
                "spec": spec,
                "price_per_million": None
                if price is None
                else {"input": price.input, "output": price.output},
            }
        )
    return rows


@app.command("models")
def models_command(
    model: list[str] = typer.Option(
        [], "--model", help="ROLE=PROVIDER:MODEL, or PROVIDER:MODEL for every role."
    ),
    check: bool = typer.Option(False, "--check", help="Make one small call to each model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show the model of each role; with --check, call each once (tool use, tokens, cost)."""
    try:
        settings = load_settings()
        specs = resolve_model_specs(settings.models(), model, roles=ROLES)
        rows = describe(settings, specs)
        checks: dict[str, dict[str, Any]] = {}
        if check:
            for row in rows:
                if row["spec"] not in checks:
                    checks[row["spec"]] = check_model(row["spec"], settings, row["role"])
                row["check"] = checks[row["spec"]]
    except SelfhealError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps({"models": rows}, indent=2))
    else:
        for row in rows:
            price = row["price_per_million"]
            cost = (
                "no price" if price is None else f"${price['input']:g}/${price['output']:g} per M"
            )
            line = f"{row['role']:<11} {row['spec']}  ({cost})"
            result = row.get("check")
            if result is not None:
                if result["ok"]:
                    line += (
                        f"  ok in {result['elapsed_s']}s, tool call "
                        f"{'yes' if result['tool_call'] else 'NO'}, "
                        f"{result['input_tokens']}+{result['output_tokens']} tokens, "
                        f"${result['cost_usd']:.6f}"
                    )
                else:
                    line += f"  FAILED: {result['error']}"
            typer.echo(line)
    if any(not c["ok"] for c in checks.values()):
        raise typer.Exit(1)
