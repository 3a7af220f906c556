"""A process parked in a fresh cgroup, waiting for the command it will become.

Moving a process into a cgroup costs a kernel RCU grace period (10-30 ms per hierarchy);
parking the next command's process ahead of time, off the critical path, keeps that cost out
of every sandboxed command's start. The parked process reads its command (argv, environment,
directory, rlimits) as JSON on stdin, applies the rlimits and execs; its stdout is already
the pipe the supervisor reads. May import: bot.sandbox.cgroup.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.sandbox.cgroup import Cgroup

PARKED_MARK = "# selfheal-parked"
PARKED = (
    PARKED_MARK
    + r"""
import json, os, resource, sys
spec = json.loads(sys.stdin.buffer.read() or b"null")
if spec is None:
    os._exit(0)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
for which, value in spec["rlimits"]:
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
os.chdir(spec["cwd"])
try:
    os.execve(spec["argv"][0], spec["argv"], spec["env"])
except OSError as exc:
    sys.stderr.write("selfheal: cannot start %s: %s\n" % (spec["argv"][0], exc.strerror))
    os._exit(127)
"""
)


class Parked:
    """One parked process and its cgroup."""

    def __init__(self, cgroup: Cgroup) -> None:
        self.cgroup = cgroup
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", PARKED],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=cgroup.join_self,
            env={"PATH": "/usr/bin:/bin"},
        )

    def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        rlimits: Sequence[tuple[int, int]],
    ) -> subprocess.Popen[bytes]:
        """Hand the parked process its command; returns it, now running that command."""
        spec = {"argv": list(argv), "env": dict(env), "cwd": str(cwd), "rlimits": list(rlimits)}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(spec).encode())
        self.proc.stdin.close()
        return self.proc

    def discard(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.cgroup.kill_all()
        self.cgroup.remove()


class LauncherPool:
    """Keeps one process parked in a fresh cgroup, refilled in the background after each use."""

    def __init__(self, pids: int, memory_mb: int) -> None:
        self.pids = pids
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._ready: Parked | None = None
        self._filling: threading.Thread | None = None
        self.available = True

    def _make(self) -> Parked | None:
        cgroup = Cgroup.create(self.pids, self.memory_mb)
        if cgroup is None:
            self.available = False
            return None
        try:
            return Parked(cgroup)
        except OSError:
            cgroup.remove()
            self.available = False
            return None

    def _fill(self) -> None:
        parked = self._make()
        with self._lock:
            if self._ready is None:
                self._ready = parked
            elif parked is not None:
                parked.discard()

    def take(self) -> Parked | None:
        """A parked process (made now if none is ready), or None where cgroups are unavailable."""
        if not self.available:
            return None
        filling = self._filling
        if filling is not None:
            filling.join()
        with self._lock:
            parked, self._ready = self._ready, None
        if parked is None:
            parked = self._make()
        return parked

    def refill(self) -> None:
        """Park the next process in the background (call once a command has ended, so the
        work happens between commands rather than during one)."""
        if self.available and (self._filling is None or not self._filling.is_alive()):
            self._filling = threading.Thread(target=self._fill, daemon=True)
            self._filling.start()

    def settle(self) -> None:
        """Wait until the next process is parked (or parking failed)."""
        filling = self._filling
        if filling is not None:
            filling.join()

    def close(self) -> None:
        self.settle()
        with self._lock:
            parked, self._ready = self._ready, None
        if parked is not None:
            parked.discard()
