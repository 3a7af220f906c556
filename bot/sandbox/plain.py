"""The `none` backend: no isolation, only limits; operators opt in. May import: bot.sandbox.

It warns on every command, because repository code then runs as the worker's own user with
the worker's view of the host.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.sandbox import CommandResult, Limits, OutputCallback
from bot.sandbox.bwrap import base_env
from bot.sandbox.process import supervise

HOME_NAME = ".selfheal-home"  # under the work tree; matches workspace.EXCLUDES' /.selfheal-*
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
        # The other backends' environment, but the host's PATH, and a HOME inside the work
        # tree that every patch leaves out (npm's logs, Go's caches land there).
        home = workdir / HOME_NAME
        with contextlib.suppress(OSError):  # a missing work tree fails below, by name
            home.mkdir(exist_ok=True)
        host = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
        return supervise(
            argv,
            shown_argv=argv,
            env={**base_env(workdir), **host, **(env or {})},
            cwd=workdir,
            limits=limits,
            on_output=on_output,
            backend=self.name,
        )

    def close(self) -> None:
        """Nothing is kept between commands."""
