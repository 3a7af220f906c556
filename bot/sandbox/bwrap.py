"""The `bwrap` backend: bubblewrap namespaces around every command. May import: bot.sandbox.

Each command gets: every namespace unshared (user, pid, net, ipc, uts, cgroup), uid/gid 65534
inside its own user namespace with no capabilities and no nested user namespaces, the host
system read-only and only what a program needs (/usr and its links, an allow-list of /etc),
a fresh /proc and /dev, a tmpfs /tmp, the work tree as the only writable place (its `.git`
entry read-only), an environment built from an allow-list (`--clearenv`), a new session, and
death with the worker. The install phase gets the host's network, or, with an egress
allow-list, still none but a bridge to the allow-listing proxy (`egress.py`). Limits:
rlimits (CPU, data/memory, processes, file size), a cgroup (pids, memory) where the worker
may create one, the wall clock and the output cap.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.errors import SandboxError
from bot.sandbox import CommandResult, Limits, OutputCallback
from bot.sandbox.egress import BRIDGE_PORT, EgressProxy
from bot.sandbox.launcher import LauncherPool
from bot.sandbox.process import supervise

SANDBOX_UID = 65534
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs read from /etc; /etc/shadow, ssh keys, the bot's own config stay hidden.
ETC_ALLOW = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "ssl",
    "pki",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "mime.types",
    "os-release",
    "debian_version",
    "protocols",
    "services",
    "gai.conf",
    "host.conf",
    "python3",
    "python3.11",
    "gitconfig",
    "npmrc",
)
NETWORK_ETC = ("resolv.conf",)
ETC_SKIP = ("private",)  # /etc/ssl/private holds keys


@functools.cache
def _supports(flag: str) -> bool:
    """Whether this bwrap knows `flag` (0.8 added --disable-userns and --size)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    proc = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False)
    return flag in proc.stdout + proc.stderr


@functools.cache
def etc_snapshot() -> Path:
    """A copy of the allow-listed /etc entries, made once per worker and bound as /etc.

    One bind instead of one per entry keeps sandbox start fast; the copy leaves out private
    keys, and empty placeholders let the install phase bind the resolver files over it.
    """
    root = Path(tempfile.mkdtemp(prefix="selfheal-etc-"))
    for entry in ETC_ALLOW:
        source = Path("/etc") / entry
        target = root / entry
        try:
            if source.is_dir() and not source.is_symlink():
                shutil.copytree(
                    source, target, symlinks=True, ignore=shutil.ignore_patterns(*ETC_SKIP)
                )
            elif source.exists() or source.is_symlink():
                shutil.copy2(source, target, follow_symlinks=False)
        except OSError:
            continue
    for entry in NETWORK_ETC:
        (root / entry).touch()
    os.chmod(root, 0o755)
    return root


BRIDGE = str(Path(__file__).with_name("egress_bridge.py"))


def base_env(workdir: Path) -> dict[str, str]:
    """The allow-listed environment every sandboxed command starts from (nothing inherited)."""
    return {
        "PATH": DEFAULT_PATH,
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "CI": "1",
        # Bytecode (and pytest's rewritten tests) cached per job, outside every patch.
        "PYTHONPYCACHEPREFIX": str(workdir / ".selfheal-pycache"),
        "PWD": str(workdir),
    }


class BwrapSandbox:
    """Runs commands under bubblewrap; `ro_paths` are extra host paths visible read-only."""

    name = "bwrap"

    def __init__(
        self,
        ro_paths: Sequence[Path] = (),
        bwrap: str | None = None,
        use_cgroup: bool = True,
        egress_allow: Sequence[str] | None = None,
    ) -> None:
        """`egress_allow`: hosts the install phase may reach through the egress proxy; None
        gives the install phase the host's network unfiltered."""
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxError(
                "bubblewrap is not installed: apt-get install bubblewrap "
                "(or set SELFHEAL_SANDBOX=docker)"
            )
        self.bwrap = found
        self.ro_paths = tuple(ro_paths)
        self.use_cgroup = use_cgroup
        self.egress_allow = tuple(egress_allow) if egress_allow is not None else None
        self._proxy: EgressProxy | None = None
        self._proxy_lock = threading.Lock()
        self._launchers = LauncherPool(Limits().pids, Limits().memory_mb)
        # At exit, or once this sandbox is gone, the parked launcher goes too; the finalizer
        # holds only the pool, so it does not keep a sandbox that nobody closed alive.
        weakref.finalize(self, self._launchers.close)

    def egress_proxy(self) -> EgressProxy:
        """The allow-listing proxy for the install phase (started on first use)."""
        with self._proxy_lock:
            if self._proxy is None:
                self._proxy = EgressProxy(self.egress_allow or ())
            return self._proxy

    def command(
        self,
        *,
        workdir: Path,
        network: bool = False,
        ro_paths: Sequence[Path] = (),
        rw_paths: Sequence[Path] = (),
        tmp_mb: int | None = None,
    ) -> list[str]:
        """The bwrap options up to `--clearenv`; the caller adds `--setenv`s, `--` and the
        command."""
        cmd = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            *(["--disable-userns"] if _supports("--disable-userns") else []),
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--cap-drop",
            "ALL",
            "--new-session",
            "--die-with-parent",
            "--hostname",
            "sandbox",
        ]
        proxied = network and self.egress_allow is not None
        if network and not proxied:
            cmd.append("--share-net")
        for name in SYSTEM_DIRS:
            path = Path(name)
            if path.is_symlink():
                cmd += ["--symlink", os.readlink(path), name]
            elif path.is_dir():
                cmd += ["--ro-bind", name, name]
        cmd += ["--ro-bind", str(etc_snapshot()), "/etc"]
        if network and not proxied:
            for entry in NETWORK_ETC:
                if (Path("/etc") / entry).exists():
                    cmd += ["--ro-bind", f"/etc/{entry}", f"/etc/{entry}"]
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        if tmp_mb is not None and _supports("--size"):
            cmd += ["--size", str(tmp_mb * 1024 * 1024)]
        cmd += ["--tmpfs", "/tmp"]
        for extra in (*self.ro_paths, *ro_paths):
            if Path(extra).exists():
                cmd += ["--ro-bind", str(extra), str(extra)]
        for extra in rw_paths:
            cmd += ["--bind", str(extra), str(extra)]
        if proxied:
            folder = self.egress_proxy().socket_path.parent
            cmd += ["--bind", str(folder), str(folder), "--ro-bind", BRIDGE, BRIDGE]
        cmd += ["--bind", str(workdir), str(workdir)]
        dotgit = workdir / ".git"
        if dotgit.exists() or dotgit.is_symlink():
            # The worktree's .git points at the mirror: never writable from inside.
            cmd += ["--ro-bind", "/dev/null" if dotgit.is_symlink() else str(dotgit), str(dotgit)]
        cmd += ["--chdir", str(workdir), "--clearenv"]
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
        workdir = workdir.resolve()
        if not workdir.is_dir():
            raise SandboxError(f"work tree {workdir} is not a directory")
        full_env = {**base_env(workdir), **(env or {})}
        inner = list(argv)
        if network and self.egress_allow is not None:
            python = shutil.which("python3", path=DEFAULT_PATH)
            if python is None:
                raise SandboxError("the egress bridge needs python3 on the system path")
            sock = str(self.egress_proxy().socket_path)
            inner = [python, BRIDGE, sock, str(BRIDGE_PORT), "--", *argv]
            proxy_url = f"http://127.0.0.1:{BRIDGE_PORT}"
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                full_env[name] = proxy_url
            full_env["npm_config_proxy"] = full_env["npm_config_https_proxy"] = proxy_url
        cmd = self.command(
            workdir=workdir,
            network=network,
            ro_paths=ro_paths,
            rw_paths=rw_paths,
            tmp_mb=limits.memory_mb,
        )
        for key, value in full_env.items():
            cmd += ["--setenv", key, value]
        cmd += ["--", *inner]
        parked = self._launchers.take() if self.use_cgroup else None
        try:
            return supervise(
                cmd,
                shown_argv=argv,
                env={"PATH": DEFAULT_PATH, "SELFHEAL_SANDBOX_ID": uuid.uuid4().hex[:8]},
                cwd=workdir,
                limits=limits,
                on_output=on_output,
                backend=self.name,
                parked=parked,
            )
        finally:
            if parked is not None:
                self._launchers.refill()

    def settle(self) -> None:
        """Wait for background work between commands (parking the next launcher)."""
        self._launchers.settle()

    def close(self) -> None:
        """Stop the parked launcher and the egress proxy (the launcher also goes at exit)."""
        self._launchers.close()
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
