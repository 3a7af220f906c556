"""Real open-source projects (PyPI sdists, an npm tarball) tested through workspace + sandbox:
their environments are built offline in the sandbox and their results read correctly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.environment import EnvironmentBuilder
from bot.repo_config import load_repo_config
from bot.sandbox import Limits, Sandbox
from bot.testrun import run_tests
from bot.toolchain import detect
from bot.workspace import WorkspaceManager
from tests.sandbox.conftest import FIXTURES, repo_from_archive

LIMITS = Limits(timeout_s=120)
NODE_CONFIG = {".github/selfheal.yml": "setup: []\ntest: node --test\n"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("archive", "broken_file", "broken_test", "broken_id", "least_passed", "known_id"),
    [
        (
            "sdists/six-1.16.0.tar.gz",
            "test_six.py",
            "\n\ndef test_selfheal_broken():\n    assert six.PY3 is False\n",
            "test_six.py::test_selfheal_broken",
            150,
            "test_six.py::test_add_metaclass",
        ),
        (
            "sdists/toolz-0.12.1.tar.gz",
            "toolz/tests/test_itertoolz.py",
            "\n\ndef test_selfheal_broken():\n    assert frequencies('aab') == {'a': 1}\n",
            "toolz/tests/test_itertoolz.py::test_selfheal_broken",
            150,
            "toolz/tests/test_itertoolz.py::test_frequencies",
        ),
    ],
    ids=["six", "toolz"],
)
def test_python_sdists_run_and_report_per_test(
    tmp_path: Path,
    bwrap: Sandbox,
    builder: EnvironmentBuilder,
    archive: str,
    broken_file: str,
    broken_test: str,
    broken_id: str,
    least_passed: int,
    known_id: str,
) -> None:
    source = repo_from_archive(FIXTURES / archive, tmp_path / "src")
    manager = WorkspaceManager(builder.cache_dir)
    ws = manager.checkout(str(source), None, "job-1")
    plan = detect(ws.path, load_repo_config(ws.path))
    assert (plan.language, plan.runner) == ("python", "pytest")
    prepared = builder.prepare(ws.path, plan, str(source))
    assert not prepared.warm

    green = run_tests(bwrap, ws.path, prepared.plan, limits=LIMITS)
    assert green.exit_code == 0, green.output[-2000:]
    assert green.outcome == "passed"
    assert len(green.passed) >= least_passed and not green.failed
    assert known_id in green.passed

    with (ws.path / broken_file).open("a") as handle:
        handle.write(broken_test)
    red = run_tests(bwrap, ws.path, prepared.plan, limits=LIMITS)
    assert red.exit_code == 1
    assert red.failed == (broken_id,)
    assert red.outcome_of(broken_id) == "failed"
    only = run_tests(bwrap, ws.path, prepared.plan, (broken_id,), limits=LIMITS)
    assert only.failed == (broken_id,) and only.passed == ()
    assert ".selfheal" not in ws.diff()  # the bot's own files never enter a patch

    second = manager.checkout(str(source), None, "job-2")
    again = builder.prepare(
        second.path, detect(second.path, load_repo_config(second.path)), str(source)
    )
    assert again.warm and again.env_dir == prepared.env_dir
    manager.remove(ws)
    manager.remove(second)


@pytest.mark.slow
def test_npm_package_runs_with_node_test_and_reports_per_test(
    tmp_path: Path, bwrap: Sandbox, builder: EnvironmentBuilder
) -> None:
    source = repo_from_archive(
        FIXTURES / "npm" / "fastify-error-4.2.0.tgz", tmp_path / "src", NODE_CONFIG
    )
    manager = WorkspaceManager(builder.cache_dir)
    ws = manager.checkout(str(source), None, "job-node")
    plan = detect(ws.path, load_repo_config(ws.path))
    assert (plan.language, plan.runner, plan.setup) == ("javascript", "node", ())
    prepared = builder.prepare(ws.path, plan, str(source))
    green = run_tests(bwrap, ws.path, prepared.plan, limits=LIMITS)
    assert green.exit_code == 0, green.output[-2000:]
    assert len(green.passed) >= 25 and not green.failed
    assert "Create error with zero parameter" in green.passed

    with (ws.path / "test" / "index.test.js").open("a") as handle:
        handle.write(
            "\ntest('selfheal broken', () => { require('node:assert').strictEqual(1, 2) })\n"
        )
    red = run_tests(bwrap, ws.path, prepared.plan, limits=LIMITS)
    assert red.exit_code == 1
    assert red.failed == ("selfheal broken",)
    manager.remove(ws)
