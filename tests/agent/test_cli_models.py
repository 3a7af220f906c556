"""`selfheal models --check`: one real call per configured model, through the console script."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bot.cli import app
from tests.support.fake_llm import (
    TEST_ANTHROPIC_KEY,
    TEST_OPENAI_KEY,
    Reply,
    anthropic_reply,
    fake_anthropic,
    fake_openai,
    openai_error,
    openai_reply,
)

BLANK = {
    "OPENAI_API_KEY": "",
    "ANTHROPIC_API_KEY": "",
    "OPENAI_BASE_URL": "",
    "ANTHROPIC_BASE_URL": "",
    "SELFHEAL_MODELS": "",
    "SELFHEAL_PRICES": "",
}


def test_check_calls_each_distinct_model_once() -> None:
    with fake_openai() as oa, fake_anthropic() as an:
        oa.queue(openai_reply(tool_calls=[("c1", "ping", {"word": "ok"})], usage=(50, 10)))
        an.queue(anthropic_reply(tool_uses=[("t1", "ping", {"word": "ok"})], usage=(60, 12)))
        env = {
            **BLANK,
            "OPENAI_API_KEY": TEST_OPENAI_KEY,
            "OPENAI_BASE_URL": oa.base_url,
            "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": an.base_url,
        }
        result = CliRunner().invoke(app, ["models", "--check", "--json"], env=env)
        assert result.exit_code == 0, result.output
        rows = {row["role"]: row for row in json.loads(result.output)["models"]}
        assert rows["planner"]["spec"] == "anthropic:claude-sonnet-4-5"
        assert rows["planner"]["check"]["tool_call"] is True
        assert rows["planner"]["check"]["input_tokens"] == 60
        assert rows["reviewer"]["check"]["output_tokens"] == 10
        assert rows["reviewer"]["price_per_million"] == {"input": 0.4, "output": 1.6}
        assert len(oa.completions()) == len(an.completions()) == 1
        assert oa.completions()[0].body["tools"][0]["function"]["name"] == "ping"


def test_check_reports_each_failure_and_exits_1() -> None:
    with fake_openai() as oa:
        oa.queue(Reply(401, openai_error(401, "Incorrect API key provided: sk-te***789")))
        env = {
            **BLANK,
            "OPENAI_API_KEY": "sk-wrong-but-long-enough-1234",
            "OPENAI_BASE_URL": oa.base_url,
        }
        result = CliRunner().invoke(
            app,
            [
                "models",
                "--check",
                "--model",
                "openai:gpt-4.1",
                "--model",
                "fixer=anthropic:claude-haiku-4-5",
            ],
            env=env,
        )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(
        line.startswith("planner") and "FAILED" in line and "HTTP 401" in line for line in lines
    )
    assert any(
        line.startswith("fixer") and "ANTHROPIC_API_KEY is not set" in line for line in lines
    )
    assert "sk-wrong-but-long-enough-1234" not in result.output


def test_an_unknown_provider_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["models", "--model", "planner=gemini:pro"], env=BLANK)
    assert result.exit_code == 2
    assert "unknown model provider 'gemini'" in result.output
