"""`selfheal fix` and `selfheal demo` end to end: real git, real bwrap, the scripted model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.demo import DemoSample, model_script, write_demo
from tests.support.gitrepo import git

runner = CliRunner()


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DemoSample:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SELFHEAL_CACHE_DIR", str(tmp_path / "cache"))
    # The sample's tests run on this interpreter, as in `selfheal demo`.
    monkeypatch.setenv("SELFHEAL_SANDBOX_RO_PATHS", ",".join({sys.prefix, sys.base_prefix}))
    return write_demo(tmp_path / "demo")


def _fix(sample: DemoSample, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        [
            "fix",
            str(sample.repo),
            "--incident",
            str(sample.incident),
            "--model",
            f"scripted:{sample.script}",
            *extra,
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def _state(repo: Path) -> tuple[str, str, str]:
    return (
        git(repo, "branch", "--list"),
        git(repo, "status", "--porcelain"),
        git(repo, "rev-parse", "HEAD"),
    )


def _configure(sample: DemoSample, extra_yaml: str) -> None:
    config = sample.repo / ".github" / "selfheal.yml"
    config.write_text(config.read_text() + extra_yaml)
    git(sample.repo, "commit", "-qam", "configure selfheal")


def test_fix_json_contract_red_to_green_and_pr_branch(sample: DemoSample, tmp_path: Path) -> None:
    code, out, _ = _fix(sample, "--json", "--out", str(tmp_path / "art"))
    doc = json.loads(out)
    assert code == 0
    assert len(doc["incident"]["fingerprint"]) == 64
    assert doc["decision"]["action"] == "pr" and doc["decision"]["would_merge"] is True
    rules = {r["rule"]: r["verdict"] for r in doc["decision"]["reasons"]}
    assert rules["red_to_green"] == "pass" and rules["auto_merge_enabled"] == "fail"
    rep = doc["evidence"]["reproduction"]
    assert rep["test"].startswith("tests/test_empty_cart.py::") and (
        rep["before"],
        rep["after"],
    ) == ("failed", "passed")
    suite = doc["evidence"]["suite"]
    assert (
        suite["before"]["passed"] == 3
        and suite["after"]["passed"] == 5
        and suite["new_failures"] == []
    )
    assert (
        "shop/cart.py" in doc["patch"]["files"]
        and doc["patch"]["added"] > 0
        and doc["patch"]["removed"] == 1
    )
    assert doc["branch"] == f"selfheal/{doc['incident']['fingerprint'][:12]}"
    assert (
        doc["cost"]["input_tokens"] > 0
        and doc["cost"]["output_tokens"] > 0
        and doc["cost"]["usd"] == 0
    )
    assert doc["scripted"] is True and doc["models"]["planner"].startswith("scripted:")
    artifacts = Path(doc["artifacts"])
    for name in (
        "report.md",
        "report.json",
        "patch.diff",
        "test-before.log",
        "test-after.log",
        "trajectory.jsonl",
    ):
        assert (artifacts / name).is_file(), name
    assert json.loads((artifacts / "report.json").read_text())["decision"] == doc["decision"]
    assert "scripted" in (artifacts / "report.md").read_text()
    # The user's checkout is untouched; the fix waits on its branch.
    assert git(sample.repo, "show", f"{doc['branch']}:shop/cart.py").count("if count == 0") == 1
    assert "if count == 0" not in (sample.repo / "shop/cart.py").read_text()
    assert git(sample.repo, "status", "--porcelain") == ""


def test_auto_merge_fast_forwards_the_default_branch(sample: DemoSample) -> None:
    _configure(sample, "policy:\n  auto_merge: true\n")
    code, out, _ = _fix(sample)
    assert code == 0, out
    assert "Decision   merge" in out
    assert "if count == 0" in (sample.repo / "shop/cart.py").read_text()
    assert git(sample.repo, "log", "-1", "--format=%an") == "selfheal[bot]"


def test_forbidden_path_ends_as_report_with_no_branch(sample: DemoSample) -> None:
    _configure(sample, "policy:\n  auto_merge: true\n  forbidden_paths: ['shop/**']\n")
    before = _state(sample.repo)
    code, out, _ = _fix(sample, "--json")
    doc = json.loads(out)
    assert code == 1
    assert doc["decision"]["action"] == "report" and doc["branch"] is None
    assert any(
        r["rule"] == "forbidden_paths" and r["verdict"] == "fail"
        for r in doc["decision"]["reasons"]
    )
    assert _state(sample.repo) == before


def test_merge_into_dirty_checkout_is_refused_and_repo_left_as_is(sample: DemoSample) -> None:
    _configure(sample, "policy:\n  auto_merge: true\n")
    (sample.repo / "README.md").write_text("work in progress\n")
    before = _state(sample.repo)
    code, out, err = _fix(sample)
    assert code == 2 and out == ""
    assert "uncommitted changes" in err and len(err.strip().splitlines()) == 1
    assert _state(sample.repo) == before


def test_script_out_of_turns_ends_as_report_saying_so(sample: DemoSample) -> None:
    script = model_script()
    script["roles"]["fixer"] = script["roles"]["fixer"][:1]
    sample.script.write_text(json.dumps(script))
    before = _state(sample.repo)
    code, out, _ = _fix(sample)
    assert code == 1
    assert "Agent      error" in out and "fixer" in out
    assert _state(sample.repo) == before


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_a_repo", "is not a git repository"),
        ("missing_incident", "does not exist"),
        ("garbage_incident", "incident"),
        ("frames_elsewhere", "none of the incident's stack frames"),
        ("unknown_provider", "provider"),
        ("unknown_role", "unknown role"),
        ("malformed_script", "script"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_repo_untouched(
    sample: DemoSample, tmp_path: Path, case: str, message: str
) -> None:
    repo, incident, models = sample.repo, sample.incident, [f"scripted:{sample.script}"]
    if case == "not_a_repo":
        repo = tmp_path / "plain"
        repo.mkdir()
    elif case == "missing_incident":
        incident = tmp_path / "nope.json"
    elif case == "garbage_incident":
        incident = tmp_path / "garbage.txt"
        incident.write_bytes(b"\x00\x01 this is not an incident \xff" * 10)
    elif case == "frames_elsewhere":
        incident = tmp_path / "tb.txt"
        incident.write_text(
            'Traceback (most recent call last):\n  File "/srv/other/billing/invoice.py", line 3, in total\n'
            "    return a / b\nZeroDivisionError: division by zero\n"
        )
    elif case == "unknown_provider":
        models = ["fixer=mystery:model-1"]
    elif case == "unknown_role":
        models = ["janitor=scripted:x.json"]
    elif case == "malformed_script":
        sample.script.write_text('{"version": 1, "roles": {"planner": "not a list"}}')
    before = _state(sample.repo)
    args = ["fix", str(repo), "--incident", str(incident)]
    for model in models:
        args += ["--model", model]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("selfheal: error: ") and message in lines[0], (
        lines
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert _state(sample.repo) == before


def test_demo_prints_the_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SELFHEAL_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "ZeroDivisionError: division by zero" in out
    assert "failed -> passed" in out
    assert "+    if count == 0:" in out
    assert "Decision   pr (would have merged" in out
    assert "Artifacts" in out


INI_TEST = """import iniconfig


def test_reads_the_shop_settings(tmp_path):
    path = tmp_path / "shop.ini"
    path.write_text("[checkout]\\ncurrency = EUR\\n")
    assert iniconfig.IniConfig(path)["checkout"]["currency"] == "EUR"
"""


def _with_requirements(sample: DemoSample, requirements: str) -> None:
    """The sample as a project with dependencies: tested by detection, not on this interpreter."""
    (sample.repo / ".github" / "selfheal.yml").write_text("version: 1\n")
    (sample.repo / "requirements.txt").write_text(requirements)
    (sample.repo / "tests" / "test_settings.py").write_text(INI_TEST)
    git(sample.repo, "add", "-A")
    git(sample.repo, "commit", "-qm", "read the shop settings with iniconfig")


def test_dependencies_are_installed_once_and_reused(
    sample: DemoSample, offline_index: None, tmp_path: Path
) -> None:
    _with_requirements(sample, "iniconfig\n")
    code, out, _ = _fix(sample, "--json")
    doc = json.loads(out)
    assert code == 0, doc["decision"]
    # The suite ran in the installed environment: pytest and iniconfig came from the wheels.
    suite = doc["evidence"]["suite"]
    assert (suite["before"]["passed"], suite["after"]["passed"]) == (4, 6)
    assert doc["environment"] == {"warm": False} and doc["timing"]["environment_s"] > 0

    code, out, _ = _fix(sample, "--json")
    again = json.loads(out)
    assert code == 0 and again["environment"] == {"warm": True}
    assert again["evidence"]["suite"]["after"]["passed"] == 6
    assert len(list((tmp_path / "cache" / "envs").glob("py-*/"))) == 1


def test_failed_install_ends_as_report_saying_why(sample: DemoSample, offline_index: None) -> None:
    _with_requirements(sample, "no-such-package-for-selfheal\n")
    before = _state(sample.repo)
    code, out, _ = _fix(sample, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["decision"]["action"] == "report" and doc["branch"] is None
    failed = {r["rule"]: r["detail"] for r in doc["decision"]["reasons"] if r["verdict"] == "fail"}
    assert "installing the repository's dependencies failed" in failed["job_completed"]
    assert "no-such-package-for-selfheal" in doc["environment"]["error"]
    assert doc["cost"]["input_tokens"] == 0
    assert _state(sample.repo) == before
