"""Prepare a job's dependency environment in the sandbox, cached across jobs of a repository.

The install phase runs in the sandbox with network (it may build sdists, which executes repo
code); tests never get network. Environments live in `<cache>/envs/<key>`, where the key
hashes the repository, the toolchain, the manifests and lockfiles and the setup commands, so
a second job on the same dependencies reuses the first one's environment read-only:

- Python: a venv built with uv (`uv venv` + `uv pip install`), uv's package cache shared in
  `<cache>/uv`; the project itself is imported from the work tree (PYTHONPATH), never installed
  into the shared venv.
- JavaScript: `node_modules` installed once per key next to a copy of the manifests, linked
  into each job's work tree; npm's cache shared in `<cache>/npm`.
- Go and Rust: the host toolchain read-only, module and crate caches shared.

Configured `setup:` commands run in the install phase of the cached build. May import:
bot.sandbox, bot.toolchain, bot.errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot.errors import SandboxError
from bot.sandbox import CommandResult, Limits, Sandbox
from bot.sandbox.bwrap import DEFAULT_PATH
from bot.toolchain import TestPlan

COMPLETE = ".selfheal-complete"
INSTALL_LIMITS = Limits(timeout_s=900, memory_mb=4096, pids=1024, file_size_mb=2048)


@dataclass(frozen=True)
class PreparedEnv:
    """The plan to test with, and how the environment came to be."""

    plan: TestPlan
    env_dir: Path | None
    warm: bool
    duration_s: float
    log: tuple[CommandResult, ...] = ()


def find_uv() -> str | None:
    """The uv binary: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def environment_key(worktree: Path, plan: TestPlan, source_key: str) -> str:
    digest = hashlib.sha256()
    for part in (source_key, plan.language, plan.package_manager or "", plan.runner):
        digest.update(part.encode() + b"\0")
    for command in plan.setup:
        digest.update(command.encode() + b"\0")
    for name in sorted(plan.manifests):
        digest.update(name.encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(hashlib.sha256((worktree / name).read_bytes()).digest())
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pythonpath(worktree: Path) -> str:
    return ":".join(str(p) for p in (worktree / "src", worktree) if p.is_dir())


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


TEST_EXTRAS = ("test", "tests", "testing", "dev")


def _pyproject_args(path: Path) -> list[str]:
    """`-r pyproject.toml` plus its test extras, when it declares a [project]."""
    try:
        data = tomllib.loads(_text(path))
    except tomllib.TOMLDecodeError:
        return []
    project = data.get("project")
    if not isinstance(project, dict):
        return []
    args = ["-r", path.name]
    extras = project.get("optional-dependencies")
    if isinstance(extras, dict):
        for extra in TEST_EXTRAS:
            if extra in extras:
                args += ["--extra", extra]
    return args


def _base_python() -> str:
    found = shutil.which("python3", path=DEFAULT_PATH)
    if found is None:
        raise SandboxError("no python3 on the system path for the sandbox: install python3")
    return found


class EnvironmentBuilder:
    """Builds and reuses dependency environments under `cache_dir`."""

    def __init__(
        self,
        cache_dir: Path,
        sandbox: Sandbox,
        *,
        uv_index_args: Sequence[str] = (),
        extra_ro_paths: Sequence[Path] = (),
        limits: Limits = INSTALL_LIMITS,
    ) -> None:
        self.cache_dir = cache_dir
        self.sandbox = sandbox
        self.uv_index_args = tuple(uv_index_args)  # e.g. --offline --find-links DIR
        self.extra_ro_paths = tuple(extra_ro_paths)
        self.limits = limits

    def prepare(self, worktree: Path, plan: TestPlan, source_key: str) -> PreparedEnv:
        """The environment for `plan` in `worktree`: reused when its key is cached."""
        start = time.monotonic()
        if plan.language == "python" and plan.package_manager == "uv":
            result = self._python(worktree, plan, source_key)
        elif plan.language == "javascript":
            result = self._node(worktree, plan, source_key)
        elif plan.language == "go":
            result = self._go(worktree, plan)
        elif plan.language == "rust":
            result = self._rust(worktree, plan)
        else:
            result = PreparedEnv(plan, None, True, 0.0)
        return replace(result, duration_s=time.monotonic() - start)

    # --- Python ---------------------------------------------------------------------------
    def _python(self, worktree: Path, plan: TestPlan, source_key: str) -> PreparedEnv:
        uv = find_uv()
        if uv is None:
            raise SandboxError("uv is not installed: pip install uv")
        key = environment_key(worktree, plan, source_key)
        env_dir = self.cache_dir / "envs" / f"py-{key}"
        log: list[CommandResult] = []
        with _locked(self.cache_dir / "envs" / f"py-{key}.lock"):
            warm = (env_dir / COMPLETE).is_file()
            if not warm:
                shutil.rmtree(env_dir, ignore_errors=True)
                env_dir.mkdir(parents=True)
                log += self._build_python(worktree, plan, env_dir, uv)
                (env_dir / COMPLETE).write_text(key)
            os.utime(env_dir)
        env = {
            **plan.env,
            "PATH": f"{env_dir}/bin:{DEFAULT_PATH}",
            "VIRTUAL_ENV": str(env_dir),
            "PYTHONPATH": _pythonpath(worktree),
        }
        ro = (*plan.ro_paths, str(env_dir))
        return PreparedEnv(replace(plan, env=env, ro_paths=ro), env_dir, warm, 0.0, tuple(log))

    def _build_python(
        self, worktree: Path, plan: TestPlan, env_dir: Path, uv: str
    ) -> list[CommandResult]:
        uv_cache = self.cache_dir / "uv"
        uv_cache.mkdir(parents=True, exist_ok=True)
        env = {
            **plan.env,
            "UV_CACHE_DIR": str(uv_cache),
            "UV_LINK_MODE": "copy",
            "UV_SYSTEM_CERTS": "1",  # the host's CA store (/etc/ssl in the sandbox)
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "VIRTUAL_ENV": str(env_dir),
            "PATH": f"{env_dir}/bin:{DEFAULT_PATH}",
        }
        python = str(env_dir / "bin" / "python")
        commands: list[list[str]] = [[uv, "venv", "-q", "--python", _base_python(), str(env_dir)]]
        install: list[str] = []
        for name in plan.manifests:
            if name.startswith("requirements") or name.endswith("requirements.txt"):
                install += ["-r", name]
            elif name == "pyproject.toml":
                install += _pyproject_args(worktree / name)
            elif name == "setup.cfg" and "install_requires" in _text(worktree / name):
                install += ["-r", name]
        if plan.runner == "pytest":
            install.append("pytest")
        if install and not plan.setup_configured:
            commands.append(
                [uv, "pip", "install", "-q", "--python", python, *self.uv_index_args, *install]
            )
        for command in plan.setup:
            commands.append(["sh", "-c", command])
        return self._run_all(commands, worktree, env, rw=(env_dir, uv_cache), ro=(Path(uv),))

    # --- JavaScript -----------------------------------------------------------------------
    def _node(self, worktree: Path, plan: TestPlan, source_key: str) -> PreparedEnv:
        if not plan.setup:
            return PreparedEnv(plan, None, True, 0.0)
        key = environment_key(worktree, plan, source_key)
        env_dir = self.cache_dir / "envs" / f"node-{key}"
        log: list[CommandResult] = []
        with _locked(self.cache_dir / "envs" / f"node-{key}.lock"):
            warm = (env_dir / COMPLETE).is_file()
            if not warm:
                shutil.rmtree(env_dir, ignore_errors=True)
                env_dir.mkdir(parents=True)
                for name in plan.manifests:
                    shutil.copy2(worktree / name, env_dir / name)
                npm_cache = self.cache_dir / "npm"
                npm_cache.mkdir(parents=True, exist_ok=True)
                env = {**plan.env, "npm_config_cache": str(npm_cache)}
                log += self._run_all(
                    [["sh", "-c", c] for c in plan.setup],
                    env_dir,
                    env,
                    rw=(npm_cache,),
                    ro=(),
                )
                (env_dir / COMPLETE).write_text(key)
            os.utime(env_dir)
        link = worktree / "node_modules"
        if not link.exists() and (env_dir / "node_modules").is_dir():
            link.symlink_to(env_dir / "node_modules")
        ro = (*plan.ro_paths, str(env_dir))
        return PreparedEnv(replace(plan, ro_paths=ro), env_dir, warm, 0.0, tuple(log))

    # --- Go and Rust ----------------------------------------------------------------------
    def _go(self, worktree: Path, plan: TestPlan) -> PreparedEnv:
        go = shutil.which("go")
        if go is None:
            raise SandboxError("go is not installed on the host")
        goroot = subprocess.run(
            [go, "env", "GOROOT"], capture_output=True, text=True, check=False
        ).stdout.strip()
        modcache = self.cache_dir / "go-mod"
        modcache.mkdir(parents=True, exist_ok=True)
        env = {
            **plan.env,
            "GOROOT": goroot,
            "GOMODCACHE": str(modcache),
            "GOCACHE": str(worktree / ".selfheal-gocache"),  # kept for the job, never patched
            "GOFLAGS": "-mod=mod",
            "PATH": f"{goroot}/bin:{DEFAULT_PATH}",
        }
        ro = (goroot,)
        log = self._run_all(
            [["sh", "-c", c] for c in plan.setup],
            worktree,
            env,
            rw=(modcache,),
            ro=tuple(Path(p) for p in ro),
        )
        test_env = {**env, "GOPROXY": "off"}
        plan = replace(plan, env=test_env, ro_paths=(*plan.ro_paths, *ro, str(modcache)))
        return PreparedEnv(plan, None, True, 0.0, tuple(log))

    def _rust(self, worktree: Path, plan: TestPlan) -> PreparedEnv:
        cargo = shutil.which("cargo")
        if cargo is None:
            raise SandboxError("cargo is not installed on the host")
        cargo_bin = Path(cargo).resolve().parent
        rustup_home = Path(os.path.expanduser("~/.rustup"))
        cargo_home = self.cache_dir / "cargo"
        cargo_home.mkdir(parents=True, exist_ok=True)
        env = {
            **plan.env,
            "CARGO_HOME": str(cargo_home),
            "RUSTUP_HOME": str(rustup_home),
            "CARGO_TARGET_DIR": str(worktree / ".selfheal-target"),
            "PATH": f"{cargo_bin}:{DEFAULT_PATH}",
        }
        ro = tuple(str(p) for p in (cargo_bin, rustup_home) if p.exists())
        log = self._run_all(
            [["sh", "-c", c] for c in plan.setup],
            worktree,
            env,
            rw=(cargo_home,),
            ro=tuple(Path(p) for p in ro),
        )
        plan = replace(plan, env=env, ro_paths=(*plan.ro_paths, *ro, str(cargo_home)))
        return PreparedEnv(plan, None, True, 0.0, tuple(log))

    def _run_all(
        self,
        commands: list[list[str]],
        workdir: Path,
        env: dict[str, str],
        *,
        rw: Sequence[Path],
        ro: Sequence[Path],
    ) -> list[CommandResult]:
        log: list[CommandResult] = []
        for argv in commands:
            result = self.sandbox.run(
                argv,
                workdir=workdir,
                env=env,
                network=True,
                limits=self.limits,
                ro_paths=(*self.extra_ro_paths, *ro),
                rw_paths=tuple(rw),
            )
            log.append(result)
            if not result.ok:
                tail = result.output.strip().splitlines()[-1:] or [""]
                raise SandboxError(
                    f"install step {argv[-1][:80]!r} failed with exit {result.exit_code}"
                    + (f" ({result.limit_hit} limit)" if result.limit_hit else "")
                    + f": {tail[0][:200]}"
                )
        return log
