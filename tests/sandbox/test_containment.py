"""A hostile repository's commands run in the real bwrap sandbox: each escape attempt fails or
is killed and reported with the limit that stopped it, and the worker stays healthy."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import CommandResult, Limits, Sandbox
from bot.sandbox.bwrap import BwrapSandbox
from bot.sandbox.launcher import PARKED_MARK
from bot.workspace import Workspace, WorkspaceManager
from tests.support.gitrepo import make_repo

SECRET = "sk-selfheal-fake-secret-7f3a9c"

HOSTILE = {
    "read_proc1.py": (
        "import sys\n"
        "data = open('/proc/1/environ','rb').read()\n"
        "print(data.decode(errors='replace'))\n"
    ),
    "read_env.py": "import os\nprint(dict(os.environ))\n",
    "read_file.py": "import sys\nprint(open(sys.argv[1]).read())\n",
    "write_outside.py": (
        "import sys\n"
        "for target in sys.argv[1:]:\n"
        "    try:\n"
        "        open(target, 'w').write('pwned')\n"
        "        print('WROTE', target)\n"
        "    except OSError as exc:\n"
        "        print('blocked', target, exc)\n"
    ),
    "connect.py": (
        "import socket, sys\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n"
        "s.sendall(b'EXFIL')\n"
        "print('CONNECTED')\n"
    ),
    "resolve.py": (
        "import socket\nprint(socket.getaddrinfo('example.com', 443))\nprint('RESOLVED')\n"
    ),
    "forkbomb.py": (
        "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(30)\n"
    ),
    "alloc.py": "block = bytearray(8 * 1024 ** 3)\nprint('ALLOCATED', len(block))\n",
    "sleep.py": "import time\ntime.sleep(60)\n",
    "flood.py": (
        "import sys\n"
        "line = b'x' * 1023 + b'\\n'\n"
        "for _ in range(1024 * 1024):\n"
        "    sys.stdout.buffer.write(line)\n"
    ),
}


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Workspace]:
    source = make_repo(tmp_path / "hostile", HOSTILE)
    manager = WorkspaceManager(tmp_path / "cache")
    workspace = manager.checkout(str(source), None, "job-hostile")
    yield workspace
    manager.remove(workspace)


def _children() -> set[int]:
    """Live descendants of this test process (via /proc), not counting the launcher the
    sandbox keeps parked for its next command."""
    return {pid for pid in _descendants() if not _parked(pid)}


def _descendants() -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    return mine


def _parked(pid: int) -> bool:
    try:
        return PARKED_MARK.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _healthy(before: set[int]) -> None:
    """No process started by the command is left (services the suite started earlier are)."""
    deadline = time.monotonic() + 5
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _children() - before == set(), "sandboxed processes outlived their command"


def run(sandbox: Sandbox, ws: Workspace, *argv: str, limits: Limits | None = None) -> CommandResult:
    limits = limits or Limits(timeout_s=20)
    before = _children()
    result = sandbox.run(["python3", *argv], workdir=ws.path, limits=limits)
    if isinstance(sandbox, BwrapSandbox):
        sandbox.settle()  # the launcher parked for the next command is not a leftover
    _healthy(before)
    return result


def test_proc1_environ_and_worker_environment_hold_no_secret(
    bwrap: Sandbox, hostile: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("SELFHEAL_FAKE_SECRET", SECRET)
    proc1 = run(bwrap, hostile, "read_proc1.py")
    env = run(bwrap, hostile, "read_env.py")
    assert env.ok, env.output
    assert SECRET not in proc1.output and SECRET not in env.output
    assert "GITHUB_TOKEN" not in env.output
    assert "'HOME': '/tmp'" in env.output  # the allow-listed environment, nothing inherited


def test_secret_files_outside_the_work_tree_are_invisible(
    bwrap: Sandbox, hostile: Workspace, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    for path in (str(secret), "/etc/shadow", str(Path.home() / ".ssh" / "id_rsa")):
        result = run(bwrap, hostile, "read_file.py", path)
        assert not result.ok
        assert SECRET not in result.output
        assert "No such file or directory" in result.output or "Permission" in result.output


def test_writes_outside_the_work_tree_do_not_reach_the_host(
    bwrap: Sandbox, hostile: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    git_config = hostile.path / ".git"
    result = run(
        bwrap,
        hostile,
        "write_outside.py",
        str(outside),
        "/usr/pwned",
        "/etc/passwd",
        str(git_config),
        "inside.txt",
    )
    assert not outside.exists()
    assert not Path("/usr/pwned").exists()
    assert "pwned" not in Path("/etc/passwd").read_text()
    assert git_config.read_text().startswith("gitdir:")
    assert (hostile.path / "inside.txt").read_text() == "pwned"  # the work tree is writable
    # A write into the sandbox's own tmpfs may succeed; none reaches the host.
    assert "WROTE inside.txt" in result.output
    assert "blocked /usr/pwned" in result.output


def test_no_tcp_connection_to_a_server_on_the_host(bwrap: Sandbox, hostile: Workspace) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.1)
    accepted: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = str(server.getsockname()[1])
        result = run(bwrap, hostile, "connect.py", port)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert not result.ok
    assert "CONNECTED" not in result.output
    assert "Connection refused" in result.output or "unreachable" in result.output
    assert accepted == []


def test_no_dns(bwrap: Sandbox, hostile: Workspace) -> None:
    result = run(bwrap, hostile, "resolve.py")
    assert not result.ok
    assert "RESOLVED" not in result.output
    assert "gaierror" in result.output


def test_fork_bomb_is_stopped_by_the_process_limit(bwrap: Sandbox, hostile: Workspace) -> None:
    result = run(bwrap, hostile, "forkbomb.py", limits=Limits(timeout_s=20, pids=64))
    assert result.limit_hit == "pids"
    assert result.exit_code != 0
    assert result.duration_s < 15


def test_sandboxes_done_with_leave_no_parked_launcher(hostile: Workspace) -> None:
    # A worker makes a sandbox per job: closed, or only dropped, none may keep its launcher.
    def parked() -> set[int]:
        return {pid for pid in _descendants() if _parked(pid)}

    before = parked()
    for close in (True, True, False, False):
        sandbox = BwrapSandbox()
        assert sandbox.run(["true"], workdir=hostile.path).ok
        sandbox.settle()
        assert parked() - before, "the next command's launcher is parked"
        if close:
            sandbox.close()
        del sandbox
        gc.collect()
        assert parked() - before == set()


def test_fork_bomb_is_stopped_without_a_cgroup_too(hostile: Workspace) -> None:
    # Where no cgroup can be made: RLIMIT_NPROC, or (as root, which it does not bind) a
    # watchdog counting the process tree.
    sandbox = BwrapSandbox(use_cgroup=False)
    result = run(sandbox, hostile, "forkbomb.py", limits=Limits(timeout_s=20, pids=64))
    assert result.limit_hit == "pids"
    assert result.duration_s < 15


def test_8gb_allocation_is_stopped_by_the_memory_limit(bwrap: Sandbox, hostile: Workspace) -> None:
    result = run(bwrap, hostile, "alloc.py", limits=Limits(timeout_s=20, memory_mb=512))
    assert result.limit_hit == "memory"
    assert "ALLOCATED" not in result.output
    assert result.exit_code != 0


def test_sleep_past_the_timeout_is_killed(bwrap: Sandbox, hostile: Workspace) -> None:
    result = run(bwrap, hostile, "sleep.py", limits=Limits(timeout_s=1))
    assert (result.exit_code, result.limit_hit) == (124, "timeout")
    assert result.duration_s < 5


def test_printing_1gb_is_killed_at_the_output_cap(bwrap: Sandbox, hostile: Workspace) -> None:
    limits = Limits(timeout_s=30, output_bytes=20_000, max_output_bytes=8 * 1024 * 1024)
    result = run(bwrap, hostile, "flood.py", limits=limits)
    assert (result.exit_code, result.limit_hit) == (137, "output")
    assert result.truncated
    assert len(result.output) < 25_000
    assert result.output.startswith("x" * 100)


WORKER = """
import sys
from pathlib import Path
from bot.sandbox.bwrap import BwrapSandbox
print("ready", flush=True)
BwrapSandbox().run(["sh", "-c", "sleep 300; :", sys.argv[2]], workdir=Path(sys.argv[1]))
"""


def _with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_sandboxed_commands_die_with_the_worker(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    marker = f"selfheal-marker-{os.getpid()}"
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), marker],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None and worker.stdout.readline() == "ready\n"

    def sandboxed() -> list[int]:
        return [pid for pid in _with_marker(marker) if pid != worker.pid]

    deadline = time.monotonic() + 10
    while len(sandboxed()) < 2 and time.monotonic() < deadline:  # bwrap and sh
        time.sleep(0.05)
    assert len(sandboxed()) >= 2, "the sandboxed command never started"
    assert worker.poll() is None
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while _with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _with_marker(marker) == []
