"""Evidence records: what validation measured, outside every model. May import: nothing from bot.

The policy reads these; the report prints them; `report.json` serializes them under `evidence`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["failed", "passed", "error"]


@dataclass(frozen=True)
class SuiteCounts:
    """Counts of one test-suite run."""

    passed: int = 0
    failed: int = 0
    errored: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errored + self.skipped


@dataclass(frozen=True)
class Reproduction:
    """The reproduction test: it must fail on the base commit and pass with the patch."""

    test: str | None = None  # test id, e.g. tests/test_cart.py::test_empty_cart
    before: Outcome | None = None
    after: Outcome | None = None
    flaky: bool = False  # the base-commit failure did not repeat on every rerun
    reruns: tuple[Outcome, ...] = ()  # base-commit reruns used for the flake check

    @property
    def red_to_green(self) -> bool:
        return self.before == "failed" and self.after == "passed" and not self.flaky


@dataclass(frozen=True)
class Suite:
    """The repository's suite (or configured subset) before and after the patch."""

    command: str | None = None
    before: SuiteCounts | None = None
    after: SuiteCounts | None = None
    new_failures: tuple[str, ...] = ()
    after_exit_code: int | None = None


@dataclass(frozen=True)
class Finding:
    """One anti-masking finding: a way the patch may hide the failure instead of fixing it."""

    # deleted_test | skipped_test | xfail | removed_assertion | loosened_assertion | sleep |
    # retry | timeout
    kind: str
    file: str
    line: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything validation measured about one candidate patch."""

    reproduction: Reproduction = field(default_factory=Reproduction)
    suite: Suite = field(default_factory=Suite)
    anti_masking: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def validated(self) -> bool:
        """Red -> green, no new failures, no masking."""
        return (
            self.reproduction.red_to_green and not self.suite.new_failures and not self.anti_masking
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("before", "after"):
            counts = getattr(self.suite, key)
            if counts is not None:
                data["suite"][key]["total"] = counts.total
        data["validated"] = self.validated
        return data


def _counts(data: Any) -> SuiteCounts | None:
    if not isinstance(data, dict):
        return None
    return SuiteCounts(
        passed=int(data.get("passed") or 0),
        failed=int(data.get("failed") or 0),
        errored=int(data.get("errored") or 0),
        skipped=int(data.get("skipped") or 0),
    )


def evidence_from_dict(data: dict[str, Any]) -> Evidence:
    """Rebuild Evidence from `Evidence.to_dict()` output (as report.json holds it)."""
    rep = data.get("reproduction") or {}
    suite = data.get("suite") or {}
    return Evidence(
        reproduction=Reproduction(
            test=rep.get("test"),
            before=rep.get("before"),
            after=rep.get("after"),
            flaky=bool(rep.get("flaky", False)),
            reruns=tuple(rep.get("reruns") or ()),
        ),
        suite=Suite(
            command=suite.get("command"),
            before=_counts(suite.get("before")),
            after=_counts(suite.get("after")),
            new_failures=tuple(str(x) for x in suite.get("new_failures") or ()),
            after_exit_code=suite.get("after_exit_code"),
        ),
        anti_masking=tuple(
            Finding(
                kind=str(f.get("kind", "")),
                file=str(f.get("file", "")),
                line=f.get("line"),
                detail=str(f.get("detail", "")),
            )
            for f in data.get("anti_masking") or ()
            if isinstance(f, dict)
        ),
        notes=tuple(str(x) for x in data.get("notes") or ()),
    )
