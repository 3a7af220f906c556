"""Run a repository's tests in the sandbox and read the results (JUnit XML where possible).

May import: bot.sandbox, bot.toolchain, bot.evidence.
"""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bot.evidence import Outcome, SuiteCounts
from bot.sandbox import Limits, OutputCallback, Sandbox
from bot.toolchain import JEST_JSON_NAME, JUNIT_NAME, TestPlan

__all__ = ["JUNIT_NAME", "TestRun", "parse_junit", "run_tests"]


@dataclass(frozen=True)
class TestRun:
    """One run of (part of) a test suite."""

    __test__ = False  # not a pytest test class

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


def parse_junit(
    xml_text: str, runner: str = "pytest"
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Passed, failed, errored and skipped test ids from a JUnit XML report."""
    passed: list[str] = []
    failed: list[str] = []
    errored: list[str] = []
    skipped: list[str] = []
    root = ET.fromstring(xml_text)
    for case in root.iter("testcase"):
        if runner == "pytest":
            tid = _test_id(case)
        elif runner == "node":
            tid = case.get("name", "")
        else:
            where = case.get("file") or case.get("classname") or ""
            tid = f"{where}::{case.get('name', '')}" if where else case.get("name", "")
        if case.find("failure") is not None:
            failed.append(tid)
        elif case.find("error") is not None:
            errored.append(tid)
        elif case.find("skipped") is not None:
            skipped.append(tid)
        else:
            passed.append(tid)
    return passed, failed, errored, skipped


Lists = tuple[list[str], list[str], list[str], list[str]]


def parse_jest_json(text: str, root: str = "") -> Lists:
    """Test ids from `jest --json`: `relative/file.test.js::Describe title test title`."""
    lists: Lists = ([], [], [], [])
    data = json.loads(text)
    for suite in data.get("testResults", []):
        file = str(suite.get("name", ""))
        if root and file.startswith(root.rstrip("/") + "/"):
            file = file[len(root.rstrip("/")) + 1 :]
        for case in suite.get("assertionResults", []):
            tid = f"{file}::{case.get('fullName') or case.get('title', '')}"
            status = case.get("status")
            index = {"passed": 0, "failed": 1}.get(status, 3)
            lists[index].append(tid)
        if not suite.get("assertionResults") and suite.get("status") == "failed":
            lists[2].append(file)
    return lists


def parse_go_json(text: str) -> Lists:
    """Test ids (`package::TestName`) from `go test -json` output."""
    lists: Lists = ([], [], [], [])
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        action, test = event.get("Action"), event.get("Test")
        if not test:
            continue
        tid = f"{event.get('Package', '')}::{test}"
        index = {"pass": 0, "fail": 1, "skip": 3}.get(action or "")
        if index is not None:
            lists[index].append(tid)
    return lists


_CARGO_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", re.MULTILINE)


def parse_cargo_output(text: str) -> Lists:
    """Test ids from `cargo test`'s libtest lines (`test path::name ... ok`)."""
    lists: Lists = ([], [], [], [])
    for name, status in _CARGO_LINE.findall(text):
        lists[{"ok": 0, "FAILED": 1, "ignored": 3}[status]].append(name)
    return lists


def _structured(worktree: Path, plan: TestPlan, output: str) -> Lists:
    empty: Lists = ([], [], [], [])
    junit = worktree / JUNIT_NAME
    jest = worktree / JEST_JSON_NAME
    try:
        if plan.writes_junit and junit.is_file():
            return parse_junit(junit.read_text(errors="replace"), plan.runner)
        if plan.runner == "jest" and jest.is_file():
            return parse_jest_json(jest.read_text(errors="replace"), str(worktree))
        if plan.runner == "go":
            return parse_go_json(output)
        if plan.runner == "cargo":
            return parse_cargo_output(output)
    except (ET.ParseError, ValueError, AttributeError):
        return empty
    finally:
        junit.unlink(missing_ok=True)
        jest.unlink(missing_ok=True)
    return empty


def run_tests(
    sandbox: Sandbox,
    worktree: Path,
    plan: TestPlan,
    selection: tuple[str, ...] = (),
    limits: Limits | None = None,
    on_output: OutputCallback | None = None,
) -> TestRun:
    """Run the plan's test command (no network) and read the results."""
    for stale in (JUNIT_NAME, JEST_JSON_NAME):
        (worktree / stale).unlink(missing_ok=True)
    wants = plan.writes_junit or plan.runner == "jest"
    argv = plan.test_argv(selection, junit_path=JUNIT_NAME if wants else None)
    result = sandbox.run(
        argv,
        workdir=worktree,
        env=plan.env,
        network=False,
        limits=limits,
        on_output=on_output,
        ro_paths=tuple(Path(p) for p in plan.ro_paths),
    )
    passed, failed, errored, skipped = (
        tuple(x) for x in _structured(worktree, plan, result.output)
    )
    return TestRun(
        command=shlex.join(argv),
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        passed=passed,
        failed=failed,
        errored=errored,
        skipped=skipped,
        output=result.output,
        limit_hit=result.limit_hit,
    )
