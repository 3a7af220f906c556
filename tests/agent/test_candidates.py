"""N candidates: each run starts from the base; the validated, smaller patch wins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.agent.candidates import run_candidates
from bot.agent.team import AgentTask
from bot.agent.trajectory import read_trajectory
from bot.localize import localize
from bot.repo_config import BudgetConfig, RepoConfig
from bot.sandbox import Sandbox
from bot.toolchain import TestPlan
from bot.workspace import Workspace
from tests.agent.conftest import ReplyQueue
from tests.support.agent_samples import SHOP, Sample, call, team_script, turn

Checkout = Callable[[Sample], Workspace]


def test_the_masking_candidate_loses_to_the_real_fix(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan, tmp_path: Path
) -> None:
    ws = checkout(SHOP)
    masking = team_script(SHOP)
    masking["fixer"] = [
        turn(call("write_file", path=SHOP.repro_path, content="def test_ok():\n    pass\n")),
        turn(call("finish", summary="made the test pass")),
    ]
    honest = team_script(SHOP)
    models = {role: ReplyQueue(masking[role] + honest[role]) for role in ("planner", *SHOP_ROLES)}
    incident = SHOP.incident()
    task = AgentTask(
        incident=incident,
        workspace=ws,
        sandbox=sandbox,
        plan=plan,
        localization=localize(incident, ws.path),
        models=models,
        budget=BudgetConfig(max_steps=60),
        trajectory_path=tmp_path / "out" / "trajectory.jsonl",
    )
    runs = run_candidates(task, RepoConfig(flake_reruns=1), n=2)
    assert [r.candidate.label for r in runs] == ["candidate-2", "candidate-1"]
    assert runs[0].candidate.validation.validated
    assert not runs[1].candidate.validation.validated
    loser = runs[1].candidate.validation.evidence  # its "fix" replaced the reproduction test
    assert loser.reproduction.before == "error"
    assert any("was not found in the base run" in note for note in loser.notes)
    # the work tree holds the winner; each attempt had half the step budget and its own file
    assert "if not items" in (ws.path / "shop/cart.py").read_text()
    assert "average_price([])" in (ws.path / SHOP.repro_path).read_text()
    for name in ("trajectory.jsonl", "trajectory-2.jsonl"):
        start = read_trajectory(tmp_path / "out" / name)[0]
        assert start["event"] == "start" and start["data"]["budget"]["max_steps"] == 30
    assert sum(u.calls for u in runs[0].agent.usage.values()) <= 30


SHOP_ROLES = ("localizer", "reproducer", "fixer", "reviewer")
