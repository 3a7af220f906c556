"""Go and Rust repositories, detected and tested in the sandbox with the host's toolchain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.environment import EnvironmentBuilder
from bot.repo_config import RepoConfig
from bot.sandbox import Limits, Sandbox
from bot.testrun import run_tests
from bot.toolchain import detect
from bot.workspace import WorkspaceManager
from tests.support.gitrepo import make_repo

GO = {
    "go.mod": "module example.com/calc\n\ngo 1.19\n",
    "calc.go": "package calc\n\nfunc Add(a, b int) int { return a + b }\n",
    "calc_test.go": (
        'package calc\n\nimport "testing"\n\n'
        'func TestAdd(t *testing.T) { if Add(1, 2) != 3 { t.Fatal("1+2") } }\n\n'
        'func TestBroken(t *testing.T) { if Add(2, 2) != 5 { t.Fatal("2+2") } }\n'
    ),
}
RUST = {
    "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n',
    "src/lib.rs": (
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n"
        "#[cfg(test)]\nmod tests {\n"
        "    #[test]\n    fn adds() { assert_eq!(super::add(1, 2), 3); }\n"
        "    #[test]\n    fn broken() { assert_eq!(super::add(2, 2), 5); }\n}\n"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tool", "files", "passed", "failed"),
    [
        ("go", GO, "example.com/calc::TestAdd", "example.com/calc::TestBroken"),
        ("cargo", RUST, "tests::adds", "tests::broken"),
    ],
    ids=["go", "rust"],
)
def test_go_and_rust_run_offline_with_per_test_results(
    tmp_path: Path, bwrap: Sandbox, tool: str, files: dict[str, str], passed: str, failed: str
) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed on this host")
    source = make_repo(tmp_path / "src", files)
    ws = WorkspaceManager(tmp_path / "cache").checkout(str(source), None, "job")
    plan = detect(ws.path, RepoConfig())
    prepared = EnvironmentBuilder(tmp_path / "cache", bwrap).prepare(ws.path, plan, str(source))
    run = run_tests(bwrap, ws.path, prepared.plan, limits=Limits(timeout_s=180))
    assert run.exit_code != 0 and run.limit_hit is None
    assert run.passed == (passed,) and run.failed == (failed,)
    only = run_tests(bwrap, ws.path, prepared.plan, (passed,), limits=Limits(timeout_s=180))
    assert only.exit_code == 0 and only.passed == (passed,) and only.failed == ()
    assert ws.diff() == ""  # build caches and lockfiles the run wrote stay out of the patch
