"""Supervise one sandboxed process tree: stream its output, keep head and tail, enforce the
wall clock and the output cap, and say which limit stopped it; count each run in
bot.metrics. May import: bot.sandbox, bot.metrics.

Shared by every backend; the backend only builds the argv and the environment.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import resource
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bot import metrics
from bot.errors import SandboxError
from bot.sandbox import CommandResult, LimitName, Limits, OutputCallback
from bot.sandbox.cgroup import Cgroup
from bot.sandbox.launcher import Parked

LEFTOVER_GRACE_S = 1.0
PID_WATCH_INTERVAL_S = 0.05
TRUNCATION_MARK = "\n[... output truncated by selfheal ...]\n"
_MEMORY_PATTERNS = re.compile(
    rb"MemoryError|Cannot allocate memory|out of memory|std::bad_alloc|heap out of memory"
    rb"|memory allocation of \d+ bytes failed|fatal error: runtime: out of memory"
)
_PIDS_PATTERNS = re.compile(
    rb"fork: retry|fork: Resource temporarily unavailable|Cannot fork|"
    rb"BlockingIOError: \[Errno 11\]|can't start new thread|pthread_create failed"
)


class OutputBuffer:
    """Keeps the first and last `keep // 2` bytes of a stream and counts the rest."""

    def __init__(self, keep: int) -> None:
        self.half = max(keep // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + min(len(self.tail), self.half)

    def text(self) -> str:
        tail = bytes(self.tail[-self.half :]) if self.tail else b""
        if self.truncated:
            return (
                self.head.decode("utf-8", "replace")
                + TRUNCATION_MARK
                + tail.decode("utf-8", "replace")
            )
        return (bytes(self.head) + tail).decode("utf-8", "replace")

    def tail_bytes(self, n: int = 8192) -> bytes:
        return bytes((self.head + self.tail)[-n:])


def rlimits(limits: Limits) -> list[tuple[int, int]]:
    """The (resource, value) pairs every backend applies to the process it starts."""
    pairs = [
        (resource.RLIMIT_DATA, limits.memory_mb * 1024 * 1024),
        (resource.RLIMIT_NPROC, limits.pids),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.cpu_s is not None:
        pairs.append((resource.RLIMIT_CPU, limits.cpu_s))
    return pairs


def _preexec(limits: Limits) -> Callable[[], None]:
    pairs = rlimits(limits)

    def apply() -> None:  # runs in the child between fork and exec
        for which, value in pairs:
            hard = resource.getrlimit(which)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

    return apply


def _kill_tree(proc: subprocess.Popen[bytes], cgroup: Cgroup | None) -> None:
    if cgroup is not None:
        cgroup.kill_all()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def supervise(
    argv: Sequence[str],
    *,
    shown_argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    limits: Limits,
    on_output: OutputCallback | None,
    parked: Parked | None = None,
    backend: str = "unknown",
) -> CommandResult:
    """Run `argv` in a new session under `limits`; kill the whole tree on any limit.

    With `parked`, the command becomes that already-started process (in its cgroup).
    """
    buffer = OutputBuffer(limits.output_bytes)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    start = time.monotonic()
    cgroup: Cgroup | None = None
    if parked is not None:
        cgroup = parked.cgroup
        cgroup.set_limits(limits.pids, limits.memory_mb)
    try:
        if parked is not None:
            proc = parked.start(argv, env, cwd, rlimits(limits))
        else:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_preexec(limits),
            )
    except OSError as exc:
        if cgroup is not None:
            cgroup.remove()
        raise SandboxError(f"cannot start {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    deadline = start + limits.timeout_s
    hit: LimitName | None = None
    eof = False
    drain_until: float | None = None
    watch_pids = cgroup is None and os.geteuid() == 0
    next_count = start
    try:
        while not eof:
            now = time.monotonic()
            if now >= deadline:
                hit = "timeout"
                break
            if drain_until is None and proc.poll() is not None:
                # The command ended; what it left running may not hold the output open.
                drain_until = now + LEFTOVER_GRACE_S
            elif drain_until is not None and now >= drain_until:
                break
            ready, _, _ = select.select([fd], [], [], min(0.1, deadline - now))
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    eof = True
                    break
                buffer.add(chunk)
                if on_output is not None:
                    on_output(decoder.decode(chunk))
                if buffer.total > limits.max_output_bytes:
                    hit = "output"
                    break
            if cgroup is not None:
                cg_hit = cgroup.limit_hit()
                if cg_hit == "pids":
                    hit = "pids"
                    break
            elif watch_pids and now >= next_count:
                # As root without a cgroup RLIMIT_NPROC does not bind: count the tree instead.
                next_count = now + PID_WATCH_INTERVAL_S
                if count_descendants(proc.pid) > limits.pids:
                    hit = "pids"
                    break
    finally:
        if hit is not None or not eof:
            _kill_tree(proc, cgroup)
        proc.stdout.close()
        code = proc.wait()
        if hit is None and cgroup is not None:
            hit = cgroup.limit_hit()
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
    duration = time.monotonic() - start
    if on_output is not None:
        rest = decoder.decode(b"", final=True)
        if rest:
            on_output(rest)
    exit_code = _exit_code(code)
    if hit == "timeout":
        exit_code = 124
    elif hit in ("output", "pids"):
        exit_code = 137
    elif hit == "memory" and exit_code != 0:
        exit_code = 137 if exit_code >= 128 else exit_code
    elif hit is None:
        hit = _infer_limit(exit_code, buffer)
        if hit is not None and exit_code >= 128:
            exit_code = 137
    _count(backend, exit_code, hit)
    return CommandResult(
        tuple(shown_argv), exit_code, duration, buffer.text(), buffer.truncated, hit
    )


def _count(backend: str, exit_code: int, hit: LimitName | None) -> None:
    outcome = "limit" if hit is not None else ("ok" if exit_code == 0 else "failed")
    metrics.SANDBOX_RUNS.labels(backend, outcome).inc()
    if hit is not None:
        metrics.SANDBOX_LIMITS.labels(backend, hit).inc()


def count_descendants(root: int) -> int:
    """How many live processes descend from `root` (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    count, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        kids = children.get(pid, [])
        count += len(kids)
        frontier.extend(kids)
    return count


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def _infer_limit(exit_code: int, buffer: OutputBuffer) -> LimitName | None:
    """Which rlimit stopped a command that ended on its own, from its status and last words."""
    if exit_code == 128 + signal.SIGXCPU:
        return "cpu"
    if exit_code == 128 + signal.SIGXFSZ:
        return "file_size"
    if exit_code == 0:
        return None
    tail = buffer.tail_bytes()
    if b"File too large" in tail:
        return "file_size"
    if _MEMORY_PATTERNS.search(tail):
        return "memory"
    if _PIDS_PATTERNS.search(tail):
        return "pids"
    return None
