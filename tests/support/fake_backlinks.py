"""A recorder for the back-link APIs on 127.0.0.1: PagerDuty incident notes and Sentry issue
comments, answering with the vendors' response shapes (PagerDuty REST v2 `{note: {...}}`,
Sentry `{id, data: {text}}`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http import send_json, serving


@dataclass
class BacklinkServer:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None


@contextmanager
def fake_backlinks() -> Iterator[BacklinkServer]:
    state = BacklinkServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            state.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )
            status, data = 404, {"error": "not found"}
            if state.fail_with:
                status, data = state.fail_with, {"error": "boom"}
            elif self.path.startswith("/pagerduty/incidents/") and self.path.endswith("/notes"):
                if not self.headers.get("From"):
                    status, data = 400, {"error": {"message": "From header is required"}}
                else:
                    status = 201
                    data = {
                        "note": {
                            "id": "PWL7QXS",
                            "content": body["note"]["content"],
                            "channel": {"summary": "API"},
                        }
                    }
            elif self.path.startswith("/sentry/api/0/issues/") and self.path.endswith("/comments/"):
                status, data = 201, {"id": "1234", "type": "note", "data": {"text": body["text"]}}
            send_json(self, status, data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server, poll_interval=0.05):
        yield state
