from __future__ import annotations

from pathlib import Path

import pytest

from bot.delivery.local import deliver_local, inspect_repo
from bot.errors import RepoError, UsageError
from bot.policy import Action
from bot.workspace import WorkspaceManager
from tests.support.gitrepo import git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": "x = 1\n", "README.md": "hi\n"})


def _workspace_with_change(repo: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    manager = WorkspaceManager(tmp_path / "cache")
    ws = manager.checkout(str(repo), None, "job")
    (ws.path / "app.py").write_text("x = 2\n")
    return manager, ws


def test_pr_creates_branch_with_one_commit_and_leaves_checkout_alone(
    repo: Path, tmp_path: Path
) -> None:
    target = inspect_repo(repo)
    _, ws = _workspace_with_change(repo, tmp_path)
    result = deliver_local(target, ws, "selfheal/abc123", Action.PR, "fix: x")
    assert result["branch"] == "selfheal/abc123" and not result["merged"]
    assert git(repo, "rev-list", "--count", "main..selfheal/abc123") == "1"
    assert git(repo, "show", "selfheal/abc123:app.py") == "x = 2"
    assert (repo / "app.py").read_text() == "x = 1\n"
    assert git(repo, "status", "--porcelain") == ""


def test_merge_fast_forwards_the_checked_out_default_branch(repo: Path, tmp_path: Path) -> None:
    target = inspect_repo(repo)
    _, ws = _workspace_with_change(repo, tmp_path)
    result = deliver_local(target, ws, "selfheal/abc123", Action.MERGE, "fix: x")
    assert result["merged"]
    assert (repo / "app.py").read_text() == "x = 2\n"
    assert git(repo, "log", "--format=%s", "-1") == "fix: x"


def test_merge_into_dirty_branch_is_refused_and_repo_untouched(repo: Path, tmp_path: Path) -> None:
    (repo / "README.md").write_text("local edit\n")
    target = inspect_repo(repo)
    _, ws = _workspace_with_change(repo, tmp_path)
    branches_before = git(repo, "branch", "--list")
    with pytest.raises(UsageError, match="uncommitted changes"):
        deliver_local(target, ws, "selfheal/abc123", Action.MERGE, "fix: x")
    assert git(repo, "branch", "--list") == branches_before
    assert (repo / "README.md").read_text() == "local edit\n"


def test_report_leaves_no_branch(repo: Path, tmp_path: Path) -> None:
    target = inspect_repo(repo)
    _, ws = _workspace_with_change(repo, tmp_path)
    assert deliver_local(target, ws, "selfheal/abc123", Action.REPORT, "fix: x")["branch"] is None
    assert "selfheal" not in git(repo, "branch", "--list")


def test_merge_when_branch_moved_leaves_the_fix_on_its_branch(repo: Path, tmp_path: Path) -> None:
    target = inspect_repo(repo)
    _, ws = _workspace_with_change(repo, tmp_path)
    (repo / "README.md").write_text("moved on\n")
    git(repo, "commit", "-qam", "someone else")
    result = deliver_local(target, ws, "selfheal/abc123", Action.MERGE, "fix: x")
    assert not result["merged"] and "moved" in result["note"]
    assert (repo / "app.py").read_text() == "x = 1\n"


@pytest.mark.parametrize("kind", ["missing", "not_git", "empty_git"])
def test_inspect_repo_rejects_unusable_paths(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "p"
    if kind != "missing":
        path.mkdir()
    if kind == "empty_git":
        git(path, "init", "-q")
    with pytest.raises(RepoError):
        inspect_repo(path)
