"""Run commands isolated from the host, behind one interface. May import: bot.settings, bot.errors.

Backends: `bwrap` (default on Linux), `docker`, `none` (explicit opt-in, warns every time).
Every backend enforces the `Limits` and reports which one stopped a command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

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
    ) -> CommandResult: ...


def make_sandbox(backend: str) -> Sandbox:
    """The sandbox for a backend name from settings (`SELFHEAL_SANDBOX`)."""
    from bot.sandbox.plain import PlainSandbox

    if backend == "none":
        return PlainSandbox()
    from bot.errors import SandboxError

    raise SandboxError(f"sandbox backend {backend!r} is not available; use bwrap, docker or none")
