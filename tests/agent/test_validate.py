"""Validation: anti-masking rules on real git diffs, flake detection, candidate ranking."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.evidence import Evidence, Reproduction, Suite
from bot.patch import Patch
from bot.repo_config import PolicyConfig, RepoConfig
from bot.sandbox import Sandbox
from bot.toolchain import TestPlan
from bot.validate import Candidate, Validation, anti_masking, rank_candidates, validate
from bot.workspace import Workspace
from tests.support.agent_samples import SHOP, Sample
from tests.support.gitrepo import git, make_repo

Checkout = Callable[[Sample], Workspace]

TEST = """\
import pytest


def test_total():
    assert total([1, 2]) == 3
    assert total([]) == 0


def test_other():
    assert other() == "x"
"""
CODE = """\
import requests


def fetch(url):
    return requests.get(url, timeout=5)
"""


def diff_of(tmp_path: Path, changes: dict[str, str | None]) -> str:
    repo = make_repo(tmp_path / "r", {"tests/test_app.py": TEST, "app/net.py": CODE})
    for name, content in changes.items():
        if content is None:
            (repo / name).unlink()
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(content)
    git(repo, "add", "-A")
    # not tests.support.gitrepo.git: it strips the trailing context lines of the diff
    out = subprocess.run(
        ["git", "-C", str(repo), "diff", "--cached"], capture_output=True, text=True
    )
    return out.stdout


def kinds(diff: str, policy: PolicyConfig | None = None) -> set[str]:
    return {f.kind for f in anti_masking(diff, policy)}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"tests/test_app.py": None}, {"deleted_test"}),
        (
            {"tests/test_app.py": TEST.split("def test_other")[0]},
            {"deleted_test", "removed_assertion"},
        ),
        (
            {
                "tests/test_app.py": TEST.replace(
                    "def test_total", "@pytest.mark.skip\ndef test_total"
                )
            },
            {"skipped_test"},
        ),
        (
            {
                "tests/test_app.py": TEST.replace(
                    "def test_total", '@pytest.mark.xfail(reason="later")\ndef test_total'
                )
            },
            {"xfail"},
        ),
        (
            {"tests/test_app.py": TEST.replace("    assert total([]) == 0\n", "")},
            {"removed_assertion"},
        ),
        (
            {"tests/test_app.py": TEST.replace("== 3", "== 3 or True")},
            {"loosened_assertion"},
        ),
        (
            {
                "tests/test_app.py": TEST.replace(
                    "assert total([1, 2]) == 3", "assert total([1, 2]) >= 0"
                )
            },
            {"loosened_assertion"},
        ),
        (
            {
                "tests/test_app.py": TEST.replace(
                    'assert other() == "x"', "assert other() is not None"
                )
            },
            {"loosened_assertion"},
        ),
        ({"app/net.py": CODE.replace("    return", "    time.sleep(2)\n    return")}, {"sleep"}),
        (
            {
                "app/net.py": CODE.replace(
                    "def fetch", "@retry(stop=stop_after_attempt(3))\ndef fetch"
                )
            },
            {"retry"},
        ),
        ({"app/net.py": CODE.replace("timeout=5", "timeout=60")}, {"timeout"}),
        (
            {
                "tests/test_app.py": TEST.replace(
                    "def test_total", "@pytest.mark.timeout(600)\ndef test_total"
                )
            },
            {"timeout"},
        ),
    ],
    ids=[
        "deleted-file",
        "deleted-function",
        "skip",
        "xfail",
        "removed-assert",
        "or-true",
        "weaker-comparison",
        "is-not-none",
        "sleep",
        "retry",
        "raised-timeout",
        "timeout-marker",
    ],
)
def test_masking_patterns_are_found(
    tmp_path: Path, changes: dict[str, str | None], expected: set[str]
) -> None:
    assert kinds(diff_of(tmp_path, changes)) == expected


def test_honest_changes_are_not_findings(tmp_path: Path) -> None:
    diff = diff_of(
        tmp_path,
        {
            # a real fix, a lower timeout, a comment that mentions retries, and a new test
            "app/net.py": CODE.replace("timeout=5", "timeout=3").replace(
                "def fetch(url):", "def fetch(url):  # no retry here: callers decide"
            ),
            "tests/test_new.py": "def test_in():\n    assert 1 in [1, 2]\n    assert x >= 0\n",
            "tests/test_app.py": TEST.replace("== 3", "== 3  # sum of both"),
        },
    )
    assert anti_masking(diff) == ()


def test_repo_config_can_allow_sleeps_retries_and_timeouts(tmp_path: Path) -> None:
    code = CODE.replace("timeout=5", "timeout=9").replace(
        "    return", "    time.sleep(1)  # rate limit\n    for attempt in retries():\n    return"
    )
    diff = diff_of(tmp_path, {"app/net.py": code})
    assert kinds(diff) == {"sleep", "retry", "timeout"}
    lenient = PolicyConfig(allow_sleeps=True, allow_retries=True, allow_timeout_increase=True)
    assert kinds(diff, lenient) == set()


def test_flaky_reproduction_is_marked(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan, tmp_path: Path
) -> None:
    ws = checkout(SHOP)
    # Fails on the first run only, then passes: the flake check must notice. The counter lives
    # in the work tree, the only place the sandbox lets tests write.
    counter = ws.path / "flaky-count.txt"
    (ws.path / "tests/test_flaky.py").write_text(
        "from pathlib import Path\n\n\n"
        "def test_sometimes():\n"
        f"    p = Path({str(counter)!r})\n"
        "    n = int(p.read_text()) if p.exists() else 0\n"
        "    p.write_text(str(n + 1))\n"
        "    assert n > 0\n"
    )
    (ws.path / "shop/cart.py").write_text(
        (ws.path / "shop/cart.py")
        .read_text()
        .replace("    return sum", "    if not items:\n        return 0.0\n    return sum")
    )
    v = validate(
        ws, sandbox, plan, RepoConfig(flake_reruns=2), "tests/test_flaky.py::test_sometimes"
    )
    r = v.evidence.reproduction
    assert r.before == "failed" and r.reruns == ("passed", "passed") and r.flaky
    assert not r.red_to_green and not v.validated


def test_a_reproduction_that_already_passes_on_base_is_not_red(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan
) -> None:
    ws = checkout(SHOP)
    (ws.path / "shop/cart.py").write_text((ws.path / "shop/cart.py").read_text() + "\n# tidy\n")
    v = validate(
        ws, sandbox, plan, RepoConfig(flake_reruns=0), "tests/test_cart.py::test_line_total"
    )
    assert v.evidence.reproduction.before == "passed" and not v.validated


def test_new_suite_failures_are_listed(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan
) -> None:
    ws = checkout(SHOP)
    cart = ws.path / "shop/cart.py"
    cart.write_text(cart.read_text().replace("return price * qty", "return price + qty"))
    (ws.path / "tests/test_empty.py").write_text(
        "from shop.cart import average_price\n\n\ndef test_empty():\n    average_price([])\n"
    )
    v = validate(ws, sandbox, plan, RepoConfig(flake_reruns=1), "tests/test_empty.py::test_empty")
    assert v.evidence.suite.new_failures == ("tests/test_cart.py::test_line_total",)
    assert v.evidence.reproduction.before == "failed"
    assert v.evidence.reproduction.after == "failed"  # the bug is still there
    assert "price + qty" in cart.read_text()  # the work tree keeps the patch


def test_no_patch_gives_empty_evidence(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan
) -> None:
    v = validate(checkout(SHOP), sandbox, plan, RepoConfig(), None)
    assert v.patch.empty and not v.validated and "no patch" in v.evidence.notes


def _cand(label: str, validated: bool, lines: int) -> Candidate:
    repro = Reproduction("t", "failed", "passed" if validated else "failed")
    ev = Evidence(repro, Suite(new_failures=()))
    return Candidate(label, Validation(ev, Patch("x", ("a.py",), lines, 0)))


def test_candidates_rank_by_validation_then_size() -> None:
    ranked = rank_candidates(
        [_cand("big-ok", True, 30), _cand("small-bad", False, 1), _cand("small-ok", True, 3)]
    )
    assert [c.label for c in ranked] == ["small-ok", "big-ok", "small-bad"]


def test_go_tests_and_specs_folders_are_test_files(tmp_path: Path) -> None:
    # The conventions localization ranks by (see test_localize.py).
    tests = ("pkg/cart/cart_test.go", "specs/cart.js")
    repo = make_repo(tmp_path / "r", {**{name: "x\n" for name in tests}, "pkg/cart/cart.go": "y\n"})
    for name in (*tests, "pkg/cart/cart.go"):
        (repo / name).unlink()
    git(repo, "add", "-A")
    diff = subprocess.run(
        ["git", "-C", str(repo), "diff", "--cached"], capture_output=True, text=True
    ).stdout
    deleted = {f.file for f in anti_masking(diff) if f.kind == "deleted_test"}
    assert deleted == set(tests)
