"""Flake check: rerun failing tests on the base commit and call each deterministic or flaky.

Validation calls `flake_check` with the tests that failed on the base commit; each is rerun
`reruns` times (the repository's `flake_reruns`, default 3) on its own, with no network. A
test that fails every time is deterministic; one that passes at least once is flaky.
May import: bot.sandbox, bot.toolchain, bot.testrun.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.sandbox import Limits, Sandbox
from bot.testrun import TestRun, run_tests
from bot.toolchain import TestPlan

Verdict = Literal["deterministic", "flaky"]


@dataclass(frozen=True)
class FlakeResult:
    """One test's reruns on the base commit."""

    test_id: str
    verdict: Verdict
    outcomes: tuple[str, ...]  # passed | failed | error, one per rerun

    @property
    def flaky(self) -> bool:
        return self.verdict == "flaky"


def flake_check(
    sandbox: Sandbox,
    worktree: Path,
    plan: TestPlan,
    test_ids: tuple[str, ...],
    reruns: int = 3,
    limits: Limits | None = None,
) -> dict[str, FlakeResult]:
    """Rerun each failing test `reruns` times; deterministic when it never passes."""
    results: dict[str, FlakeResult] = {}
    for test_id in test_ids:
        outcomes: list[str] = []
        for _ in range(max(reruns, 1)):
            run: TestRun = run_tests(sandbox, worktree, plan, (test_id,), limits)
            outcomes.append(run.outcome_of(test_id) if run.passed or run.failed else run.outcome)
        verdict: Verdict = "flaky" if "passed" in outcomes else "deterministic"
        results[test_id] = FlakeResult(test_id, verdict, tuple(outcomes))
    return results
