"""Local HTTP servers on 127.0.0.1 that answer like Sentry's and PagerDuty's REST APIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.intake.conftest import fixture_json
from tests.support.http import send_json, serving

SENTRY_TOKEN = "sntrys_test_token"
PAGERDUTY_TOKEN = "pd_test_token"

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/api/views.py", line 42, in checkout
    total = compute_total(cart)
  File "/srv/app/api/pricing.py", line 17, in compute_total
    return sum(item.price for item in cart.items) / len(cart.items)
ZeroDivisionError: division by zero
"""


def sentry_latest_event(issue_id: str) -> dict[str, Any]:
    """The shape of `GET /api/0/issues/{id}/events/latest/` (camelCase, entries[])."""
    return {
        "eventID": "9fac2ceed9344f2bbfdd1fdacb0ed9b1",
        "groupID": issue_id,
        "title": "ZeroDivisionError: division by zero",
        "platform": "python",
        "release": {"version": "4f2e1a9"},
        "tags": [{"key": "environment", "value": "production"}],
        "entries": [
            {
                "type": "exception",
                "data": {
                    "values": [
                        {
                            "type": "ZeroDivisionError",
                            "value": "division by zero",
                            "module": "builtins",
                            "stacktrace": {
                                "frames": [
                                    {
                                        "filename": "api/views.py",
                                        "absPath": "/srv/app/api/views.py",
                                        "module": "api.views",
                                        "function": "checkout",
                                        "lineNo": 42,
                                        "inApp": True,
                                        "context": [[42, "    total = compute_total(cart)"]],
                                    },
                                    {
                                        "filename": "api/pricing.py",
                                        "absPath": "/srv/app/api/pricing.py",
                                        "module": "api.pricing",
                                        "function": "compute_total",
                                        "lineNo": 17,
                                        "inApp": True,
                                        "context": [[17, "    return sum(...) / len(cart.items)"]],
                                    },
                                ]
                            },
                        }
                    ]
                },
            }
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        send_json(self, status, body)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers)))
        parts = self.path.split("?")[0].strip("/").split("/")
        auth = self.headers.get("Authorization", "")
        # Sentry: /api/0/issues/{id}/events/latest/
        if parts[:3] == ["api", "0", "issues"] and parts[4:] == ["events", "latest"]:
            if auth != f"Bearer {SENTRY_TOKEN}":
                return self._send(401, {"detail": "Invalid token"})
            return self._send(200, sentry_latest_event(parts[3]))
        # PagerDuty: /incidents/{id}/alerts
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "alerts":
            if auth != f"Token token={PAGERDUTY_TOKEN}":
                return self._send(401, {"error": {"message": "Unauthorized", "code": 2006}})
            body = fixture_json("pagerduty-rest.incident-alerts.response.json")
            body["alerts"][0]["incident"]["id"] = parts[1]
            body["alerts"][0]["body"]["details"] = {"stack": TRACEBACK, "repo": "acme/backend-api"}
            return self._send(200, body)
        return self._send(404, {"detail": "not found"})


class _Server(ThreadingHTTPServer):
    requests: list[tuple[str, dict[str, str]]]


@contextmanager
def vendor_api() -> Iterator[_Server]:
    """One server playing both APIs: Sentry under /api/0, PagerDuty at the root."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.requests = []
    with serving(server):
        yield server
