"""The flake check reruns base-commit failures in the sandbox and classifies them."""

from __future__ import annotations

from pathlib import Path

from bot.environment import EnvironmentBuilder
from bot.flake import flake_check
from bot.repo_config import RepoConfig
from bot.sandbox import Limits, Sandbox
from bot.testrun import run_tests
from bot.toolchain import detect
from bot.workspace import WorkspaceManager
from tests.support.gitrepo import make_repo

TESTS = """\
import pathlib


def test_always_broken():
    assert 1 + 1 == 3


def test_sometimes():
    counter = pathlib.Path("counter.txt")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    assert n % 2 == 1
"""


def test_flake_check_tells_deterministic_from_flaky(
    tmp_path: Path, bwrap: Sandbox, builder: EnvironmentBuilder
) -> None:
    source = make_repo(tmp_path / "src", {"pyproject.toml": "", "test_app.py": TESTS})
    ws = WorkspaceManager(builder.cache_dir).checkout(str(source), None, "job")
    plan = builder.prepare(ws.path, detect(ws.path, RepoConfig()), str(source)).plan
    base = run_tests(bwrap, ws.path, plan, limits=Limits(timeout_s=60))
    assert set(base.failed) == {"test_app.py::test_always_broken", "test_app.py::test_sometimes"}
    verdicts = flake_check(bwrap, ws.path, plan, base.failed, reruns=3)
    broken, sometimes = (verdicts[t] for t in sorted(base.failed))
    assert broken.verdict == "deterministic" and broken.outcomes == ("failed",) * 3
    assert sometimes.verdict == "flaky" and "passed" in sometimes.outcomes
