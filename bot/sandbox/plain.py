"""The `none` backend: no isolation, only limits; operators opt in. May import: bot.sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.sandbox import CommandResult, Limits, OutputCallback


class PlainSandbox:
    """Runs commands directly on the host with a timeout and an output cap."""

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
    ) -> CommandResult:
        limits = limits or Limits()
        sys.stderr.write(
            "selfheal: warning: sandbox 'none' runs repository code without isolation\n"
        )
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        start = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            cwd=workdir,
            env={**base_env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=limits.timeout_s)
            code, hit = proc.returncode, None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            code, hit = 124, "timeout"
        text = out.decode("utf-8", "replace")
        truncated = len(text) > limits.output_bytes
        if truncated:
            half = limits.output_bytes // 2
            text = text[:half] + "\n[... output truncated ...]\n" + text[-half:]
        if on_output:
            on_output(text)
        return CommandResult(tuple(argv), code, time.monotonic() - start, text, truncated, hit)  # type: ignore[arg-type]
