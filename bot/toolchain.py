"""Detect how to set up and test a repository; `.github/selfheal.yml` overrides.

May import: bot.repo_config.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from bot.repo_config import RepoConfig


@dataclass(frozen=True)
class TestPlan:
    """How to prepare and test one repository."""

    language: str
    test_command: tuple[str, ...]  # argv
    setup: tuple[str, ...] = ()  # shell commands run with network (install phase)
    env: dict[str, str] = field(default_factory=dict)
    runner: str = "custom"  # pytest | unittest | jest | vitest | mocha | go | cargo | custom

    def test_argv(
        self, selection: tuple[str, ...] = (), junit_path: str | None = None
    ) -> list[str]:
        """The test command, narrowed to `selection`, writing JUnit XML where the runner can."""
        argv = list(self.test_command)
        if self.runner == "pytest":
            if junit_path:
                argv.append(f"--junitxml={junit_path}")
            argv.extend(selection)
        elif selection:
            argv.extend(selection)
        return argv


def detect(worktree: Path, config: RepoConfig) -> TestPlan:
    """A TestPlan from the config's `test:`/`setup:`/`env:` or, absent those, from the files."""
    setup = tuple(config.setup or ())
    if config.test:
        argv = tuple(shlex.split(config.test))
        runner = "pytest" if "pytest" in argv[:3] else "custom"
        return TestPlan("configured", argv, setup, dict(config.env), runner)
    return TestPlan(
        "python",
        ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"),
        setup,
        dict(config.env),
        "pytest",
    )
