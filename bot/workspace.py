"""Workspaces: one bare mirror per repository in a cache, one git worktree per job.

The first job on a repository clones the mirror; later jobs fetch. Each job gets a detached
worktree at the exact commit the incident names (or the default branch) and removes it when
it ends. Credentials stay on the host side (environment given per git command), never in the
work tree or its config. May import: bot.errors.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import RepoError

GitEnv = Callable[[], Mapping[str, str]]
BOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "selfheal[bot]",
    "GIT_AUTHOR_EMAIL": "selfheal@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "selfheal[bot]",
    "GIT_COMMITTER_EMAIL": "selfheal@users.noreply.github.com",
}


def run_git(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, check: bool = True
) -> str:
    """Run git with a clean, non-interactive environment; RepoError on failure."""
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_TERMINAL_PROMPT": "0",
        "LANG": "C.UTF-8",
        **BOT_IDENTITY,
        **(env or {}),
    }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, errors="replace"
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise RepoError(f"git {args[0]} failed: {detail}")
    return proc.stdout


@dataclass
class Workspace:
    """A job's worktree at `base_sha`."""

    path: Path
    base_sha: str
    default_branch: str
    mirror: Path
    _env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def git(self, *args: str, check: bool = True) -> str:
        return run_git(*args, cwd=self.path, env=self._env, check=check)

    def diff(self) -> str:
        """The worktree's changes against the base commit, new files included."""
        self.git("add", "-A", "--intent-to-add")
        return self.git("diff", "--no-color", "--no-ext-diff", self.base_sha)

    def commit(self, message: str) -> str:
        """Commit every change on top of the base; returns the new commit's SHA."""
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def reset(self) -> None:
        """Back to the base commit, untracked files removed."""
        self.git("reset", "-q", "--hard", self.base_sha)
        self.git("clean", "-qfdx")


class WorkspaceManager:
    """Mirror cache and per-job worktrees under `cache_dir`."""

    def __init__(self, cache_dir: Path, git_env: GitEnv | None = None) -> None:
        self.cache_dir = cache_dir
        self._git_env = git_env or (lambda: {})

    def _mirror_path(self, source: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.rstrip("/").split("/")[-1])[:40]
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        return self.cache_dir / "mirrors" / f"{name}-{digest}.git"

    def mirror(self, source: str) -> Path:
        """Clone or fetch the bare mirror of `source` (a URL or a local path)."""
        path = self._mirror_path(source)
        env = self._git_env()
        if (path / "HEAD").exists():
            run_git(
                "fetch", "-q", "--prune", "origin", "+refs/heads/*:refs/heads/*", cwd=path, env=env
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            run_git("clone", "-q", "--bare", source, str(tmp), env=env)
            run_git("config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*", cwd=tmp)
            tmp.rename(path)
        return path

    def checkout(self, source: str, ref: str | None, job_id: str) -> Workspace:
        """A detached worktree of `source` at `ref` (default branch when None)."""
        mirror = self.mirror(source)
        default = run_git("symbolic-ref", "--short", "HEAD", cwd=mirror).strip()
        target = ref or default
        sha = run_git(
            "rev-parse", "--verify", "--quiet", f"{target}^{{commit}}", cwd=mirror, check=False
        ).strip()
        if not sha:
            raise RepoError(f"commit or ref {target!r} not found in {source}")
        path = self.cache_dir / "work" / job_id
        if path.exists():
            self.remove(Workspace(path, sha, default, mirror))
        path.parent.mkdir(parents=True, exist_ok=True)
        run_git("worktree", "add", "-q", "--detach", str(path), sha, cwd=mirror)
        return Workspace(path, sha, default, mirror, dict(self._git_env()))

    def remove(self, workspace: Workspace) -> None:
        """Delete the worktree and its registration in the mirror."""
        run_git(
            "worktree", "remove", "--force", str(workspace.path), cwd=workspace.mirror, check=False
        )
        shutil.rmtree(workspace.path, ignore_errors=True)
        run_git("worktree", "prune", cwd=workspace.mirror, check=False)
