"""The `none` backend: no isolation, only limits; operators opt in. May import: bot.sandbox.

It warns on every command, because repository code then runs as the worker's own user with
the worker's view of the host.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.sandbox import CommandResult, Limits, OutputCallback
from bot.sandbox.process import supervise

WARNING = "selfheal: warning: sandbox 'none' runs repository code without isolation\n"


class PlainSandbox:
    """Runs commands directly on the host with the rlimits, a timeout and an output cap."""

    name = "none"

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
        sys.stderr.write(WARNING)
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return supervise(
            argv,
            shown_argv=argv,
            env={**base_env, **(env or {})},
            cwd=workdir,
            limits=limits,
            on_output=on_output,
            backend=self.name,
        )

    def close(self) -> None:
        """Nothing is kept between commands."""
