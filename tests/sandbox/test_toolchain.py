"""Toolchain detection and `.github/selfheal.yml` overrides; the docker command; backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import SandboxError
from bot.repo_config import RepoConfig
from bot.sandbox import Limits, make_sandbox
from bot.sandbox.docker import DockerSandbox
from bot.sandbox.process import OutputBuffer
from bot.settings import load_settings
from bot.toolchain import detect
from bot.workspace import WorkspaceManager
from tests.support.gitrepo import make_repo


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "language", "runner", "pm"),
    [
        (
            {"pyproject.toml": "[project]\nname='a'\n[tool.pytest.ini_options]\n"},
            "python",
            "pytest",
            "uv",
        ),
        (
            {"setup.cfg": "[options]\n", "tox.ini": "commands = python -m unittest"},
            "python",
            "unittest",
            "uv",
        ),
        ({"requirements.txt": "requests\n"}, "python", "pytest", "uv"),
        (
            {"package.json": json.dumps({"devDependencies": {"jest": "29"}})},
            "javascript",
            "jest",
            "npm",
        ),
        (
            {
                "package.json": json.dumps({"devDependencies": {"vitest": "1"}}),
                "pnpm-lock.yaml": "",
            },
            "javascript",
            "vitest",
            "pnpm",
        ),
        (
            {"package.json": json.dumps({"devDependencies": {"mocha": "10"}}), "yarn.lock": ""},
            "javascript",
            "mocha",
            "yarn",
        ),
        (
            {"package.json": json.dumps({"scripts": {"test": "node --test"}})},
            "javascript",
            "node",
            "npm",
        ),
        ({"go.mod": "module x\n"}, "go", "go", "go"),
        ({"Cargo.toml": "[package]\nname='x'\n"}, "rust", "cargo", "cargo"),
    ],
)
def test_detection(
    tmp_path: Path, files: dict[str, str], language: str, runner: str, pm: str
) -> None:
    plan = detect(_tree(tmp_path, files), RepoConfig())
    assert (plan.language, plan.runner, plan.package_manager) == (language, runner, pm)


def test_repo_config_overrides_setup_test_and_env(tmp_path: Path) -> None:
    _tree(tmp_path, {"package.json": json.dumps({"devDependencies": {"jest": "29"}})})
    config = RepoConfig(setup=["npm ci"], test="npx vitest run", env={"TZ": "UTC"})
    plan = detect(tmp_path, config)
    assert plan.setup == ("npm ci",) and plan.setup_configured
    assert plan.test_command == ("npx", "vitest", "run") and plan.runner == "vitest"
    assert plan.env == {"TZ": "UTC"}
    assert "--outputFile.junit=out.xml" in plan.test_argv((), "out.xml")


def test_docker_command_is_isolated_and_limited(tmp_path: Path) -> None:
    limits = Limits(memory_mb=1024, pids=128, cpus=1.5, cpu_s=60, file_size_mb=10)
    cmd = DockerSandbox(image="img:1").command(
        ["pytest"], workdir=tmp_path, env={"A": "1"}, network=False, limits=limits, name="n"
    )
    text = " ".join(cmd)
    for part in (
        "--network none",
        "--read-only",
        "--pids-limit 128",
        "--memory 1024m",
        "--memory-swap 1024m",
        "--cpus 1.5",
        "--ulimit cpu=60",
        f"--ulimit fsize={10 * 1024 * 1024}",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--user 65534:65534",
        f"--volume {tmp_path}:{tmp_path}:rw",
        "--env A=1",
    ):
        assert part in text
    assert cmd[-2:] == ["img:1", "pytest"]
    with_net = DockerSandbox().command(
        ["npm", "ci"], workdir=tmp_path, env={}, network=True, limits=limits, name="n"
    )
    assert "none" not in with_net[with_net.index("--network") + 1]


def test_docker_kills_the_container_only_when_the_supervisor_stopped_it(tmp_path: Path) -> None:
    # A stand-in `docker` client: `run` runs the command (its last argument), `kill` is logged.
    kills = tmp_path / "kills"
    client = tmp_path / "docker"
    client.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = kill ]; then echo "$2" >> {kills}; exit 0; fi\n'
        'for last; do :; done\nexec sh -c "$last"\n'
    )
    client.chmod(0o755)
    sandbox = DockerSandbox(docker=str(client))
    done = sandbox.run(["sh", "-c", "echo ok"], workdir=tmp_path)
    assert done.ok and done.output == "ok\n"
    failed = sandbox.run(["sh", "-c", "exit 3"], workdir=tmp_path)
    assert failed.exit_code == 3
    assert not kills.exists(), "a command that ended by itself needs no docker kill"
    slow = sandbox.run(["sh", "-c", "sleep 30"], workdir=tmp_path, limits=Limits(timeout_s=0.5))
    assert slow.limit_hit == "timeout"
    assert kills.read_text().startswith("selfheal-")


def test_none_backend_needs_an_explicit_opt_in(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SandboxError, match="without isolation"):
        make_sandbox("none")
    plain = make_sandbox(load_settings({"SELFHEAL_SANDBOX": "none"}))
    for _ in range(2):
        assert plain.run(["true"], workdir=tmp_path).ok
    assert capfd.readouterr().err.count("without isolation") == 2
    assert make_sandbox(load_settings({})).name == "bwrap"


def test_output_buffer_keeps_head_and_tail() -> None:
    buffer = OutputBuffer(10)
    buffer.add(b"HEAD-" + b"m" * 100 + b"-TAIL")
    assert buffer.truncated and buffer.total == 110
    assert buffer.text().startswith("HEAD-") and buffer.text().endswith("-TAIL")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        env=None if env is None else {**os.environ, **env},
    )


def test_cli_exit_codes_and_limit_names(tmp_path: Path) -> None:
    done = _cli(str(tmp_path), "--", "sh", "-c", "echo streamed; exit 3")
    assert (done.returncode, done.stdout) == (3, "streamed\n")
    slow = _cli(str(tmp_path), "--timeout", "0.5", "--", "sleep", "10")
    assert slow.returncode == 124 and "timeout limit" in slow.stderr
    offline = _cli(
        str(tmp_path), "--", "python3", "-c", "import socket; socket.getaddrinfo('example.com', 80)"
    )
    assert offline.returncode == 1 and "gaierror" in offline.stdout
    bad = _cli(str(tmp_path / "missing"), "--", "true")
    assert bad.returncode == 2 and "not a directory" in bad.stderr


def test_cli_sees_the_configured_read_only_paths(tmp_path: Path) -> None:
    toolchain = tmp_path / "toolchain"
    toolchain.mkdir()
    (toolchain / "VERSION").write_text("toolchain 1.2\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {"SELFHEAL_SANDBOX": "bwrap", "SELFHEAL_SANDBOX_RO_PATHS": str(toolchain)}
    done = _cli(str(work), "--", "cat", str(toolchain / "VERSION"), env=env)
    assert (done.returncode, done.stdout) == (0, "toolchain 1.2\n"), done.stderr
    wrote = _cli(str(work), "--", "sh", "-c", f"echo x > {toolchain}/new", env=env)
    assert wrote.returncode != 0 and not (toolchain / "new").exists()


def test_jest_json_results_are_read() -> None:
    from bot.testrun import parse_jest_json

    report = {
        "testResults": [
            {
                "name": "/w/src/cart.test.js",
                "status": "failed",
                "assertionResults": [
                    {"fullName": "cart adds items", "title": "adds items", "status": "passed"},
                    {"fullName": "cart totals", "title": "totals", "status": "failed"},
                    {"fullName": "cart later", "title": "later", "status": "pending"},
                ],
            },
            {"name": "/w/src/broken.test.js", "status": "failed", "assertionResults": []},
        ]
    }
    passed, failed, errored, skipped = parse_jest_json(json.dumps(report), "/w")
    assert passed == ["src/cart.test.js::cart adds items"]
    assert failed == ["src/cart.test.js::cart totals"]
    assert skipped == ["src/cart.test.js::cart later"]
    assert errored == ["src/broken.test.js"]


def test_a_background_process_does_not_hold_the_command_open(tmp_path: Path) -> None:
    plain = make_sandbox("none", allow_unsafe=True)
    result = plain.run(["sh", "-c", "sleep 30 & echo done"], workdir=tmp_path)
    assert result.ok and result.output == "done\n"
    assert result.duration_s < 10


def test_what_a_command_under_none_writes_to_home_stays_out_of_the_patch(tmp_path: Path) -> None:
    # npm's logs, Go's caches: tools write under $HOME; none of it may reach the patch.
    source = make_repo(tmp_path / "src", {"app.py": "x = 1\n"})
    manager = WorkspaceManager(tmp_path / "cache")
    workspace = manager.checkout(str(source), None, "job-home")
    plain = make_sandbox("none", allow_unsafe=True)
    script = "mkdir -p $HOME/.npm/_logs && echo log > $HOME/.npm/_logs/debug.log && echo $HOME"
    result = plain.run(["sh", "-c", script], workdir=workspace.path)
    assert result.ok, result.output
    assert Path(result.output.strip()).is_relative_to(workspace.path)
    assert workspace.diff() == ""
    assert workspace.git("status", "--porcelain") == ""


def test_python_install_reads_requirements_pyproject_extras_and_setup_cfg(tmp_path: Path) -> None:
    from bot.environment import _pyproject_args

    _tree(
        tmp_path,
        {
            "pyproject.toml": (
                "[project]\nname='a'\ndependencies=['attrs']\n"
                "[project.optional-dependencies]\ntest=['hypothesis']\ndocs=['sphinx']\n"
            ),
            "setup.cfg": "[options]\ninstall_requires =\n    six\n",
            "requirements-dev.txt": "black\n",
        },
    )
    assert _pyproject_args(tmp_path / "pyproject.toml") == [
        "-r",
        "pyproject.toml",
        "--extra",
        "test",
    ]
    plan = detect(tmp_path, RepoConfig())
    assert set(plan.manifests) >= {"pyproject.toml", "setup.cfg", "requirements-dev.txt"}
    (tmp_path / "pyproject.toml").write_text("[tool.black]\n")
    assert _pyproject_args(tmp_path / "pyproject.toml") == []
