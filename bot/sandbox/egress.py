"""The install phase's egress proxy: only allow-listed registry hosts are reachable.

A sandbox in the install phase keeps its empty network namespace; the only way out is this
HTTP proxy, listening on a Unix socket that is bound into the sandbox, where a small bridge
(`egress_bridge.py`) listens on 127.0.0.1:3128 and sets HTTP(S)_PROXY. The proxy serves
`CONNECT host:port` (HTTPS) and absolute-URI HTTP requests, and only for hosts on the allow-list
(`SELFHEAL_EGRESS_ALLOW`; an entry `example.org` allows it and its subdomains on ports 80 and
443, `host:port` allows that port). Everything else gets 403 and is logged. Programs that ignore
the proxy variables simply have no network. May import: nothing from bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("selfheal.egress")

DEFAULT_ALLOW = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "proxy.golang.org",
    "sum.golang.org",
    "index.crates.io",
    "static.crates.io",
    "crates.io",
)
BRIDGE_PORT = 3128
MAX_HEADER = 64 * 1024


def parse_allow_list(text: str) -> tuple[str, ...] | None:
    """SELFHEAL_EGRESS_ALLOW: comma-separated hosts; empty gives the public registries and
    `*` gives None (unfiltered network for the install phase)."""
    entries = tuple(e.strip() for e in text.split(",") if e.strip())
    if "*" in entries:
        return None
    return entries or DEFAULT_ALLOW


def allowed(host: str, port: int, allow: Sequence[str]) -> bool:
    """Whether `host:port` is on the allow-list."""
    host = host.lower().rstrip(".")
    for entry in allow:
        name, _, entry_port = entry.lower().partition(":")
        if entry_port:
            if port != int(entry_port):
                continue
        elif port not in (80, 443):
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


class EgressProxy:
    """An allow-listing HTTP proxy on a Unix socket, served from a background thread."""

    def __init__(self, allow: Sequence[str], socket_dir: Path | None = None) -> None:
        self.allow = tuple(allow)
        folder = Path(tempfile.mkdtemp(prefix="selfheal-egress-", dir=socket_dir))
        self.socket_path = folder / "proxy.sock"
        self.denied: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="selfheal-egress", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            await asyncio.start_unix_server(self._handle, path=str(self.socket_path))
            os.chmod(self.socket_path, 0o666)
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
            self.socket_path.parent.rmdir()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        if len(head) > MAX_HEADER:
            await self._refuse(writer, 431, "request header too large")
            return
        request_line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ", 2)
        except ValueError:
            await self._refuse(writer, 400, "bad request line")
            return
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port = int(port_text) if port_text.isdigit() else 443
            host = host.strip("[]")
            first = b""
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await self._refuse(writer, 400, "absolute http:// URL expected")
                return
            host, port = url.hostname, url.port or 80
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            first = f"{method} {path} {version}\r\n".encode("latin-1") + rest
        if not allowed(host, port, self.allow):
            self.denied.append(f"{host}:{port}")
            log.warning("egress denied: %s:%s", host, port)
            await self._refuse(writer, 403, f"{host}:{port} is not on the egress allow-list")
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        except (OSError, TimeoutError):
            await self._refuse(writer, 502, f"cannot reach {host}:{port}")
            return
        if first:
            up_writer.write(first)
        else:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
        body = (reason + "\n").encode()
        writer.write(
            f"HTTP/1.1 {status} Blocked\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
        writer.close()
