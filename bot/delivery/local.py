"""Local delivery for `selfheal fix`: a branch `selfheal/<short fingerprint>` with one commit.

`merge` fast-forwards the default branch, `pr` and `draft_pr` leave the branch, `report`
leaves nothing. The user's repository is touched only here, and only after every check that
could refuse has passed. May import: bot.workspace, bot.policy, bot.errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import RepoError, UsageError
from bot.policy import Action
from bot.workspace import Workspace, run_git


@dataclass(frozen=True)
class LocalTarget:
    """The user's repository as found before the job starts."""

    path: Path
    branch: str | None  # the checked-out branch (None when HEAD is detached)
    head: str

    def is_dirty(self) -> bool:
        status = run_git("status", "--porcelain", "--untracked-files=no", cwd=self.path)
        return bool(status.strip())


def inspect_repo(path: Path) -> LocalTarget:
    """Check that `path` is a git work tree with at least one commit."""
    if not path.is_dir():
        raise RepoError(f"{path} is not a directory; give the path of a git repository")
    top = run_git("rev-parse", "--show-toplevel", cwd=path, check=False).strip()
    if not top:
        raise RepoError(f"{path} is not a git repository; run `git init` or pass a repository path")
    head = run_git("rev-parse", "--verify", "--quiet", "HEAD", cwd=path, check=False).strip()
    if not head:
        raise RepoError(f"{path} has no commits yet; commit the code to fix first")
    branch = run_git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=path, check=False).strip()
    return LocalTarget(Path(top), branch or None, head)


def deliver_local(
    target: LocalTarget, workspace: Workspace, branch: str, action: Action, message: str
) -> dict[str, Any]:
    """Create the branch (and fast-forward for merge). Returns what was done."""
    if action == Action.REPORT:
        return {"kind": "local", "branch": None, "merged": False}
    if action == Action.MERGE and target.branch and target.is_dirty():
        raise UsageError(
            f"cannot merge into {target.branch}: it has uncommitted changes; commit or stash "
            "them and run again"
        )
    exists = run_git(
        "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=target.path, check=False
    )
    if exists.strip() and target.branch == branch:
        raise UsageError(f"branch {branch} is checked out; switch to another branch and run again")
    sha = workspace.commit(message)
    ref = f"refs/selfheal/{branch.rsplit('/', 1)[-1]}"
    run_git("update-ref", ref, sha, cwd=workspace.mirror)
    run_git("fetch", "-q", str(workspace.mirror), f"+{ref}:refs/heads/{branch}", cwd=target.path)
    run_git("update-ref", "-d", ref, cwd=workspace.mirror)
    merged = False
    note = ""
    if action == Action.MERGE:
        merged, note = _fast_forward(target, branch, sha)
    return {"kind": "local", "branch": branch, "commit": sha, "merged": merged, "note": note}


def _fast_forward(target: LocalTarget, branch: str, sha: str) -> tuple[bool, str]:
    """Fast-forward the default branch to the fix; never creates a merge commit."""
    if target.branch is None:
        return False, "HEAD is detached: left the fix on its branch"
    check = run_git("rev-list", "--count", f"{sha}..{target.branch}", cwd=target.path).strip()
    if check != "0":
        return False, f"{target.branch} moved since the job started: left the fix on {branch}"
    run_git("merge", "-q", "--ff-only", branch, cwd=target.path)
    return True, f"fast-forwarded {target.branch} to {sha[:12]}"
