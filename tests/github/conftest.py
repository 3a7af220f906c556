"""Fixtures for GitHub delivery tests: a fake GitHub, the App client, a worktree with a fix."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.evidence import Evidence, Reproduction, Suite, SuiteCounts
from bot.github.app import GitHubApp, RetryPolicy
from bot.github.credentials import git_auth_env
from bot.incident import Frame, Incident
from bot.patch import Patch
from bot.policy import Action, Decision, Facts, decide
from bot.repo_config import RepoConfig, parse_repo_config
from tests.support.fake_github import FakeGitHub, fake_github
from tests.support.gitrepo import GIT_ENV

REPO = "acme/shop"
FILES = {"app/cart.py": "def total(items):\n    return sum(items) / len(items)\n"}
INCIDENT = Incident(
    source="sentry",
    title="ZeroDivisionError: division by zero",
    error_type="ZeroDivisionError",
    frames=(Frame(file="app/cart.py", line=2, function="total"),),
    repo=REPO,
    severity="error",
    links=("https://sentry.example/organizations/acme/issues/42/",),
    external_id="42",
)


@pytest.fixture
def gh(tmp_path: Path) -> Iterator[FakeGitHub]:
    with fake_github(tmp_path / "github") as fake:
        fake.add_repo(
            REPO, FILES, permissions={"alice": "write", "rita": "read", "max": "maintain"}
        )
        fake.add_issue(REPO, 7, "Checkout crashes on an empty cart")
        yield fake


@pytest.fixture
def app(gh: FakeGitHub) -> GitHubApp:
    fast = RetryPolicy(read_backoff_s=0.01)
    return GitHubApp(
        gh.app_id, gh.private_key, gh.api_url, timeout=10, retry=fast, write_interval_s=0
    )


def make_worktree(gh: FakeGitHub, app: GitHubApp, path: Path, content: str) -> Path:
    """Clone the repo from the fake (token in git's environment only) and commit a fix."""
    url = gh.clone_url(REPO)
    env = {**os.environ, **GIT_ENV, **git_auth_env(app.installation_token(1), url)}
    subprocess.run(["git", "clone", "-q", url, str(path)], check=True, env=env)
    (path / "app/cart.py").write_text(content)
    subprocess.run(
        ["git", "-C", str(path), "commit", "-qam", "Fix empty cart"], check=True, env=env
    )
    return path


FIX = "def total(items):\n    return sum(items) / len(items) if items else 0\n"


@pytest.fixture
def worktree(gh: FakeGitHub, app: GitHubApp, tmp_path: Path) -> Path:
    return make_worktree(gh, app, tmp_path / "wt", FIX)


def decision_for(action: Action) -> Decision:
    """A real policy decision at the wanted level (each built from one changed fact)."""
    evidence = Evidence(
        reproduction=Reproduction("tests/test_cart.py::test_empty", "failed", "passed"),
        suite=Suite("pytest", SuiteCounts(3, 1), SuiteCounts(4, 0)),
    )
    patch = Patch("diff", ("app/cart.py",), 1, 1)
    config: RepoConfig = parse_repo_config("policy:\n  auto_merge: true\n")
    if action is Action.PR:
        config = RepoConfig()
    if action is Action.DRAFT_PR:
        evidence = Evidence(suite=evidence.suite)
    if action is Action.REPORT:
        patch = Patch("diff", (".github/workflows/ci.yml",), 1, 1)
    decision = decide(Facts(INCIDENT, patch, evidence, config))
    assert decision.action is action
    return decision
