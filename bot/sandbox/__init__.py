"""Run commands isolated from the host, behind one interface. May import: bot.settings, bot.errors.

Backends: `bwrap` (default on Linux), `docker`, `none` (explicit opt-in, warns every time).
Every backend enforces the `Limits` and reports which one stopped a command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from bot.settings import Settings

LimitName = Literal["timeout", "cpu", "memory", "pids", "file_size", "output"]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one command."""

    timeout_s: float = 600.0  # wall clock; the whole process tree is killed
    cpu_s: int | None = None
    memory_mb: int = 4096
    pids: int = 512
    file_size_mb: int = 1024
    output_bytes: int = 1_000_000  # kept: half from the head, half from the tail
    max_output_bytes: int = 256 * 1024 * 1024  # produced in all; more and the command is killed
    cpus: float | None = None  # CPU share (docker --cpus, cgroup cpu quota where available)


@dataclass(frozen=True)
class CommandResult:
    """What a sandboxed command did."""

    argv: tuple[str, ...]
    exit_code: int  # 124 on timeout, 137 when killed for a limit
    duration_s: float
    output: str  # stdout and stderr interleaved, head and tail kept within output_bytes
    truncated: bool = False
    limit_hit: LimitName | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


OutputCallback = Callable[[str], None]


class Sandbox(Protocol):
    """Runs one command with `workdir` as the only writable place."""

    name: str

    def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        network: bool = False,
        limits: Limits | None = None,
        on_output: OutputCallback | None = None,
        ro_paths: Sequence[Path] = (),
        rw_paths: Sequence[Path] = (),
    ) -> CommandResult:
        """`ro_paths`/`rw_paths`: extra host paths visible at the same place (toolchains, the
        shared dependency environment); everything else of the host stays out of reach."""
        ...

    def close(self) -> None:
        """Release what the sandbox keeps between commands (a parked launcher, a proxy);
        the owner calls it once done with the sandbox."""
        ...


def make_sandbox(
    backend: str | Settings = "bwrap",
    *,
    allow_unsafe: bool = False,
    ro_paths: Sequence[Path] | None = None,
    docker_image: str | None = None,
    egress_allow: Sequence[str] | None = None,
) -> Sandbox:
    """The sandbox for a backend name, or for the settings' `SELFHEAL_SANDBOX` (default bwrap).

    Given settings, the image, read-only paths and egress list not passed come from them too.

    `none` runs repository code on the host: it needs `allow_unsafe=True` or the setting
    `SELFHEAL_SANDBOX=none` (the operator's explicit choice), and warns on every command.
    """
    from bot.errors import SandboxError

    if not isinstance(backend, str):
        settings = backend
        backend = settings.selfheal_sandbox
        allow_unsafe = allow_unsafe or backend == "none"
        docker_image = docker_image or settings.selfheal_docker_image
        if ro_paths is None:
            ro_paths = settings.selfheal_sandbox_ro_paths
        if egress_allow is None:
            from bot.sandbox.egress import parse_allow_list

            egress_allow = parse_allow_list(settings.selfheal_egress_allow)
    if backend == "none":
        if not allow_unsafe:
            raise SandboxError(
                "sandbox 'none' runs repository code without isolation; "
                "set SELFHEAL_SANDBOX=none explicitly to allow it"
            )
        from bot.sandbox.plain import PlainSandbox

        return PlainSandbox()
    if backend == "bwrap":
        from bot.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox(ro_paths=ro_paths or (), egress_allow=egress_allow)
    if backend == "docker":
        from bot.sandbox.docker import DockerSandbox

        return DockerSandbox(image=docker_image or DockerSandbox.default_image)
    raise SandboxError(f"sandbox backend {backend!r} is not available; use bwrap, docker or none")
