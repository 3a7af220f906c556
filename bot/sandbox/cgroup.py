"""An optional per-command cgroup (v2, or v1 pids + memory) for the process and memory limits.

Used where the worker may create cgroups (root in a container, a delegated systemd unit);
elsewhere `Cgroup.create` returns None and the rlimits alone apply. May import: nothing
from bot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Literal

ROOT = Path("/sys/fs/cgroup")
Hit = Literal["pids", "memory"]


def _own_path(controller: str) -> str:
    """This process's cgroup path for `controller` ("" for the v2 hierarchy)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers.split(",") == [controller] or (controller == "" and controllers == ""):
            return path
    return "/"


def _read_int(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _read_value(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class Cgroup:
    """One cgroup per sandboxed command: limits set, processes killed and the group removed."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs  # "pids" / "memory" (v1) or "v2" -> directory
        self.version = version

    @classmethod
    def create(cls, pids: int, memory_mb: int) -> Cgroup | None:
        """A fresh cgroup with the limits, or None where cgroups cannot be created here."""
        name = f"selfheal-{uuid.uuid4().hex[:12]}"
        if (ROOT / "cgroup.controllers").is_file():
            return cls._create_v2(name, pids, memory_mb)
        return cls._create_v1(name, pids, memory_mb)

    @classmethod
    def _create_v2(cls, name: str, pids: int, memory_mb: int) -> Cgroup | None:
        parent = ROOT / _own_path("").lstrip("/")
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            if not {"pids", "memory"} <= set(enabled):
                (parent / "cgroup.subtree_control").write_text("+pids +memory")
            path = parent / name
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "pids.max").write_text(str(pids))
            (path / "memory.max").write_text(str(memory_mb * 1024 * 1024))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls({"v2": path}, 2)

    @classmethod
    def _create_v1(cls, name: str, pids: int, memory_mb: int) -> Cgroup | None:
        dirs: dict[str, Path] = {}
        settings = {
            "pids": {"pids.max": str(pids)},
            "memory": {"memory.limit_in_bytes": str(memory_mb * 1024 * 1024)},
        }
        for controller, files in settings.items():
            base = ROOT / controller
            if not (base / "cgroup.procs").is_file():
                continue
            own = base / _own_path(controller).lstrip("/")
            for parent in (own, base):
                path = parent / name
                try:
                    path.mkdir()
                    for file, value in files.items():
                        (path / file).write_text(value)
                    with contextlib.suppress(OSError):
                        if controller == "memory":
                            (path / "memory.memsw.limit_in_bytes").write_text(value)
                    dirs[controller] = path
                    break
                except OSError:
                    with contextlib.suppress(OSError):
                        path.rmdir()
        if not dirs:
            return None
        return cls(dirs, 1)

    def set_limits(self, pids: int, memory_mb: int) -> None:
        """Set the limits of a group made ahead of its command (no process moves: cheap)."""
        memory = str(memory_mb * 1024 * 1024)
        for key, path in self.dirs.items():
            with contextlib.suppress(OSError):
                if key == "v2":
                    (path / "pids.max").write_text(str(pids))
                    (path / "memory.max").write_text(memory)
                elif key == "pids":
                    (path / "pids.max").write_text(str(pids))
                elif key == "memory":
                    # memsw must stay >= the memory limit: order the writes accordingly.
                    current = _read_value(path / "memory.limit_in_bytes")
                    files = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
                    if current is not None and int(memory) > current:
                        files.reverse()
                    for name in files:
                        with contextlib.suppress(OSError):
                            (path / name).write_text(memory)

    def join_self(self) -> None:
        """Move the calling process into the group (called in the child before exec)."""
        for path in self.dirs.values():
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL every process in the group until it is empty (bounded)."""
        v2 = self.dirs.get("v2")
        if v2 is not None and (v2 / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (v2 / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def limit_hit(self) -> Hit | None:
        """Which of the group's limits has been reached so far."""
        if "v2" in self.dirs:
            path = self.dirs["v2"]
            if _read_int(path / "memory.events", "oom_kill") > 0:
                return "memory"
            if _read_int(path / "pids.events", "max") > 0:
                return "pids"
            return None
        if "memory" in self.dirs and _read_int(
            self.dirs["memory"] / "memory.oom_control", "oom_kill"
        ):
            return "memory"
        if "pids" in self.dirs and _read_int(self.dirs["pids"] / "pids.events", "max") > 0:
            return "pids"
        return None

    def remove(self) -> None:
        """Delete the group once the kernel has let go of its last process (bounded wait)."""
        for path in self.dirs.values():
            deadline = time.monotonic() + 2
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.001)
