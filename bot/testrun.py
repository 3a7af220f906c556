"""Run a repository's tests in the sandbox and read the results (JUnit XML where possible).

May import: bot.sandbox, bot.toolchain, bot.evidence.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bot.evidence import Outcome, SuiteCounts
from bot.sandbox import Limits, Sandbox
from bot.toolchain import TestPlan

JUNIT_NAME = ".selfheal-junit.xml"


@dataclass(frozen=True)
class TestRun:
    """One run of (part of) a test suite."""

    command: str
    exit_code: int
    duration_s: float
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    errored: tuple[str, ...]
    skipped: tuple[str, ...]
    output: str
    limit_hit: str | None = None

    @property
    def counts(self) -> SuiteCounts:
        return SuiteCounts(len(self.passed), len(self.failed), len(self.errored), len(self.skipped))

    @property
    def outcome(self) -> Outcome:
        if self.limit_hit or (self.exit_code != 0 and not (self.failed or self.errored)):
            return "error" if self.exit_code not in (0, 1) or not self.passed else "failed"
        return "failed" if self.failed or self.errored else "passed"

    def outcome_of(self, test_id: str) -> Outcome:
        """The outcome of one test id (pytest node id, or a prefix of it)."""

        def hit(ids: tuple[str, ...]) -> bool:
            return any(
                i == test_id or i.startswith(test_id + "::") or i.startswith(test_id + "[")
                for i in ids
            )

        if hit(self.failed):
            return "failed"
        if hit(self.errored):
            return "error"
        if hit(self.passed):
            return "passed"
        return "error"


def _test_id(case: ET.Element) -> str:
    classname = case.get("classname", "")
    name = case.get("name", "")
    file = case.get("file")
    if file:
        return f"{file}::{name}"
    parts = classname.split(".")
    # pytest: classname "tests.test_cart" or "tests.test_cart.TestX"
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut]) + ".py"
        rest = parts[cut:]
        if cut == len(parts) or (rest and rest[0][:1].isupper()):
            return "::".join([module, *rest, name])
    return f"{classname}::{name}"


def parse_junit(xml_text: str) -> tuple[list[str], list[str], list[str], list[str]]:
    passed: list[str] = []
    failed: list[str] = []
    errored: list[str] = []
    skipped: list[str] = []
    root = ET.fromstring(xml_text)
    for case in root.iter("testcase"):
        tid = _test_id(case)
        if case.find("failure") is not None:
            failed.append(tid)
        elif case.find("error") is not None:
            errored.append(tid)
        elif case.find("skipped") is not None:
            skipped.append(tid)
        else:
            passed.append(tid)
    return passed, failed, errored, skipped


def run_tests(
    sandbox: Sandbox,
    worktree: Path,
    plan: TestPlan,
    selection: tuple[str, ...] = (),
    limits: Limits | None = None,
) -> TestRun:
    """Run the plan's test command (no network) and read the results."""
    junit = worktree / JUNIT_NAME
    junit.unlink(missing_ok=True)
    argv = plan.test_argv(selection, junit_path=JUNIT_NAME if plan.runner == "pytest" else None)
    result = sandbox.run(argv, workdir=worktree, env=plan.env, network=False, limits=limits)
    lists: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
    if junit.is_file():
        with contextlib.suppress(ET.ParseError):
            lists = parse_junit(junit.read_text(errors="replace"))
        junit.unlink(missing_ok=True)
    passed, failed, errored, skipped = (tuple(x) for x in lists)
    return TestRun(
        command=" ".join(argv),
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        passed=passed,
        failed=failed,
        errored=errored,
        skipped=skipped,
        output=result.output,
        limit_hit=result.limit_hit,
    )
