"""Node.js stack traces as text."""

from __future__ import annotations

import pytest

from bot.errors import IncidentFormatError
from bot.readers import from_node_stack

STACK = """\
TypeError: cart.items.map is not a function
    at totalPrice (/app/src/cart.js:12:5)
    at async Promise.all (index 0)
    at async checkout (/app/src/routes/checkout.js:30:17)
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at /app/src/index.js:3:1
    at new Server (file:///app/src/server.mjs:8:11)
    at Object.<anonymous> (C:\\work\\app\\src\\main.js:2:9)
    at Module._compile (node:internal/modules/cjs/loader:1105:14)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
"""


def test_frames_outermost_first_with_in_app() -> None:
    incident = from_node_stack(STACK)
    assert incident.source == "nodejs"
    assert incident.title == "TypeError: cart.items.map is not a function"
    assert incident.error_type == "TypeError"
    assert incident.error_message == "cart.items.map is not a function"
    assert [(f.file, f.line, f.function, f.in_app) for f in incident.frames] == [
        ("node:internal/process/task_queues", 95, "process.processTicksAndRejections", False),
        ("node:internal/modules/cjs/loader", 1105, "Module._compile", False),
        ("C:\\work\\app\\src\\main.js", 2, "Object.<anonymous>", True),
        ("/app/src/server.mjs", 8, "new Server", True),
        ("/app/src/index.js", 3, None, True),
        (
            "/app/node_modules/express/lib/router/layer.js",
            95,
            "Layer.handle [as handle_request]",
            False,
        ),
        ("/app/src/routes/checkout.js", 30, "checkout", True),
        ("/app/src/cart.js", 12, "totalPrice", True),
    ]


def test_uncaught_header_with_source_excerpt_and_error_code() -> None:
    text = """/app/src/db.js:4
    throw err;
    ^

Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'pg' imported from /app/src/db.js
    at packageResolve (node:internal/modules/esm/resolve:844:9)
    at moduleResolve (node:internal/modules/esm/resolve:901:20)

Node.js v20.11.0
"""
    incident = from_node_stack(text)
    assert incident.error_type == "Error"
    assert incident.extra["error_code"] == "ERR_MODULE_NOT_FOUND"
    assert incident.error_message == "Cannot find package 'pg' imported from /app/src/db.js"
    assert all(not f.in_app for f in incident.frames)


def test_stack_in_prefixed_log_lines() -> None:
    lines = [
        "RangeError: Invalid time value",
        "    at format (/app/src/date.js:7:11)",
        "    at render (/app/src/view.js:19:4)",
    ]
    text = "\n".join(f"api-1  | {line}" for line in lines)
    incident = from_node_stack("api-1  | listening on 3000\n" + text)
    assert incident.error_type == "RangeError"
    assert incident.error_message == "Invalid time value"
    assert [f.file for f in incident.frames] == ["/app/src/view.js", "/app/src/date.js"]


def test_multi_line_message_and_eval_frame() -> None:
    text = """Error: request failed
status 502 from upstream
    at eval (eval at compile (/app/src/tmpl.js:3:10), <anonymous>:1:1)
    at fetchJson (/app/src/http.js:22:9)
"""
    incident = from_node_stack(text)
    assert incident.error_message == "request failed\nstatus 502 from upstream"
    assert incident.title == "Error: request failed"
    assert [(f.file, f.line) for f in incident.frames] == [
        ("/app/src/http.js", 22),
        ("/app/src/tmpl.js", 3),
    ]


def test_no_frames_is_refused() -> None:
    with pytest.raises(IncidentFormatError, match="no '    at file:line:column' frame"):
        from_node_stack("TypeError: x is not a function\n    at <anonymous>\n")
