"""N candidate patches for one job: run the team N times from the base, validate each, rank.

The job's budget is shared: each run gets 1/N of every limit. Candidate K's trajectory is
`trajectory.jsonl` for K = 1 and `trajectory-K.jsonl` after that. The work tree ends holding
the best candidate (validation first, then size). May import: bot.agent.team, bot.validate,
bot.repo_config, bot.sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.agent.team import AgentResult, AgentTask, run_team
from bot.repo_config import BudgetConfig, RepoConfig
from bot.sandbox import Limits
from bot.validate import Candidate, apply_tree, rank_candidates, snapshot, validate


@dataclass(frozen=True)
class CandidateRun:
    """One team run, its validated patch and the tree object that holds it."""

    agent: AgentResult
    candidate: Candidate
    tree: str


def split_budget(budget: BudgetConfig, n: int) -> BudgetConfig:
    return BudgetConfig(
        max_steps=max(1, budget.max_steps // n),
        max_tokens=max(1, budget.max_tokens // n),
        max_usd=budget.max_usd / n,
        max_wall_s=max(1, budget.max_wall_s // n),
    )


def run_candidates(
    task: AgentTask, config: RepoConfig, n: int | None = None, limits: Limits | None = None
) -> list[CandidateRun]:
    """Run `n` (default `config.candidates`) team attempts; best first, best applied."""
    n = n or config.candidates
    ws = task.workspace
    runs: list[CandidateRun] = []
    for k in range(1, n + 1):
        ws.reset()
        path = task.trajectory_path
        if path is not None and k > 1:
            path = path.with_name(f"{path.stem}-{k}{path.suffix}")
        attempt = replace(task, budget=split_budget(task.budget, n), trajectory_path=path)
        agent = run_team(attempt)
        validation = validate(ws, task.sandbox, task.plan, config, agent.reproduction_test, limits)
        label = f"candidate-{k}"
        runs.append(CandidateRun(agent, Candidate(label, validation), snapshot(ws)))
    order = {id(c): i for i, c in enumerate(rank_candidates([r.candidate for r in runs]))}
    runs.sort(key=lambda r: order[id(r.candidate)])
    ws.reset()
    apply_tree(ws, runs[0].tree)
    return runs
