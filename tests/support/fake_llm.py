"""Local servers that speak the OpenAI and Anthropic wire protocols, scripted per test.

    with fake_openai() as llm:                    # llm.base_url == "http://127.0.0.1:PORT/v1"
        llm.queue(openai_reply(tool_calls=[("c1", "read_file", {"path": "a.py"})]))
        llm.queue(Reply(429, openai_error(429, "slow down"), {"Retry-After": "1"}))
        ... point OPENAI_BASE_URL (or the SDK's base_url) at llm.base_url ...
        assert llm.requests[0].body["model"] == "gpt-4.1-mini"

    with fake_anthropic() as llm:                 # llm.base_url == "http://127.0.0.1:PORT"
        llm.queue(anthropic_reply(text="done", usage=(10, 2)))

Each POST to the completion endpoint takes the next queued item: a dict (a canned reply
object, sent with 200) or a `Reply` (status, body, headers, delay before answering). With an
empty queue the server answers 400 with a message saying so, and records it in `misses`.
Requests are checked the way the real APIs check them (auth header, required fields, every
tool call answered by a tool result); a violation is a 400 and is recorded in `violations`.
Every request is recorded with its arrival time (`time.monotonic()`), so tests can assert how
long a client waited between attempts.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Protocol = Literal["openai", "anthropic"]
_ids = itertools.count(1)


@dataclass
class Reply:
    """A scripted HTTP answer: status, JSON body (or raw text), headers, and a delay first."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when the request arrived


# --- canned reply objects -------------------------------------------------------------------

ToolCallSpec = tuple[str, str, dict[str, Any] | str]


def openai_reply(
    content: str | None = None,
    *,
    tool_calls: Sequence[ToolCallSpec] = (),
    finish_reason: str | None = None,
    refusal: str | None = None,
    usage: tuple[int, int] = (10, 5),
    model: str = "gpt-4.1-mini",
) -> dict[str, Any]:
    """A chat.completion object; tool call arguments given as str are sent verbatim."""
    calls = [
        {
            "id": call_id,
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
        for call_id, name, args in tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


def anthropic_reply(
    text: str | None = None,
    *,
    tool_uses: Sequence[ToolCallSpec] = (),
    stop_reason: str | None = None,
    usage: tuple[int, int] = (10, 5),
    model: str = "claude-sonnet-4-5",
) -> dict[str, Any]:
    """A Messages API `message` object; a str tool input is sent as is (a broken proxy)."""
    content: list[dict[str, Any]] = []
    if text:
        content.append({"type": "text", "text": text})
    for call_id, name, args in tool_uses:
        content.append({"type": "tool_use", "id": call_id, "name": name, "input": args})
    return {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def openai_error(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_error"}
    return {
        "error": {
            "message": message,
            "type": kinds.get(status, "server_error"),
            "param": None,
            "code": None,
        }
    }


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}


# --- the server -----------------------------------------------------------------------------


class FakeLLM:
    """Handle on a running fake server: script replies, read what clients sent."""

    def __init__(self, protocol: Protocol, api_key: str, models: list[str]) -> None:
        self.protocol = protocol
        self.api_key = api_key
        self.models = models
        self.base_url = ""
        self.requests: list[Request] = []
        self.misses: list[Request] = []
        self.violations: list[str] = []
        self._queue: deque[dict[str, Any] | Reply] = deque()
        self._lock = threading.Lock()
        self.closing = threading.Event()

    @property
    def endpoint(self) -> str:
        return "/v1/chat/completions" if self.protocol == "openai" else "/v1/messages"

    def queue(self, *items: dict[str, Any] | Reply) -> None:
        """Append replies for the completion endpoint, answered in order."""
        with self._lock:
            self._queue.extend(items)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def completions(self) -> list[Request]:
        """Requests to the completion endpoint, in arrival order."""
        return [r for r in self.requests if r.path == self.endpoint]

    def _next(self) -> dict[str, Any] | Reply | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def error(self, status: int, message: str) -> dict[str, Any]:
        if self.protocol == "openai":
            return openai_error(status, message)
        return anthropic_error(status, message)

    # request checks, as the real APIs do them --------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.protocol == "openai":
            return headers.get("authorization") == f"Bearer {self.api_key}"
        # The API takes the key as x-api-key; newer SDKs send it as a bearer token.
        bearer = headers.get("authorization") == f"Bearer {self.api_key}"
        return headers.get("x-api-key") == self.api_key or bearer

    def check(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        if self.protocol == "openai":
            return _check_openai(messages, body)
        return _check_anthropic(messages, body)


def _check_openai(messages: list[Any], body: dict[str, Any]) -> str | None:
    waiting: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{index}].role: invalid value {role!r}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in waiting:
                return f"messages[{index}]: tool message for unknown tool_call_id {call_id!r}"
            waiting.discard(call_id)
            continue
        if waiting:
            return f"messages[{index}]: tool_calls {sorted(waiting)} must be answered first"
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                waiting.add(call["id"])
                if not isinstance(call.get("function", {}).get("arguments"), str):
                    return f"messages[{index}]: function.arguments must be a string"
    for tool in body.get("tools") or []:
        if tool.get("type") != "function" or "name" not in tool.get("function", {}):
            return "tools: each tool must be {type: function, function: {name, ...}}"
    return None


def _check_anthropic(messages: list[Any], body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: field required"
    expected = "user"
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role != expected:
            return f"messages.{index}.role: roles must alternate, starting with user"
        expected = "assistant" if role == "user" else "user"
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            return f"messages.{index}: content must be non-empty"
        answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if open_calls - answered:
            return (
                f"messages.{index}: tool_use ids {sorted(open_calls - answered)} were found "
                "without tool_result blocks immediately after"
            )
        open_calls = set()
        for block in blocks:
            if block.get("type") == "text" and not block.get("text"):
                return f"messages.{index}: text content blocks must be non-empty"
            if block.get("type") == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{index}: tool_use needs an object input"
                open_calls.add(block["id"])
    for tool in body.get("tools") or []:
        if "name" not in tool or "input_schema" not in tool:
            return "tools: each tool needs name and input_schema"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: no Nagle / delayed-ACK stall per reply.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout passed)

    def _record(self, body: Any) -> Request:
        request = Request(
            self.command,
            self.path.split("?")[0],
            {k.lower(): v for k, v in self.headers.items()},
            body,
            time.monotonic(),
        )
        self.server.llm.requests.append(request)
        return request

    def do_GET(self) -> None:
        request = self._record(None)
        llm = self.server.llm
        if request.path != "/v1/models":
            self._send(404, llm.error(404, f"no route {request.path}"))
        elif not llm.authorized(request.headers):
            self._send(401, llm.error(401, "invalid api key"))
        elif llm.protocol == "openai":
            items = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in llm.models
            ]
            self._send(200, {"object": "list", "data": items})
        else:
            items = [
                {"id": m, "type": "model", "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in llm.models
            ]
            self._send(200, {"data": items, "has_more": False, "first_id": None, "last_id": None})

    def do_POST(self) -> None:
        llm = self.server.llm
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        request = self._record(body)
        if request.path != llm.endpoint:
            self._send(404, llm.error(404, f"no route {request.path}"))
            return
        if not llm.authorized(request.headers):
            self._send(401, llm.error(401, "invalid x-api-key / bearer token"))
            return
        problem = llm.check(body)
        if problem is not None:
            llm.violations.append(problem)
            self._send(400, llm.error(400, problem))
            return
        item = llm._next()
        if item is None:
            llm.misses.append(request)
            self._send(400, llm.error(400, f"fake server: nothing queued for {request.path}"))
            return
        reply = item if isinstance(item, Reply) else Reply(200, item)
        if reply.delay_s and llm.closing.wait(reply.delay_s):
            return
        body_out = reply.body if reply.body is not None else {}
        if isinstance(body_out, str):
            body_out = body_out.encode()
        self._send(reply.status, body_out, reply.headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    llm: FakeLLM


@contextmanager
def _serve(protocol: Protocol, api_key: str, models: list[str]) -> Iterator[FakeLLM]:
    llm = FakeLLM(protocol, api_key, models)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.llm = llm
    port = server.server_address[1]
    llm.base_url = f"http://127.0.0.1:{port}" + ("/v1" if protocol == "openai" else "")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield llm
    finally:
        llm.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


TEST_OPENAI_KEY = "sk-test-fake-openai-key-0123456789"
TEST_ANTHROPIC_KEY = "sk-ant-test-fake-anthropic-key-0123456789"


@contextmanager
def fake_openai(
    api_key: str = TEST_OPENAI_KEY, models: list[str] | None = None
) -> Iterator[FakeLLM]:
    """An OpenAI-protocol server; `base_url` ends in /v1, as OPENAI_BASE_URL expects."""
    with _serve("openai", api_key, models or ["gpt-4.1-mini", "gpt-4.1"]) as llm:
        yield llm


@contextmanager
def fake_anthropic(
    api_key: str = TEST_ANTHROPIC_KEY, models: list[str] | None = None
) -> Iterator[FakeLLM]:
    """An Anthropic-protocol server; `base_url` is the root, as ANTHROPIC_BASE_URL expects."""
    with _serve("anthropic", api_key, models or ["claude-sonnet-4-5"]) as llm:
        yield llm
