"""Trajectories: one JSON line per step of a job, written as it goes, and read back as a script.

Every line has `ts`, `role`, `model` (provider:model), `kind` ("model" | "tool" | "event"),
`input_tokens`, `output_tokens`, `cost_usd` and `elapsed_s`. Model lines carry the messages
sent since the previous call of the same conversation (`messages_from` says where they start)
and the reply; tool lines carry the tool, its arguments and its (truncated) result. Every string
passes through `bot.redact` before it is written. May import: bot.errors, bot.redact,
bot.agent.messages.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bot.agent.messages import Message, ModelReply, ToolCall
from bot.errors import ModelScriptError
from bot.redact import redact_obj

MAX_TOOL_RESULT_CHARS = 20_000
TRAJECTORY_KINDS = ("model", "tool", "event")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not recorded]"


def call_to_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "raw_arguments": call.raw_arguments,
    }


def message_to_json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        data["tool_calls"] = [call_to_json(c) for c in message.tool_calls]
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        data["name"] = message.name
    return data


def reply_to_json(reply: ModelReply) -> dict[str, Any]:
    return {
        "content": reply.content,
        "tool_calls": [call_to_json(c) for c in reply.tool_calls],
        "stop_reason": reply.stop_reason,
        "model": reply.model,
    }


class TrajectoryWriter:
    """Appends one redacted JSON line per step to `path`, flushed as each step ends.

    Thread-safe, so sub-agents running in parallel can share one writer.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._sent: dict[str, int] = {}

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(redact_obj(record), ensure_ascii=False, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def model_step(
        self,
        *,
        role: str,
        model: str,
        messages: list[Message],
        reply: ModelReply,
        elapsed_s: float,
        conversation: str | None = None,
    ) -> None:
        """Record one model call: the messages new since the conversation's last call and the reply.

        `conversation` names one transcript (default: the role); sub-agents of one role that run
        separate transcripts should pass their own name so deltas stay correct.
        """
        key = conversation or role
        with self._lock:
            start = self._sent.get(key, 0)
            if start > len(messages):  # a new transcript under the same name
                start = 0
            self._sent[key] = len(messages)
        self._write(
            {
                "ts": _now(),
                "role": role,
                "model": model,
                "kind": "model",
                "conversation": key,
                "messages_from": start,
                "messages": [message_to_json(m) for m in messages[start:]],
                "reply": reply_to_json(reply),
                "input_tokens": reply.usage.input_tokens,
                "output_tokens": reply.usage.output_tokens,
                "cost_usd": round(reply.usage.cost_usd, 6),
                "priced": reply.usage.priced,
                "elapsed_s": round(elapsed_s, 3),
            }
        )

    def tool_step(
        self,
        *,
        role: str,
        model: str,
        tool: str,
        arguments: dict[str, Any] | None,
        result: str,
        elapsed_s: float,
        call_id: str = "",
        error: bool = False,
    ) -> None:
        """Record one tool run; the result is truncated to MAX_TOOL_RESULT_CHARS."""
        self._write(
            {
                "ts": _now(),
                "role": role,
                "model": model,
                "kind": "tool",
                "tool": tool,
                "call_id": call_id,
                "arguments": arguments,
                "result": _truncate(result, MAX_TOOL_RESULT_CHARS),
                "error": error,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
                "elapsed_s": round(elapsed_s, 3),
            }
        )

    def event(self, name: str, *, role: str = "", model: str = "", **data: Any) -> None:
        """Record something that is neither a model call nor a tool run (budget hit, stage...)."""
        self._write(
            {
                "ts": _now(),
                "role": role,
                "model": model,
                "kind": "event",
                "event": name,
                "data": data,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
                "elapsed_s": 0.0,
            }
        )


def read_trajectory(path: Path) -> list[dict[str, Any]]:
    """All records of a trajectory file; ModelScriptError names the first bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelScriptError(f"{path}: no such trajectory file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelScriptError(f"{path}: cannot read the trajectory ({exc})") from None
    return _records(text, path.name)


def _records(text: str, name: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ModelScriptError(f"{name}: line {number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or record.get("kind") not in TRAJECTORY_KINDS:
            raise ModelScriptError(
                f"{name}: line {number} is not a trajectory step (kind must be model/tool/event)"
            )
        records.append(record)
    return records


def is_trajectory_text(text: str) -> bool:
    """True when the first non-blank line is a trajectory step (a JSON object with `kind`)."""
    for line in text.splitlines():
        if line.strip():
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                return False
            return isinstance(first, dict) and "kind" in first and "role" in first
    return False


def script_from_trajectory_text(text: str, name: str) -> dict[str, list[dict[str, Any]]]:
    """The assistant turns of a trajectory per role, in the scripted-model TURN shape."""
    roles: dict[str, list[dict[str, Any]]] = {}
    for number, record in enumerate(_records(text, name), start=1):
        if record["kind"] != "model":
            continue
        reply = record.get("reply")
        role = record.get("role")
        if not isinstance(reply, dict) or not isinstance(role, str) or not role:
            raise ModelScriptError(f"{name}: line {number} is a model step without role or reply")
        raw_calls = reply.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise ModelScriptError(f"{name}: line {number}: reply.tool_calls must be a list")
        calls = []
        for call in raw_calls:
            if not isinstance(call, dict):
                raise ModelScriptError(f"{name}: line {number}: a tool call is not an object")
            arguments = call.get("arguments")
            if not isinstance(arguments, dict):
                # A malformed call was recorded with arguments null: replay its raw text.
                raw = call.get("raw_arguments")
                arguments = raw if isinstance(raw, str) else ""
            entry: dict[str, Any] = {"name": call.get("name"), "arguments": arguments}
            if call.get("id"):
                entry["id"] = call["id"]
            calls.append(entry)
        # Types are checked where the turn is parsed (scripted provider), with the turn named.
        turn: dict[str, Any] = {
            "content": reply.get("content") or "",
            "tool_calls": calls,
            "usage": {
                "input_tokens": record.get("input_tokens") or 0,
                "output_tokens": record.get("output_tokens") or 0,
            },
        }
        if reply.get("stop_reason") is not None:
            turn["stop_reason"] = reply["stop_reason"]
        roles.setdefault(role, []).append(turn)
    return roles


def script_from_trajectory(path: Path) -> dict[str, Any]:
    """A scripted-model document `{"version": 1, "roles": ...}` built from a trajectory file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelScriptError(f"{path}: cannot read the trajectory ({exc})") from None
    return {"version": 1, "roles": script_from_trajectory_text(text, path.name)}


__all__ = [
    "TrajectoryWriter",
    "is_trajectory_text",
    "read_trajectory",
    "script_from_trajectory",
    "script_from_trajectory_text",
]
