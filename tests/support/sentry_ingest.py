"""A local Sentry ingest endpoint: accepts envelopes at /api/<project>/envelope/ and keeps them.

Speaks enough of the protocol for sentry-sdk's HTTP transport (gzip bodies, 200 replies).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http import send_json, serving


@dataclass
class Ingest:
    dsn: str
    raw: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def items(self) -> list[tuple[dict[str, Any], Any]]:
        """Every envelope item as (item header, parsed payload)."""
        found: list[tuple[dict[str, Any], Any]] = []
        for body in self.raw:
            lines = body.split(b"\n")
            i = 1  # line 0 is the envelope header
            while i < len(lines):
                if not lines[i].strip():
                    i += 1
                    continue
                header = json.loads(lines[i])
                length = header.get("length")
                if length is not None:
                    rest = b"\n".join(lines[i + 1 :])
                    payload_bytes = rest[:length]
                    remaining = rest[length:].lstrip(b"\n")
                    lines = [b"", *remaining.split(b"\n")]
                    i = 1
                else:
                    payload_bytes = lines[i + 1] if i + 1 < len(lines) else b""
                    i += 2
                try:
                    payload: Any = json.loads(payload_bytes)
                except ValueError:
                    payload = payload_bytes.decode("utf-8", "replace")
                found.append((header, payload))
        return found

    def events(self) -> list[dict[str, Any]]:
        return [p for h, p in self.items() if h.get("type") == "event"]


@contextmanager
def sentry_ingest() -> Iterator[Ingest]:
    ingest = Ingest(dsn="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding:
                self.send_response(415)
                self.end_headers()
                return
            ingest.raw.append(body)
            ingest.paths.append(self.path)
            send_json(self, 200, {"id": "0" * 32})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ingest.dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    with serving(server):
        yield ingest
