"""The team through the real openai and anthropic SDKs, talking HTTP to local fake servers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.agent.team import AgentTask, run_team
from bot.localize import localize
from bot.repo_config import RepoConfig
from bot.sandbox import Sandbox
from bot.settings import load_settings
from bot.toolchain import TestPlan
from bot.validate import validate
from bot.workspace import Workspace
from tests.support.agent_samples import SHOP, Sample, team_script
from tests.support.fake_llm import (
    TEST_ANTHROPIC_KEY,
    TEST_OPENAI_KEY,
    anthropic_reply,
    fake_anthropic,
    fake_openai,
    openai_reply,
)

Checkout = Callable[[Sample], Workspace]


def test_planner_on_anthropic_and_sub_agents_on_openai_fix_the_bug(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan, tmp_path: Path
) -> None:
    ws = checkout(SHOP)
    script = team_script(SHOP)
    with fake_anthropic() as claude, fake_openai() as gpt:
        for r in script["planner"]:
            calls = [(c.id, c.name, c.arguments or {}) for c in r.tool_calls]
            claude.queue(anthropic_reply(r.content or None, tool_uses=calls, usage=(900, 60)))
        for role in ("localizer", "reproducer", "fixer", "reviewer"):
            for r in script[role]:
                calls = [(c.id, c.name, c.arguments or {}) for c in r.tool_calls]
                gpt.queue(openai_reply(r.content or None, tool_calls=calls, usage=(400, 30)))
        settings = load_settings(
            {
                "OPENAI_API_KEY": TEST_OPENAI_KEY,
                "OPENAI_BASE_URL": gpt.base_url,
                "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
                "ANTHROPIC_BASE_URL": claude.base_url,
            }
        )
        models: dict[str, str] = {
            "planner": "anthropic:claude-sonnet-4-5",
            **{r: "openai:gpt-4.1-mini" for r in ("localizer", "reproducer", "fixer", "reviewer")},
        }
        incident = SHOP.incident()
        result = run_team(
            AgentTask(
                incident=incident,
                workspace=ws,
                sandbox=sandbox,
                plan=plan,
                localization=localize(incident, ws.path),
                models=models,
                trajectory_path=tmp_path / "trajectory.jsonl",
                settings=settings,
            )
        )
        assert claude.violations == [] and gpt.violations == []
        assert claude.pending == 0 and gpt.pending == 0
        # the planner's request carried the delegate tool and the sub-agent reports only
        last = claude.completions()[-1].body
        assert any(t["name"] == "delegate" for t in last["tools"])
        assert "reviewer finished." in str(last["messages"])
        assert "edited shop/cart.py" not in str(last["messages"])

    assert result.status == "finished", result.message
    assert not result.scripted
    assert result.models == {
        "planner": "anthropic:claude-sonnet-4-5",
        "localizer": "openai:gpt-4.1-mini",
        "reproducer": "openai:gpt-4.1-mini",
        "fixer": "openai:gpt-4.1-mini",
        "reviewer": "openai:gpt-4.1-mini",
    }
    assert result.usage["planner"].input_tokens == 5 * 900
    assert result.usage["fixer"].output_tokens == 3 * 30
    assert result.usage["planner"].usd > 0  # priced from the table
    trajectory = (tmp_path / "trajectory.jsonl").read_text()
    assert TEST_OPENAI_KEY not in trajectory and TEST_ANTHROPIC_KEY not in trajectory
    assert validate(ws, sandbox, plan, RepoConfig(), result.reproduction_test).validated
