"""The merge policy, table-driven: a baseline that merges, then one fact changed per case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.evidence import Evidence, Finding, Reproduction, Suite, SuiteCounts
from bot.incident import Frame, Incident
from bot.patch import Patch
from bot.policy import Action, Facts, decide, glob_match
from bot.repo_config import RepoConfig, parse_repo_config

# A Wednesday, 10:30 UTC.
NOON_WED = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)

INCIDENT = Incident(
    source="sentry",
    title="ZeroDivisionError in cart.total",
    error_type="ZeroDivisionError",
    frames=(Frame(file="app/cart.py", line=12, function="total"),),
    repo="acme/shop",
    severity="error",
)
EVIDENCE = Evidence(
    reproduction=Reproduction(
        test="tests/test_cart.py::test_empty", before="failed", after="passed"
    ),
    suite=Suite(command="pytest", before=SuiteCounts(10, 1), after=SuiteCounts(11, 0)),
)
PATCH = Patch(
    diff="diff --git a/app/cart.py b/app/cart.py\n", files=("app/cart.py",), added=3, removed=1
)
MERGING = parse_repo_config("policy:\n  auto_merge: true\n")


def base(**changes: Any) -> Facts:
    facts = Facts(incident=INCIDENT, patch=PATCH, evidence=EVIDENCE, config=MERGING, now=NOON_WED)
    return replace(facts, **changes)


def cfg(text: str) -> RepoConfig:
    return parse_repo_config("policy:\n  auto_merge: true\n" + text)


def ev(**changes: Any) -> Evidence:
    return replace(EVIDENCE, **changes)


def test_baseline_merges_with_every_rule_passing() -> None:
    decision = decide(base())
    assert decision.action is Action.MERGE
    assert {r.verdict for r in decision.reasons} == {"pass"}
    assert decision.would_merge is False


CASES: list[tuple[str, dict[str, Any], Action, str]] = [
    (
        "invalid config",
        {"config_error": "selfheal.yml: line 3: x: bad"},
        Action.REPORT,
        "config_valid",
    ),
    ("job stopped early", {"job_error": "budget spent"}, Action.REPORT, "job_completed"),
    ("no patch", {"patch": Patch("", (), 0, 0)}, Action.REPORT, "has_patch"),
    ("unreadable patch", {"patch": Patch("garbage", (), 0, 0)}, Action.REPORT, "has_patch"),
    (
        "no reproduction test",
        {"evidence": ev(reproduction=Reproduction())},
        Action.DRAFT_PR,
        "red_to_green",
    ),
    (
        "still red after the patch",
        {"evidence": ev(reproduction=Reproduction("t", "failed", "failed"))},
        Action.DRAFT_PR,
        "red_to_green",
    ),
    (
        "never red before",
        {"evidence": ev(reproduction=Reproduction("t", "passed", "passed"))},
        Action.DRAFT_PR,
        "red_to_green",
    ),
    (
        "suite did not run",
        {"evidence": ev(suite=Suite(command="pytest", before=SuiteCounts(10, 1)))},
        Action.DRAFT_PR,
        "no_new_failures",
    ),
    (
        "new suite failure",
        {"evidence": ev(suite=replace(EVIDENCE.suite, new_failures=("tests/test_x.py::t",)))},
        Action.REPORT,
        "no_new_failures",
    ),
    (
        "anti-masking finding",
        {"evidence": ev(anti_masking=(Finding("skipped_test", "tests/test_cart.py", 3),))},
        Action.REPORT,
        "no_masking",
    ),
    (
        "flaky failure",
        {"evidence": ev(reproduction=replace(EVIDENCE.reproduction, flaky=True))},
        Action.DRAFT_PR,
        "not_flaky",
    ),
    (
        "workflow file touched",
        {"patch": replace(PATCH, files=("app/cart.py", ".github/workflows/ci.yml"))},
        Action.REPORT,
        "forbidden_paths",
    ),
    (
        "nested lockfile touched",
        {"patch": replace(PATCH, files=("web/package-lock.json",))},
        Action.REPORT,
        "forbidden_paths",
    ),
    (
        "migration touched",
        {"patch": replace(PATCH, files=("shop/migrations/0003_add.py",))},
        Action.REPORT,
        "forbidden_paths",
    ),
    (
        "repo-forbidden glob",
        {
            "config": cfg("  forbidden_paths: ['app/payments/**']\n"),
            "patch": replace(PATCH, files=("app/payments/x/card.py",)),
        },
        Action.REPORT,
        "forbidden_paths",
    ),
    (
        "bot config touched even when allowed",
        {
            "config": cfg("  allowed_paths: ['**']\n"),
            "patch": replace(PATCH, files=(".github/selfheal.yml",)),
        },
        Action.REPORT,
        "forbidden_paths",
    ),
    (
        "outside the allow-list: * does not cross /",
        {
            "config": cfg("  allowed_paths: ['app/*.py']\n"),
            "patch": replace(PATCH, files=("app/sub/cart.py",)),
        },
        Action.PR,
        "allowed_paths",
    ),
    ("too many lines", {"patch": replace(PATCH, added=40, removed=1)}, Action.PR, "max_size"),
    (
        "too many files",
        {"patch": replace(PATCH, files=("a.py", "b.py", "c.py", "d.py"))},
        Action.PR,
        "max_size",
    ),
    (
        "below the severity threshold",
        {"config": cfg("  min_severity: critical\n")},
        Action.PR,
        "severity",
    ),
    (
        "unknown severity with a threshold",
        {"config": cfg("  min_severity: warning\n"), "incident": replace(INCIDENT, severity=None)},
        Action.PR,
        "severity",
    ),
    ("daily cap reached", {"merges_today": 3}, Action.PR, "daily_merge_cap"),
    (
        "outside the merge window",
        {"config": cfg("  merge_windows: [{days: [mon], start: '09:00', end: '17:00'}]\n")},
        Action.PR,
        "merge_window",
    ),
    (
        "window in another zone: 10:30 UTC is 19:30 in Tokyo",
        {"config": cfg("  merge_windows: [{start: 9:00, end: 17:00, tz: Asia/Tokyo}]\n")},
        Action.PR,
        "merge_window",
    ),
    ("auto-merge off (shadow mode)", {"config": RepoConfig()}, Action.PR, "auto_merge_enabled"),
    (
        "auto-merge off for this source",
        {"config": cfg("  auto_merge_sources: [pagerduty]\n")},
        Action.PR,
        "auto_merge_enabled",
    ),
]


@pytest.mark.parametrize(
    ("changes", "action", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_changed_fact_lowers_the_decision(
    changes: dict[str, Any], action: Action, rule: str
) -> None:
    decision = decide(base(**changes))
    assert decision.action is action
    failing = [r.rule for r in decision.reasons if r.verdict == "fail"]
    assert failing == [rule]
    assert (
        decision.to_dict()["reasons"][[r.rule for r in decision.reasons].index(rule)]["caps"]
        == action.label
    )


ALLOWED: list[tuple[str, dict[str, Any]]] = [
    (
        "explicitly allowed forbidden path",
        {
            "config": cfg("  allowed_paths: ['**/pyproject.toml', 'app/**']\n"),
            "patch": replace(PATCH, files=("pyproject.toml", "app/x.py")),
        },
    ),
    (
        "flaky allowed",
        {
            "config": cfg("  allow_flaky: true\n"),
            "evidence": ev(reproduction=replace(EVIDENCE.reproduction, flaky=True)),
        },
    ),
    ("severity at the threshold", {"config": cfg("  min_severity: error\n")}),
    ("under the cap", {"merges_today": 2}),
    (
        "inside the window",
        {"config": cfg("  merge_windows: [{days: [wed], start: 9:00, end: '10:30'}]\n")},
    ),
    (
        "window past midnight, early part on the next day",
        {
            "config": cfg("  merge_windows: [{days: [tue], start: '22:00', end: '11:00'}]\n"),
        },
    ),
    (
        "a .github lookalike deeper in the tree",
        {"patch": replace(PATCH, files=("docs/.github/x.md",))},
    ),
    ("the size limit exactly", {"patch": replace(PATCH, added=39, removed=1)}),
]


@pytest.mark.parametrize("changes", [c[1] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_allowed_variations_still_merge(changes: dict[str, Any]) -> None:
    decision = decide(base(**changes))
    assert decision.action is Action.MERGE, decision.to_dict()


def test_shadow_mode_records_would_have_merged() -> None:
    decision = decide(base(config=RepoConfig()))
    assert decision.action is Action.PR
    assert decision.would_merge is True
    assert decision.to_dict()["would_merge"] is True


def test_shadow_mode_does_not_claim_a_merge_another_rule_blocks() -> None:
    decision = decide(base(config=RepoConfig(), merges_today=99))
    assert decision.would_merge is False


def test_every_rule_reports_even_after_an_early_failure() -> None:
    decision = decide(base(config_error="bad", merges_today=9))
    failing = {r.rule for r in decision.reasons if r.verdict == "fail"}
    assert failing == {"config_valid", "daily_merge_cap"}
    assert len(decision.reasons) == 14


def test_lowest_cap_wins() -> None:
    facts = base(
        patch=replace(PATCH, added=500),
        evidence=ev(anti_masking=(Finding("sleep", "app/cart.py"),)),
    )
    assert decide(facts).action is Action.REPORT


def test_a_person_asking_to_merge_waives_only_the_unattended_merge_rules() -> None:
    waived = decide(base(config=RepoConfig(), merges_today=5, merge_requested_by="alice"))
    assert waived.action is Action.MERGE
    assert "waived: merge requested by @alice" in {r.detail for r in waived.reasons}
    still_blocked = decide(
        base(merge_requested_by="alice", evidence=ev(reproduction=Reproduction()))
    )
    assert still_blocked.action is Action.DRAFT_PR


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        (".github/workflows/ci.yml", ".github/**", True),
        ("src/.github/x", ".github/**", False),
        ("migrations/0001.py", "**/migrations/**", True),
        ("a/b/migrations/0001.py", "**/migrations/**", True),
        ("src/app.py", "src/*.py", True),
        ("src/pkg/app.py", "src/*.py", False),
        ("src/app.py", "src/**/*.py", True),
        ("src/pkg/deep/app.py", "src/**/*.py", True),
        ("x/CODEOWNERS", "CODEOWNERS", True),
        ("lib/x.py", "*.py", True),
        ("lib/x.pyc", "*.py", False),
        ("docs/a/b.md", "docs/", True),
        ("b/src/a.py", "src/a.py", False),
        ("src/a1.py", "src/a[0-9].py", True),
        ("src/a/b.py", "src/a?b.py", False),
    ],
)
def test_globs_behave_like_gitignore(path: str, pattern: str, expected: bool) -> None:
    assert glob_match(path, pattern) is expected
