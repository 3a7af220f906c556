"""The merge policy: a pure function from facts to a decision, with every rule's verdict.

No I/O here: the caller gathers the facts (incident, patch, evidence, repo config, history,
the clock) and this module decides `merge` | `pr` | `draft_pr` | `report`. Every rule runs
and reports, even after an earlier one has already lowered the decision, so people tuning
their config see the whole picture. May import: bot.incident, bot.patch, bot.evidence,
bot.repo_config.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import IntEnum
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.evidence import Evidence
from bot.incident import Incident
from bot.patch import Patch
from bot.repo_config import SELF_CONFIG_PATHS, RepoConfig

Verdict = Literal["pass", "fail", "skip"]


class Action(IntEnum):
    """Decisions, ordered from most to least conservative."""

    REPORT = 0
    DRAFT_PR = 1
    PR = 2
    MERGE = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Action:
        return cls[label.upper()]


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict. A failing rule caps the decision at `caps`."""

    rule: str
    verdict: Verdict
    detail: str
    caps: Action = Action.MERGE

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rule": self.rule, "verdict": self.verdict, "detail": self.detail}
        if self.verdict == "fail":
            data["caps"] = self.caps.label
        return data


@dataclass(frozen=True)
class Facts:
    """Everything the policy looks at. Built by the pipeline; pure data."""

    incident: Incident
    patch: Patch
    evidence: Evidence
    config: RepoConfig
    config_error: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(ZoneInfo("UTC")))
    merges_today: int = 0
    job_error: str | None = None  # the job stopped early (budget, model error...)
    # Set when a person with write access asked for the merge (`/selfheal merge`): it waives
    # the rules that govern unattended merges (MANUAL_MERGE_WAIVES); evidence rules still apply.
    merge_requested_by: str | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[RuleResult, ...]
    would_merge: bool = False  # shadow mode: every rule but auto-merge allowed it

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.label,
            "reasons": [r.to_dict() for r in self.reasons],
            "would_merge": self.would_merge,
        }


def agent_job_error(status: str, message: str) -> str | None:
    """`Facts.job_error` for an agent that ended with `status`: None only when it finished."""
    return None if status == "finished" else f"{status}: {message}"


# Rules about unattended merging that a person's explicit `/selfheal merge` waives.
MANUAL_MERGE_WAIVES = frozenset({"auto_merge_enabled", "daily_merge_cap", "merge_window"})

SEVERITY_ORDER = ["debug", "info", "low", "warning", "medium", "error", "high", "critical", "fatal"]
Rule = Callable[[Facts], RuleResult]


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a gitignore-style glob into a regex over a repo-relative path.

    `*` and `?` stay inside one path segment, `**` spans any number of segments, `[...]` is a
    character class. A pattern without a `/` (other than a trailing one) matches the name at
    any depth; a trailing `/` or `/**` matches everything below a directory.
    """
    pat = pattern.strip().removeprefix("./")
    anchored = "/" in pat.rstrip("/")
    pat = pat.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
    out: list[str] = []
    i = 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("/**", i) and i + 3 == len(pat):
            out.append("/.*")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pat[i + 2 :]:
            end = pat.index("]", i + 2)
            body = pat[i + 1 : end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"(?!/)[{body}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{''.join(out)}", re.DOTALL)


def glob_match(path: str, pattern: str) -> bool:
    """Whether a repo-relative `path` matches a gitignore-style `pattern`."""
    return _glob_regex(pattern).fullmatch(path.lstrip("/").removeprefix("./")) is not None


def _ok(rule: str, detail: str) -> RuleResult:
    return RuleResult(rule, "pass", detail)


def _no(rule: str, detail: str, caps: Action) -> RuleResult:
    return RuleResult(rule, "fail", detail, caps)


def config_valid(f: Facts) -> RuleResult:
    if f.config_error:
        return _no("config_valid", f.config_error, Action.REPORT)
    return _ok("config_valid", "repository config is valid (or absent: defaults)")


def job_completed(f: Facts) -> RuleResult:
    if f.job_error:
        return _no("job_completed", f.job_error, Action.REPORT)
    return _ok("job_completed", "the agent finished within its budget")


def has_patch(f: Facts) -> RuleResult:
    if f.patch.empty and not f.patch.files:
        return _no("has_patch", "no patch was produced", Action.REPORT)
    if not f.patch.files:
        # Fail closed: without the file list no path rule can be checked.
        return _no("has_patch", "the patch could not be read (no files found)", Action.REPORT)
    return _ok("has_patch", f"{len(f.patch.files)} file(s), +{f.patch.added} -{f.patch.removed}")


def reproduced_red_to_green(f: Facts) -> RuleResult:
    r = f.evidence.reproduction
    if r.test is None:
        return _no("red_to_green", "no reproduction test", Action.DRAFT_PR)
    if r.before == "failed" and r.after == "passed":
        return _ok("red_to_green", f"{r.test}: failed before, passes after")
    return _no("red_to_green", f"{r.test}: before={r.before}, after={r.after}", Action.DRAFT_PR)


def no_new_failures(f: Facts) -> RuleResult:
    suite = f.evidence.suite
    if suite.after is None:
        return _no("no_new_failures", "the suite did not run with the patch", Action.DRAFT_PR)
    if suite.new_failures:
        shown = ", ".join(suite.new_failures[:5])
        return _no("no_new_failures", f"new failures: {shown}", Action.REPORT)
    return _ok(
        "no_new_failures", f"suite after: {suite.after.passed} passed, {suite.after.failed} failed"
    )


def no_masking(f: Facts) -> RuleResult:
    findings = f.evidence.anti_masking
    if findings:
        shown = "; ".join(f"{x.kind} in {x.file}" for x in findings[:5])
        return _no("no_masking", shown, Action.REPORT)
    return _ok(
        "no_masking", "no deleted, skipped or loosened tests; no sleeps, retries or timeouts"
    )


def not_flaky(f: Facts) -> RuleResult:
    if f.evidence.reproduction.flaky and not f.config.policy.allow_flaky:
        return _no(
            "not_flaky", "the failure did not repeat on every base-commit rerun", Action.DRAFT_PR
        )
    return _ok("not_flaky", "the failure is deterministic on the base commit")


def paths_not_forbidden(f: Facts) -> RuleResult:
    allowed = f.config.policy.allowed_paths
    hits = [
        p
        for p in f.patch.files
        if any(glob_match(p, g) for g in SELF_CONFIG_PATHS)
        or (
            any(glob_match(p, g) for g in f.config.forbidden_paths)
            and not any(glob_match(p, g) for g in allowed)
        )
    ]
    if hits:
        return _no(
            "forbidden_paths", f"touches forbidden path(s): {', '.join(hits)}", Action.REPORT
        )
    return _ok("forbidden_paths", "no forbidden path touched")


def paths_allowed(f: Facts) -> RuleResult:
    allowed = f.config.policy.allowed_paths
    if not allowed:
        return _ok("allowed_paths", "no allow-list configured")
    outside = [p for p in f.patch.files if not any(glob_match(p, g) for g in allowed)]
    if outside:
        return _no("allowed_paths", f"outside allowed paths: {', '.join(outside)}", Action.PR)
    return _ok("allowed_paths", "every file is inside the allow-list")


def within_size(f: Facts) -> RuleResult:
    p, c = f.patch, f.config.policy
    if p.changed_lines > c.max_changed_lines or len(p.files) > c.max_changed_files:
        return _no(
            "max_size",
            f"{p.changed_lines} lines in {len(p.files)} files; limit {c.max_changed_lines} lines "
            f"in {c.max_changed_files} files",
            Action.PR,
        )
    return _ok("max_size", f"{p.changed_lines} lines in {len(p.files)} files")


def severity_threshold(f: Facts) -> RuleResult:
    minimum = f.config.policy.min_severity
    if minimum is None:
        return _ok("severity", "no severity threshold")
    severity = (f.incident.severity or "").lower()
    if severity not in SEVERITY_ORDER:
        return _no(
            "severity", f"unknown severity {severity or 'none'}; threshold {minimum}", Action.PR
        )
    if SEVERITY_ORDER.index(severity) < SEVERITY_ORDER.index(minimum):
        return _no("severity", f"{severity} is below the threshold {minimum}", Action.PR)
    return _ok("severity", f"{severity} meets the threshold {minimum}")


def daily_cap(f: Facts) -> RuleResult:
    cap = f.config.policy.daily_merge_cap
    if f.merges_today >= cap:
        return _no("daily_merge_cap", f"{f.merges_today} merges today; cap {cap}", Action.PR)
    return _ok("daily_merge_cap", f"{f.merges_today} of {cap} merges used today")


def _in_window(local: datetime, days: list[str], start: time, end: time) -> bool:
    now = local.time().replace(second=0, microsecond=0, tzinfo=None)
    day = local.strftime("%a").lower()
    if start <= end:
        return day in days and start <= now <= end
    # Past midnight: the early-morning part belongs to the previous day's window.
    yesterday = (local.weekday() - 1) % 7
    previous = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[yesterday]
    return (day in days and now >= start) or (previous in days and now <= end)


def merge_window(f: Facts) -> RuleResult:
    windows = f.config.policy.merge_windows
    if not windows:
        return _ok("merge_window", "no merge window configured")
    for w in windows:
        local = f.now.astimezone(ZoneInfo(w.tz))  # tz validated when the config was read
        start, end = time.fromisoformat(w.start), time.fromisoformat(w.end)
        if _in_window(local, list(w.days), start, end):
            return _ok("merge_window", f"inside {','.join(w.days)} {w.start}-{w.end} {w.tz}")
    return _no("merge_window", f"outside every merge window (now {f.now.isoformat()})", Action.PR)


def auto_merge_enabled(f: Facts) -> RuleResult:
    policy, source = f.config.policy, f.incident.source
    if not policy.auto_merge:
        return _no(
            "auto_merge_enabled", "auto-merge is off for this repository (shadow mode)", Action.PR
        )
    if source not in policy.auto_merge_sources:
        return _no(
            "auto_merge_enabled", f"auto-merge is not enabled for {source} incidents", Action.PR
        )
    return _ok("auto_merge_enabled", f"auto-merge is on for {source} incidents")


RULES: tuple[Rule, ...] = (
    config_valid,
    job_completed,
    has_patch,
    reproduced_red_to_green,
    no_new_failures,
    no_masking,
    not_flaky,
    paths_not_forbidden,
    paths_allowed,
    within_size,
    severity_threshold,
    daily_cap,
    merge_window,
    auto_merge_enabled,
)


def _run(rule: Rule, facts: Facts) -> RuleResult:
    result = rule(facts)
    if facts.merge_requested_by and result.rule in MANUAL_MERGE_WAIVES and result.verdict == "fail":
        return _ok(result.rule, f"waived: merge requested by @{facts.merge_requested_by}")
    return result


def decide(facts: Facts) -> Decision:
    """Run every rule; the decision is the lowest cap among failing rules (MERGE if none).

    `would_merge` is the shadow-mode record: every rule passed except `auto_merge_enabled`.
    """
    results = tuple(_run(rule, facts) for rule in RULES)
    action = min((r.caps for r in results if r.verdict == "fail"), default=Action.MERGE)
    blockers_except_auto = [
        r for r in results if r.verdict == "fail" and r.rule != "auto_merge_enabled"
    ]
    would_merge = action != Action.MERGE and not blockers_except_auto
    return Decision(action=action, reasons=results, would_merge=would_merge)
