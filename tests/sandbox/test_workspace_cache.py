"""Workspaces: credentials stay on the host side, the cache is bounded (LRU)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.sandbox import Sandbox
from bot.workspace import WorkspaceManager
from tests.support.gitrepo import make_repo

TOKEN = "ghs_selfhealFakeInstallationToken0001"


def git_auth_env() -> dict[str, str]:
    """What the credential provider hands git: a header in config variables, never argv."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {TOKEN}",
    }


def test_token_never_in_argv_config_worktree_or_sandbox(
    tmp_path: Path, bwrap: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Record every git argv through a wrapper first on PATH.
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    log = tmp_path / "argv.log"
    real_git = "/usr/bin/git"
    wrapper = wrapper_dir / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real_git} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")

    source = make_repo(tmp_path / "src", {"app.py": "x = 1\n"})
    manager = WorkspaceManager(tmp_path / "cache", git_env=git_auth_env)
    ws = manager.checkout(str(source), None, "job-1")
    (ws.path / "app.py").write_text("x = 2\n")
    ws.commit("fix")
    manager.checkout(str(source), None, "job-2")  # a fetch on the warm mirror

    assert log.read_text().count("\n") >= 5
    assert TOKEN not in log.read_text()
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    result = bwrap.run(["sh", "-c", "env; cat .git"], workdir=ws.path)
    assert result.ok and TOKEN not in result.output


def test_cache_is_bounded_with_least_recently_used_eviction(tmp_path: Path) -> None:
    sources = [
        make_repo(tmp_path / f"src{i}", {"blob.bin": os.urandom(200_000).hex()}) for i in range(3)
    ]
    manager = WorkspaceManager(tmp_path / "cache", max_cache_bytes=1_000_000, keep_recent_s=60)
    paths = []
    for i, source in enumerate(sources):
        ws = manager.checkout(str(source), None, f"job-{i}")
        manager.join()
        manager.remove(ws)
        paths.append(ws.mirror)
        os.utime(ws.mirror, (1_000_000 + i, 1_000_000 + i))  # used long ago, in this order
    in_use = manager.checkout(str(sources[0]), None, "job-running")  # a live worktree
    manager.join()
    os.utime(in_use.mirror, (1_000_000, 1_000_000))
    ws = manager.checkout(str(sources[2]), None, "job-again")
    manager.join()
    manager.remove(ws)
    kept = [p.exists() for p in paths]
    assert kept[2], "the mirror just used is kept"
    assert kept[0], "a mirror with a live worktree is kept"
    assert not kept[1], "the least recently used free mirror is evicted first"
    sizes = [size for _, size, _ in manager.cache_entries()]
    assert sum(sizes) <= 1_000_000


def test_a_known_commit_skips_the_fetch_and_a_branch_fetches(tmp_path: Path) -> None:
    from tests.support.gitrepo import git

    source = make_repo(tmp_path / "src", {"app.py": "x = 1\n"})
    first = git(source, "rev-parse", "HEAD")
    manager = WorkspaceManager(tmp_path / "cache")
    ws = manager.checkout(str(source), first, "job-1")
    (source / "app.py").write_text("x = 2\n")
    git(source, "commit", "-qam", "second")
    again = manager.checkout(str(source), first, "job-2")
    assert again.base_sha == first
    assert git(ws.mirror, "rev-parse", "main") == first  # no fetch happened
    latest = manager.checkout(str(source), None, "job-3")
    assert latest.base_sha == git(source, "rev-parse", "HEAD") != first
    assert (latest.path / "app.py").read_text() == "x = 2\n"


def test_reset_drops_changes_but_keeps_the_bots_caches(tmp_path: Path) -> None:
    # Between validation runs and candidates: what the repository ignores (an installed
    # virtualenv) stays, so the next run does not install again.
    source = make_repo(tmp_path / "src", {"app.py": "x = 1\n", ".gitignore": ".venv/\n"})
    manager = WorkspaceManager(tmp_path / "cache")
    ws = manager.checkout(str(source), None, "job")
    deps = tmp_path / "deps"
    deps.mkdir()
    (ws.path / "node_modules").symlink_to(deps)
    (ws.path / ".selfheal-pycache").mkdir()
    (ws.path / "app.py").write_text("x = 2\n")
    (ws.path / "scratch.py").write_text("y = 1\n")
    (ws.path / "build").mkdir()
    (ws.path / ".venv" / "bin").mkdir(parents=True)
    (ws.path / ".venv" / "bin" / "python").write_text("")
    assert "scratch.py" in ws.diff() and "node_modules" not in ws.diff()
    ws.reset()
    assert (ws.path / ".venv" / "bin" / "python").exists()
    assert (ws.path / "app.py").read_text() == "x = 1\n"
    assert not (ws.path / "scratch.py").exists() and not (ws.path / "build").exists()
    assert (ws.path / "node_modules").is_symlink() and (ws.path / ".selfheal-pycache").is_dir()
    assert ws.diff() == ""
