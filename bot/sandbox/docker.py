"""The `docker` backend, for hosts with a container engine. May import: bot.sandbox.

Each command runs in a fresh container: `--network none` (the install phase gets the default
bridge), a read-only root file system, a tmpfs /tmp, the work tree bind-mounted as the only
writable place, uid 65534, every capability dropped, no-new-privileges, and pids, memory, CPU,
file size and CPU time limits. A timeout or output cap kills the container by name.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.errors import SandboxError
from bot.sandbox import CommandResult, LimitName, Limits, OutputCallback
from bot.sandbox.bwrap import SANDBOX_UID, base_env
from bot.sandbox.process import supervise

# The limits on which the supervisor kills the client itself (the others end the container).
SUPERVISOR_STOPS: tuple[LimitName, ...] = ("timeout", "output", "pids")


class DockerSandbox:
    """Runs each command in a throwaway container of `image`."""

    name = "docker"
    default_image = "python:3.11-slim"

    def __init__(self, image: str = default_image, docker: str = "docker") -> None:
        self.image = image
        self.docker = docker

    def command(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str],
        network: bool,
        limits: Limits,
        name: str,
        ro_paths: Sequence[Path] = (),
        rw_paths: Sequence[Path] = (),
    ) -> list[str]:
        """The `docker run` argv for one command."""
        mb = limits.memory_mb
        cmd = [
            self.docker,
            "run",
            "--rm",
            "--name",
            name,
            "--init",
            "--network",
            "bridge" if network else "none",
            "--read-only",
            "--tmpfs",
            "/tmp:rw,nosuid,nodev,size=1g",
            "--user",
            f"{SANDBOX_UID}:{SANDBOX_UID}",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--pids-limit",
            str(limits.pids),
            "--memory",
            f"{mb}m",
            "--memory-swap",
            f"{mb}m",
            "--ulimit",
            f"fsize={limits.file_size_mb * 1024 * 1024}",
            "--ulimit",
            "core=0",
        ]
        if limits.cpus is not None:
            cmd += ["--cpus", str(limits.cpus)]
        if limits.cpu_s is not None:
            cmd += ["--ulimit", f"cpu={limits.cpu_s}"]
        for path in ro_paths:
            cmd += ["--volume", f"{path}:{path}:ro"]
        for path in rw_paths:
            cmd += ["--volume", f"{path}:{path}:rw"]
        cmd += ["--volume", f"{workdir}:{workdir}:rw", "--workdir", str(workdir)]
        for key, value in env.items():
            cmd += ["--env", f"{key}={value}"]
        cmd += [self.image, *argv]
        return cmd

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
        limits = limits or Limits()
        if shutil.which(self.docker) is None:
            raise SandboxError("docker is not installed; set SELFHEAL_SANDBOX=bwrap")
        name = f"selfheal-{uuid.uuid4().hex[:12]}"
        full_env = {**base_env(workdir), **(env or {})}
        cmd = self.command(
            argv,
            workdir=workdir.resolve(),
            env=full_env,
            network=network,
            limits=limits,
            name=name,
            ro_paths=ro_paths,
            rw_paths=rw_paths,
        )
        result: CommandResult | None = None
        try:
            result = supervise(
                cmd,
                shown_argv=argv,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
                cwd=workdir,
                limits=limits,
                on_output=on_output,
                backend=self.name,
            )
            return result
        finally:
            # Killing the docker client leaves its container running: stop that by name.
            # A command that ended by itself took its container (--rm) with it.
            if result is None or result.limit_hit in SUPERVISOR_STOPS:
                subprocess.run(
                    [self.docker, "kill", name],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )

    def close(self) -> None:
        """Nothing is kept between commands."""
