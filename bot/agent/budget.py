"""Per-job budgets (steps, tokens, USD, wall time) and usage per role.

`Budget.check` runs before every model call and raises `BudgetExhausted` naming the budget that
ran out; `Budget.record` adds one call's usage. May import: bot.agent.messages, bot.repo_config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bot.agent.messages import ModelReply
from bot.repo_config import BudgetConfig


class BudgetExhausted(Exception):
    """A budget ran out; `which` is max_steps | max_tokens | max_usd | max_wall_s."""

    def __init__(self, which: str, detail: str) -> None:
        super().__init__(detail)
        self.which = which
        self.detail = detail


@dataclass
class RoleUsage:
    """What one role spent: model calls, tokens, dollars and seconds waiting for the model."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    model_s: float = 0.0
    tool_s: float = 0.0

    @property
    def elapsed_s(self) -> float:
        """Time this role took: waiting for its model plus running its tools."""
        return self.model_s + self.tool_s

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["usd"] = round(self.usd, 6)
        data["model_s"] = round(self.model_s, 3)
        data["tool_s"] = round(self.tool_s, 3)
        return data


class Budget:
    """Counts one job's spending against its BudgetConfig."""

    def __init__(self, config: BudgetConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self.started = clock()
        self.steps = 0
        self.tokens = 0
        self.usd = 0.0
        self.usage: dict[str, RoleUsage] = {}

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self.started

    def spent(self) -> str:
        return (
            f"{self.steps} model calls, {self.tokens} tokens, ${self.usd:.4f}, "
            f"{self.elapsed_s:.1f} s"
        )

    def check(self, role: str) -> None:
        """Raise BudgetExhausted if the next call by `role` would exceed a budget."""
        c = self.config
        over: tuple[str, str] | None = None
        if self.steps >= c.max_steps:
            over = ("max_steps", f"{c.max_steps} model calls")
        elif self.tokens >= c.max_tokens:
            over = ("max_tokens", f"{c.max_tokens} tokens")
        elif c.max_usd and self.usd >= c.max_usd:
            over = ("max_usd", f"${c.max_usd:.2f}")
        elif self.elapsed_s >= c.max_wall_s:
            over = ("max_wall_s", f"{c.max_wall_s} s of wall time")
        if over:
            which, limit = over
            raise BudgetExhausted(
                which,
                f"the {which} budget ({limit}) ran out before a {role} call; spent {self.spent()}",
            )

    def record(self, role: str, reply: ModelReply, seconds: float) -> None:
        u = self.usage.setdefault(role, RoleUsage())
        u.calls += 1
        u.input_tokens += reply.usage.input_tokens
        u.output_tokens += reply.usage.output_tokens
        u.usd += reply.usage.cost_usd
        u.model_s += seconds
        self.steps += 1
        self.tokens += reply.usage.input_tokens + reply.usage.output_tokens
        self.usd += reply.usage.cost_usd

    def record_tool(self, role: str, seconds: float) -> None:
        self.usage.setdefault(role, RoleUsage()).tool_s += seconds

    @property
    def model_s(self) -> float:
        return sum(u.model_s for u in self.usage.values())
