"""Deterministic validation of a patch, outside every model: the evidence the policy reads.

1. Red: only the test-file part of the patch on the base commit; the reproduction test must
   fail, and not pass on any of `flake_reruns` reruns (`bot.flake`; otherwise it is flaky).
   The suite run here is the "before" suite (base code plus the new tests).
2. Green: the full patch; the reproduction test must pass and the suite may have no failure
   that was not already failing before.
3. Anti-masking: the diff may not delete, skip or xfail tests, remove or loosen assertions, add
   sleeps or retries, or raise timeouts (the last three unless the repo config allows them).

The work tree ends with the full patch applied, as it was. Candidates are ranked by validation
first and size second. May import: bot.evidence, bot.flake, bot.patch, bot.repo_config, bot.sandbox,
bot.testpaths, bot.testrun, bot.toolchain, bot.workspace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from bot.evidence import Evidence, Finding, Outcome, Reproduction, Suite
from bot.flake import flake_check
from bot.patch import Patch
from bot.repo_config import PolicyConfig, RepoConfig
from bot.sandbox import Limits, Sandbox
from bot.testpaths import is_test_path
from bot.testrun import TestRun, run_tests
from bot.toolchain import TestPlan
from bot.workspace import Workspace


@dataclass(frozen=True)
class Validation:
    """Evidence for one patch plus the test logs (test-before.log / test-after.log)."""

    evidence: Evidence
    patch: Patch
    before_log: str = ""
    after_log: str = ""

    @property
    def validated(self) -> bool:
        return self.evidence.validated

    @property
    def logs(self) -> dict[str, str]:
        """Artifact file name -> text."""
        return {"test-before.log": self.before_log, "test-after.log": self.after_log}


# ------------------------------------------------------------------------------ anti-masking

_TEST_DEF = re.compile(
    r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(|\b(?:it|test)\s*\(\s*(['\"`])(.+?)\2"
    r"|^\s*func\s+(Test\w+)\s*\("
)
_SKIP = re.compile(
    r"pytest\.mark\.skip|pytest\.skip\s*\(|unittest\.skip|@skip\b|\bskipIf\b|\bskipUnless\b"
    r"|\b(?:it|test|describe)\.skip\b|\bx(?:it|describe|test)\s*\(|\b(?:it|test)\.todo\b"
    r"|\bt\.Skip(?:Now|f)?\s*\(|#\[ignore\]|@Disabled\b|raise\s+(?:unittest\.)?SkipTest"
)
_XFAIL = re.compile(r"xfail|expectedFailure|\b(?:it|test)\.failing\b")
_ASSERT = re.compile(
    r"^\s*assert\b|\bself\.assert\w*\s*\(|\bexpect\s*\(|\bassert\w*\s*\(|\bt\.(?:Error|Fatal)f?\s*\("
    r"|pytest\.raises\s*\("
)
_ALWAYS_LOOSE = re.compile(
    r"\bor\s+True\b|^\s*assert\s+(?:True|1|not\s+False)\s*(?:$|,|#)|expect\s*\(\s*true\s*\)"
    r"|except\s+AssertionError|catch\s*\(\s*\w*\s*\)\s*\{\s*\}"
)
_REPLACE_LOOSE = (
    "!=",
    ">=",
    "<=",
    " in ",
    " not in ",
    "is not None",
    "assertIsNotNone",
    "assertTrue",
    "assertIn",
    "toBeDefined",
    "toBeTruthy",
    "toContain",
    "approx(",
    "assertAlmostEqual",
    "abs=",
    "rel=",
    "delta=",
    "places=",
    "pytest.raises(Exception",
    "pytest.raises(BaseException",
)
_SLEEP = re.compile(
    r"\btime\.sleep\s*\(|\basyncio\.sleep\s*\(|(?<![\w.])sleep\s*\(|\bsetTimeout\s*\("
    r"|Thread\.sleep\s*\(|\btime\.Sleep\s*\(|\busleep\s*\("
)
_RETRY = re.compile(
    r"\bretr(?:y|ies|ying)\b|@retry|\btenacity\b|\bbackoff\.|\bflaky\b|\breruns?\b"
    r"|\bmax_attempts\b|\battempts?\s*[<>]=?\s*\d",
    re.IGNORECASE,
)
_TIMEOUT_WORD = re.compile(r"timeout|deadline|time_limit", re.IGNORECASE)
_TIMEOUT_ADD = re.compile(
    r"pytest\.mark\.timeout|jest\.setTimeout|this\.timeout\s*\(|vi\.setConfig\([^)]*Timeout"
)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")


def _code(line: str, path: str) -> str:
    """The line without a trailing comment (naive; good enough for added-line heuristics)."""
    if path.endswith(".py"):
        return re.sub(r"\s#.*$|^\s*#.*$", "", line)
    return re.sub(r"\s//.*$|^\s*//.*$|^\s*/?\*.*$", "", line)


def _max_number(lines: Sequence[str]) -> float | None:
    nums = [float(n) for line in lines for n in _NUMBER.findall(line)]
    return max(nums) if nums else None


def anti_masking(diff: str, policy: PolicyConfig | None = None) -> tuple[Finding, ...]:
    """Ways the diff may hide a failure instead of fixing it."""
    policy = policy or PolicyConfig()
    try:
        patch_set = PatchSet(diff)
    except UnidiffParseError:
        return (Finding("unparsable_patch", "", None, "the diff could not be parsed"),)
    findings: list[Finding] = []
    for pf in patch_set:
        path = (pf.source_file if pf.is_removed_file else pf.target_file).removeprefix("a/")
        path = path.removeprefix("b/")
        test = is_test_path(path)
        added = [(ln.target_line_no, ln.value.rstrip("\n")) for h in pf for ln in h if ln.is_added]
        removed = [
            (ln.source_line_no, ln.value.rstrip("\n")) for h in pf for ln in h if ln.is_removed
        ]
        if test and pf.is_removed_file:
            findings.append(Finding("deleted_test", path, None, "test file deleted"))
            continue

        def names(lines: list[tuple[int | None, str]]) -> dict[str, int | None]:
            out: dict[str, int | None] = {}
            for no, text in lines:
                m = _TEST_DEF.search(text)
                if m:
                    out[m.group(1) or m.group(3) or m.group(4)] = no
            return out

        if test:
            gone = set(names(removed)) - set(names(added))
            for name in sorted(gone):
                findings.append(
                    Finding("deleted_test", path, names(removed)[name], f"test {name} removed")
                )
        for no, text in added:
            code = _code(text, path)
            if _SKIP.search(code):
                findings.append(Finding("skipped_test", path, no, code.strip()[:160]))
            elif _XFAIL.search(code):
                findings.append(Finding("xfail", path, no, code.strip()[:160]))
        if test:
            rem_asserts = [t for _, t in removed if _ASSERT.search(_code(t, path))]
            add_asserts = [(n, t) for n, t in added if _ASSERT.search(_code(t, path))]
            if len(rem_asserts) > len(add_asserts):
                findings.append(
                    Finding(
                        "removed_assertion",
                        path,
                        None,
                        f"{len(rem_asserts)} assertion line(s) removed, {len(add_asserts)} added",
                    )
                )
            removed_text = "\n".join(rem_asserts)
            for no, text in added:
                code = _code(text, path)
                loose = _ALWAYS_LOOSE.search(code)
                replaced = rem_asserts and _ASSERT.search(code)
                marker = next(
                    (m for m in _REPLACE_LOOSE if replaced and m in code and m not in removed_text),
                    None,
                )
                if loose or marker:
                    findings.append(Finding("loosened_assertion", path, no, code.strip()[:160]))
        if not policy.allow_sleeps:
            findings.extend(
                Finding("sleep", path, no, _code(t, path).strip()[:160])
                for no, t in added
                if _SLEEP.search(_code(t, path))
            )
        if not policy.allow_retries:
            removed_retry = {t.strip() for _, t in removed if _RETRY.search(_code(t, path))}
            findings.extend(
                Finding("retry", path, no, _code(t, path).strip()[:160])
                for no, t in added
                if _RETRY.search(_code(t, path)) and t.strip() not in removed_retry
            )
        if not policy.allow_timeout_increase:
            rem_t = [_code(t, path) for _, t in removed if _TIMEOUT_WORD.search(t)]
            for no, t in added:
                code = _code(t, path)
                if _TIMEOUT_ADD.search(code):
                    findings.append(Finding("timeout", path, no, code.strip()[:160]))
                elif _TIMEOUT_WORD.search(code) and rem_t:
                    new, old = _max_number([code]), _max_number(rem_t)
                    if new is not None and old is not None and new > old:
                        findings.append(
                            Finding("timeout", path, no, f"raised from {old:g} to {new:g}")
                        )
    return tuple(findings)


# -------------------------------------------------------------------------------- validation


def snapshot(ws: Workspace) -> str:
    """A tree object holding the work tree as it is now (ignored files excluded)."""
    ws.git("add", "-A")
    tree = ws.git("write-tree").strip()
    ws.git("reset", "-q")
    return tree


def apply_tree(ws: Workspace, tree: str, paths: Sequence[str] | None = None) -> None:
    """Make the work tree match `tree` (only `paths` when given; the rest stays at base)."""
    if paths is None:
        ws.git("read-tree", "-u", "--reset", tree)
        ws.git("reset", "-q")
        return
    present = set(ws.git("ls-tree", "-r", "--name-only", tree, "--", *paths).split("\n")) - {""}
    if present:
        ws.git("checkout", tree, "--", *sorted(present))
    for gone in set(paths) - present:
        ws.git("rm", "-q", "--ignore-unmatch", "--", gone)
    ws.git("reset", "-q")


def _failing(run: TestRun) -> set[str]:
    return set(run.failed) | set(run.errored)


def _log(title: str, run: TestRun) -> str:
    c = run.counts
    return (
        f"# {title}\n$ {run.command}\nexit code {run.exit_code}; {c.passed} passed, "
        f"{c.failed} failed, {c.errored} errors, {c.skipped} skipped\n\n{run.output}\n"
    )


def validate(
    workspace: Workspace,
    sandbox: Sandbox,
    plan: TestPlan,
    config: RepoConfig,
    reproduction_test: str | None,
    limits: Limits | None = None,
) -> Validation:
    """Measure red -> green, suite before/after and masking for the work tree's patch."""
    diff = workspace.diff()
    patch = Patch.from_diff(diff)
    if patch.empty:
        return Validation(
            Evidence(Reproduction(test=reproduction_test), notes=("no patch",)), patch
        )
    findings = anti_masking(diff, config.policy)
    tree = snapshot(workspace)
    test_files = [f for f in patch.files if is_test_path(f)]
    notes: list[str] = []
    test = reproduction_test or None
    if test and test.startswith("-"):
        notes.append(f"reproduction test id {test!r} rejected (looks like an option)")
        test = None
    try:
        # Red: base code plus the patch's test files.
        workspace.reset()
        apply_tree(workspace, tree, test_files)
        before = run_tests(sandbox, workspace.path, plan, (), limits)
        before_log = _log("suite on the base commit with the new tests", before)
        repro_before: Outcome | None = before.outcome_of(test) if test else None
        reruns: tuple[Outcome, ...] = ()
        flaky = False
        if test and repro_before == "failed" and config.flake_reruns > 0:
            check = flake_check(
                sandbox, workspace.path, plan, (test,), config.flake_reruns, limits
            )[test]
            reruns = tuple(cast(Outcome, o) for o in check.outcomes)
            flaky = check.flaky
            before_log += (
                f"# flake check: {len(reruns)} reruns of {test} on the base commit: "
                f"{', '.join(reruns)} -> {check.verdict}\n"
            )
        # Green: the full patch.
        workspace.reset()
        apply_tree(workspace, tree)
        after = run_tests(sandbox, workspace.path, plan, (), limits)
        after_log = _log("suite with the patch", after)
    finally:
        workspace.reset()
        apply_tree(workspace, tree)
    repro_after: Outcome | None = after.outcome_of(test) if test else None
    if test is None:
        notes.append("no reproduction test was named")
    elif repro_before == "error" and test not in before.output:
        notes.append(f"reproduction test {test} was not found in the base run")
    new_failures = sorted(_failing(after) - _failing(before))
    if after.outcome == "error" and before.outcome != "error" and not new_failures:
        new_failures.append(f"(suite did not run with the patch: exit code {after.exit_code})")
    vanished = sorted((set(before.passed) | _failing(before)) - set(after.passed) - _failing(after))
    vanished = [t for t in vanished if t not in after.skipped]
    if vanished:
        notes.append("tests present before but not run after: " + ", ".join(vanished[:10]))
    evidence = Evidence(
        reproduction=Reproduction(
            test=test, before=repro_before, after=repro_after, flaky=flaky, reruns=reruns
        ),
        suite=Suite(
            command=after.command,
            before=before.counts,
            after=after.counts,
            new_failures=tuple(new_failures),
            after_exit_code=after.exit_code,
        ),
        anti_masking=findings,
        notes=tuple(notes),
    )
    return Validation(evidence, patch, before_log, after_log)


# -------------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """One candidate patch and its validation."""

    label: str
    validation: Validation
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def patch(self) -> Patch:
        return self.validation.patch


def candidate_key(c: Candidate) -> tuple[int, int, int, int, int, int, int]:
    e = c.validation.evidence
    return (
        0 if e.validated else 1,
        0 if e.reproduction.red_to_green else 1,
        len(e.suite.new_failures),
        len(e.anti_masking),
        1 if c.patch.empty else 0,
        c.patch.changed_lines,
        len(c.patch.files),
    )


def rank_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Best first: validated, then red->green, fewer new failures and findings, then smaller."""
    return sorted(candidates, key=candidate_key)
