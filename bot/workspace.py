"""Workspaces: one bare mirror per repository in a cache, one git worktree per job.

The first job on a repository clones the mirror; later jobs fetch. Each job gets a detached
worktree at the exact commit the incident names (or the default branch) and removes it when
it ends. Credentials stay on the host side (environment given per git command), never in the
work tree or its config. May import: bot.errors, bot.settings (types).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import RepoError

if TYPE_CHECKING:
    from bot.settings import Settings

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

    def diff_stat(self) -> str:
        """`git diff --stat` of the worktree against the base commit, new files included."""
        self.git("add", "-A", "--intent-to-add")
        return self.git("diff", "--stat", "--no-color", self.base_sha)

    def commit(self, message: str) -> str:
        """Commit every change on top of the base; returns the new commit's SHA."""
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def reset(self) -> None:
        """Back to the base commit, untracked files removed; ignored files stay (installed
        dependencies, build output, the bot's own caches and the linked dependencies)."""
        self.git("reset", "-q", "--hard", self.base_sha)
        self.git("clean", "-qfd")


_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _has_commit(mirror: Path, sha: str) -> bool:
    proc = subprocess.run(
        ["git", "cat-file", "-e", f"{sha}^{{commit}}"],
        cwd=mirror,
        capture_output=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_TERMINAL_PROMPT": "0"},
    )
    return proc.returncode == 0


def _default_branch(mirror: Path) -> str:
    """The mirror's default branch, read from its HEAD file (no git process needed)."""
    try:
        head = (mirror / "HEAD").read_text().strip()
    except OSError:
        head = ""
    if head.startswith("ref: refs/heads/"):
        return head.removeprefix("ref: refs/heads/")
    return run_git("symbolic-ref", "--short", "HEAD", cwd=mirror).strip()


# Files the bot itself (or a build it runs) puts into a work tree; never part of a patch
# (an untracked Cargo.lock is written by `cargo test`; a tracked one is unaffected).
EXCLUDES = ("/.selfheal-*", "/node_modules", "/Cargo.lock")


def tree_size(path: Path) -> int:
    """Bytes used by the files under `path` (hard links counted once)."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


class WorkspaceManager:
    """Mirror cache and per-job worktrees under `cache_dir`.

    `max_cache_bytes` bounds the mirrors and dependency environments in the cache: after each
    checkout a background pass removes the least recently used ones until the cache fits
    (mirrors with a live worktree, the one just used, and entries used within
    `keep_recent_s` are kept).
    """

    def __init__(
        self,
        cache_dir: Path,
        git_env: GitEnv | None = None,
        max_cache_bytes: int | None = None,
        keep_recent_s: float = 3600.0,
    ) -> None:
        self.cache_dir = cache_dir
        self._git_env = git_env or (lambda: {})
        self.max_cache_bytes = max_cache_bytes
        self.keep_recent_s = keep_recent_s  # entries used this recently may be in use: kept
        self._evicting: threading.Thread | None = None
        self._evict_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, git_env: GitEnv | None = None) -> WorkspaceManager:
        """The manager for `SELFHEAL_CACHE_DIR`, bounded by `SELFHEAL_CACHE_MAX_MB`."""
        return cls(settings.selfheal_cache_dir, git_env, settings.selfheal_cache_max_mb * 2**20)

    def cache_entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, path) for every mirror and environment in the cache."""
        entries = []
        for kind in ("mirrors", "envs"):
            folder = self.cache_dir / kind
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.is_dir() and not path.name.endswith(".tmp"):
                    entries.append((path.stat().st_mtime, tree_size(path), path))
        return sorted(entries)

    def evict(self, keep: tuple[Path, ...] = ()) -> list[Path]:
        """Remove least recently used cache entries until the cache fits its size limit.

        Entries used within `keep_recent_s` (a running job may have them mounted) and mirrors
        with live worktrees are kept, even when that leaves the cache over its limit.
        """
        if self.max_cache_bytes is None:
            return []
        with self._evict_lock:
            return self._evict(keep)

    def evict_in_background(self, keep: tuple[Path, ...] = ()) -> None:
        """Start an eviction pass unless one is running (the walk can take a while)."""
        if self.max_cache_bytes is None:
            return
        if self._evicting is None or not self._evicting.is_alive():
            self._evicting = threading.Thread(target=self.evict, args=(keep,), daemon=True)
            self._evicting.start()

    def join(self) -> None:
        """Wait for a background eviction pass to end."""
        if self._evicting is not None:
            self._evicting.join()

    def _evict(self, keep: tuple[Path, ...]) -> list[Path]:
        assert self.max_cache_bytes is not None
        entries = self.cache_entries()
        total = sum(size for _, size, _ in entries)
        removed: list[Path] = []
        recent = time.time() - self.keep_recent_s
        for used, size, path in entries:
            if total <= self.max_cache_bytes:
                break
            if (
                used > recent
                or path in keep
                or ((path / "worktrees").is_dir() and any((path / "worktrees").iterdir()))
            ):
                continue
            shutil.rmtree(path, ignore_errors=True)
            lock = path.with_name(path.name + ".lock")
            lock.unlink(missing_ok=True)
            total -= size
            removed.append(path)
        return removed

    def _mirror_path(self, source: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.rstrip("/").split("/")[-1])[:40]
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        return self.cache_dir / "mirrors" / f"{name}-{digest}.git"

    def mirror(self, source: str, need: str | None = None) -> Path:
        """Clone or fetch the bare mirror of `source` (a URL or a local path).

        When `need` is a full commit SHA the mirror already has, the fetch is skipped: a
        commit's content never changes, so a second job on the same release starts at once.
        """
        path = self._mirror_path(source)
        if (
            need is not None
            and _FULL_SHA.fullmatch(need)
            and (path / "HEAD").exists()
            and _has_commit(path, need)
        ):
            os.utime(path)
            return path
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
            (tmp / "info").mkdir(exist_ok=True)
            (tmp / "info" / "exclude").write_text("\n".join(EXCLUDES) + "\n")
            tmp.rename(path)
        os.utime(path)
        return path

    def checkout(self, source: str, ref: str | None, job_id: str) -> Workspace:
        """A detached worktree of `source` at `ref` (default branch when None)."""
        mirror = self.mirror(source, need=ref)
        default = _default_branch(mirror)
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
        self.evict_in_background(keep=(mirror,))
        return Workspace(path, sha, default, mirror, dict(self._git_env()))

    def remove(self, workspace: Workspace) -> None:
        """Delete the worktree and its registration in the mirror."""
        run_git(
            "worktree", "remove", "--force", str(workspace.path), cwd=workspace.mirror, check=False
        )
        shutil.rmtree(workspace.path, ignore_errors=True)
        run_git("worktree", "prune", cwd=workspace.mirror, check=False)
