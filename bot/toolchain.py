"""Detect how to set up and test a repository; `.github/selfheal.yml` overrides.

Python (pyproject.toml / setup.cfg / setup.py / requirements*.txt; pytest or unittest),
JavaScript/TypeScript (package.json with npm, pnpm or yarn; jest, vitest, mocha, node --test),
Go (`go test ./...`) and Rust (`cargo test`). The repository's `test:` replaces the detected
command, `setup:` the detected install commands, and `env:` adds non-secret variables.
May import: bot.repo_config.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.repo_config import RepoConfig

JUNIT_NAME = ".selfheal-junit.xml"
JEST_JSON_NAME = ".selfheal-jest.json"
PY_MANIFESTS = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "tox.ini",
)
JS_MANIFESTS = ("package.json", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml")
JS_MANIFESTS_YARN = ("yarn.lock",)


@dataclass(frozen=True)
class TestPlan:
    """How to prepare and test one repository."""

    __test__ = False  # not a pytest test class

    language: str  # python | javascript | go | rust | configured
    test_command: tuple[str, ...]  # argv
    setup: tuple[str, ...] = ()  # shell commands run with network (install phase)
    env: dict[str, str] = field(default_factory=dict)
    runner: str = "custom"  # pytest | unittest | jest | vitest | mocha | node | go | cargo | custom
    package_manager: str | None = None  # uv | npm | pnpm | yarn | go | cargo
    manifests: tuple[str, ...] = ()  # files (relative) whose content keys the dependency cache
    setup_configured: bool = False  # `setup:` came from the repository's config
    ro_paths: tuple[str, ...] = ()  # host paths the commands need (environment, toolchain)

    def test_argv(
        self, selection: tuple[str, ...] = (), junit_path: str | None = None
    ) -> list[str]:
        """The test command, narrowed to `selection`, writing structured results where it can."""
        argv = list(self.test_command)
        if self.runner == "pytest":
            if junit_path:
                argv.append(f"--junitxml={junit_path}")
            argv.extend(selection)
        elif self.runner == "node":
            if junit_path:
                argv[2:2] = [
                    "--test-reporter=spec",
                    "--test-reporter-destination=stdout",
                    "--test-reporter=junit",
                    f"--test-reporter-destination={junit_path}",
                ]
            argv.extend(selection)
        elif self.runner == "vitest":
            if junit_path:
                argv += [
                    "--reporter=default",
                    "--reporter=junit",
                    f"--outputFile.junit={junit_path}",
                ]
            argv.extend(selection)
        elif self.runner == "mocha":
            if junit_path:
                argv += ["--reporter", "xunit", "--reporter-option", f"output={junit_path}"]
            argv.extend(selection)
        elif self.runner == "jest":
            if junit_path:
                argv += ["--json", f"--outputFile={JEST_JSON_NAME}"]
            argv.extend(selection)
        elif self.runner == "go":
            argv.append("-json")
            if selection:
                argv += ["-run", "^(" + "|".join(s.split("::")[-1] for s in selection) + ")$"]
        elif selection:
            argv.extend(selection)
        return argv

    @property
    def writes_junit(self) -> bool:
        return self.runner in ("pytest", "node", "vitest", "mocha")


def _runner_of(argv: tuple[str, ...]) -> str:
    """The runner a configured test command uses, from its words."""
    words = [Path(a).name for a in argv[:4]]
    if "pytest" in words or "py.test" in words:
        return "pytest"
    if words[:1] == ["node"] and "--test" in argv:
        return "node"
    for runner in ("jest", "vitest", "mocha"):
        if runner in words:
            return runner
    if words[:2] == ["go", "test"]:
        return "go"
    if words[:2] == ["cargo", "test"]:
        return "cargo"
    if "unittest" in argv[:4]:
        return "unittest"
    return "custom"


def _read(path: Path, limit: int = 512 * 1024) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _requirements(worktree: Path) -> list[str]:
    found = sorted(p.name for p in worktree.glob("requirements*.txt"))
    found += sorted(p.name for p in worktree.glob("*requirements.txt") if p.name not in found)
    return found


def _python(worktree: Path) -> TestPlan | None:
    reqs = _requirements(worktree)
    present = [m for m in PY_MANIFESTS if (worktree / m).is_file()]
    if not present and not reqs:
        return None
    texts = " ".join(_read(worktree / m) for m in [*present, *reqs, "Makefile", "noxfile.py"])
    uses_pytest = (
        "pytest" in texts
        or (worktree / "conftest.py").is_file()
        or (worktree / "pytest.ini").is_file()
    )
    if not uses_pytest and "unittest" in texts:
        command: tuple[str, ...] = ("python3", "-m", "unittest", "discover", "-v")
        runner = "unittest"
    else:
        command = ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider")
        runner = "pytest"
    return TestPlan("python", command, (), {}, runner, "uv", tuple([*present, *reqs]))


def _javascript(worktree: Path) -> TestPlan | None:
    manifest = worktree / "package.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(_read(manifest))
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    deps: dict[str, object] = {}
    for key in ("dependencies", "devDependencies"):
        if isinstance(data.get(key), dict):
            deps.update(data[key])
    scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
    script = str((scripts or {}).get("test", ""))
    setup: tuple[str, ...]
    command: tuple[str, ...]
    if (worktree / "pnpm-lock.yaml").is_file():
        pm = "pnpm"
        setup = ("pnpm install --frozen-lockfile --prefer-offline",)
    elif (worktree / "yarn.lock").is_file():
        pm = "yarn"
        setup = ("yarn install --frozen-lockfile --prefer-offline",)
    else:
        pm = "npm"
        lock = (worktree / "package-lock.json").is_file()
        setup = (("npm ci" if lock else "npm install") + " --prefer-offline --no-audit --no-fund",)
    if not deps:
        setup = ()
    runner, command = "custom", (pm, "test")
    for name in ("vitest", "jest", "mocha"):
        if name in deps or name in script.split():
            runner = name
            command = {
                "vitest": ("npx", "--no-install", "vitest", "run"),
                "jest": ("npx", "--no-install", "jest", "--ci"),
                "mocha": ("npx", "--no-install", "mocha"),
            }[name]
            break
    else:
        if "node --test" in script:
            runner, command = "node", ("node", "--test")
    manifests = JS_MANIFESTS + (JS_MANIFESTS_YARN if pm == "yarn" else ())
    present = tuple(m for m in manifests if (worktree / m).is_file())
    return TestPlan("javascript", command, setup, {}, runner, pm, present)


def detect(worktree: Path, config: RepoConfig) -> TestPlan:
    """A TestPlan from the config's `test:`/`setup:`/`env:` or, absent those, from the files."""
    plan: TestPlan | None = None
    if (worktree / "go.mod").is_file():
        plan = TestPlan(
            "go", ("go", "test", "./..."), ("go mod download",), {}, "go", "go", ("go.sum",)
        )
    elif (worktree / "Cargo.toml").is_file():
        plan = TestPlan(
            "rust",
            ("cargo", "test", "--offline"),
            ("cargo fetch",),
            {},
            "cargo",
            "cargo",
            tuple(m for m in ("Cargo.toml", "Cargo.lock") if (worktree / m).is_file()),
        )
    else:
        plan = _javascript(worktree) or _python(worktree)
    if plan is None:
        plan = TestPlan(
            "python",
            ("python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            runner="pytest",
            package_manager="uv",
        )
    plan = replace(plan, env={**plan.env, **config.env})
    if config.setup is not None:
        plan = replace(plan, setup=tuple(config.setup), setup_configured=True)
    if config.test:
        argv = tuple(shlex.split(config.test))
        plan = replace(plan, test_command=argv, runner=_runner_of(argv))
    return plan
