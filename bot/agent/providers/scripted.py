"""The scripted provider: replays model turns from a file instead of calling a model.

A script is JSON `{"version": 1, "roles": {ROLE: [TURN, ...]}}` (docs/scripted-models.md), or a
trajectory (JSONL) whose recorded model replies become the turns. Each role's turns are consumed
in order across every call of that role; models made from one `Script` share its queues.
May import: bot.errors, bot.agent.messages, bot.agent.trajectory.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agent.messages import Message, ModelReply, ToolCall, ToolSpec, Usage
from bot.agent.trajectory import is_trajectory_text, script_from_trajectory_text
from bot.errors import ModelScriptError

SCRIPT_VERSION = 1
_TURN_KEYS = {"content", "tool_calls", "usage", "stop_reason"}
_CALL_KEYS = {"id", "name", "arguments"}
MAX_SCRIPT_BYTES = 64 * 1024 * 1024


@dataclass
class Script:
    """Parsed turns per role and how many of each role have been used."""

    source: Path
    turns: dict[str, list[ModelReply]]
    used: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_reply(self, role: str) -> ModelReply:
        """The next turn for `role`; ModelScriptError when the role has none left."""
        with self._lock:
            queue = self.turns.get(role)
            if not queue:
                roles = ", ".join(sorted(self.turns)) or "none"
                raise ModelScriptError(
                    f"{self.source.name}: no turns for role {role!r} (the script has: {roles})"
                )
            index = self.used.get(role, 0)
            if index >= len(queue):
                raise ModelScriptError(
                    f"{self.source.name}: role {role!r} ran out of turns: turn {index + 1} "
                    f"was asked for and the script has {len(queue)}"
                )
            self.used[role] = index + 1
            return queue[index]


class ScriptedModel:
    """A ChatModel whose replies come from a `Script`; `scripted` is True."""

    provider = "scripted"
    scripted = True

    def __init__(self, script: Script, *, role: str) -> None:
        self.script = script
        self.role = role
        self.model = str(script.source)

    def __repr__(self) -> str:
        return f"ScriptedModel({self.script.source.name!r}, role={self.role!r})"

    def complete(self, messages: list[Message], tools: list[ToolSpec], *, role: str) -> ModelReply:
        return self.script.next_reply(role or self.role)


def load_script(path: str | Path) -> Script:
    """Read and validate a script or trajectory file; ModelScriptError on anything wrong."""
    source = Path(path)
    try:
        if source.stat().st_size > MAX_SCRIPT_BYTES:
            raise ModelScriptError(f"{source.name}: the script is larger than 64 MiB")
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelScriptError(f"{source}: no such script file") from None
    except IsADirectoryError:
        raise ModelScriptError(f"{source}: is a directory, expected a script file") from None
    except UnicodeDecodeError:
        raise ModelScriptError(f"{source.name}: not UTF-8 text") from None
    except OSError as exc:
        raise ModelScriptError(f"{source}: cannot read the script ({exc.strerror})") from None
    return parse_script(text, source)


def parse_script(text: str, source: Path) -> Script:
    """Parse script JSON (or trajectory JSONL) text into a Script."""
    name = source.name
    if is_trajectory_text(text):
        raw_roles: Any = script_from_trajectory_text(text, name)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelScriptError(
                f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        if not isinstance(doc, dict):
            raise ModelScriptError(f'{name}: expected an object {{"version": 1, "roles": {{...}}}}')
        if doc.get("version") != SCRIPT_VERSION:
            raise ModelScriptError(
                f"{name}: version must be {SCRIPT_VERSION}, got {doc.get('version')!r}"
            )
        unknown = set(doc) - {"version", "roles", "description"}
        if unknown:
            raise ModelScriptError(f"{name}: unknown key {sorted(unknown)[0]!r} at the top level")
        raw_roles = doc.get("roles")
    if not isinstance(raw_roles, dict):
        raise ModelScriptError(f"{name}: 'roles' must be an object mapping role -> list of turns")
    turns: dict[str, list[ModelReply]] = {}
    label = f"scripted:{source}"
    for role, raw_turns in raw_roles.items():
        if not isinstance(raw_turns, list):
            raise ModelScriptError(f"{name}: role {role!r}: expected a list of turns")
        turns[role] = [
            _parse_turn(turn, f"{name}: role {role!r} turn {i + 1}", f"{role}-{i + 1}", label)
            for i, turn in enumerate(raw_turns)
        ]
    return Script(source=source, turns=turns)


def _parse_turn(raw: Any, where: str, id_prefix: str, label: str) -> ModelReply:
    if not isinstance(raw, dict):
        raise ModelScriptError(f"{where}: expected an object with content / tool_calls")
    unknown = set(raw) - _TURN_KEYS
    if unknown:
        raise ModelScriptError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    content = raw.get("content", "")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise ModelScriptError(f"{where}: 'content' must be a string")
    raw_calls = raw.get("tool_calls", [])
    if raw_calls is None:
        raw_calls = []
    if not isinstance(raw_calls, list):
        raise ModelScriptError(f"{where}: 'tool_calls' must be a list")
    calls = tuple(
        _parse_call(call, f"{where} tool call {j + 1}", f"{id_prefix}-{j + 1}")
        for j, call in enumerate(raw_calls)
    )
    usage = _parse_usage(raw.get("usage"), where)
    stop = raw.get("stop_reason")
    if stop is not None and not isinstance(stop, str):
        raise ModelScriptError(f"{where}: 'stop_reason' must be a string")
    if stop is None:
        stop = "tool_use" if calls else "end_turn"
    return ModelReply(content=content, tool_calls=calls, usage=usage, stop_reason=stop, model=label)


def _parse_call(raw: Any, where: str, default_id: str) -> ToolCall:
    if not isinstance(raw, dict):
        raise ModelScriptError(f"{where}: expected an object with name and arguments")
    unknown = set(raw) - _CALL_KEYS - {"raw_arguments"}
    if unknown:
        raise ModelScriptError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ModelScriptError(f"{where}: 'name' must be a non-empty string")
    call_id = raw.get("id", default_id)
    if not isinstance(call_id, str) or not call_id:
        raise ModelScriptError(f"{where}: 'id' must be a non-empty string")
    arguments = raw.get("arguments", {})
    if isinstance(arguments, dict):
        return ToolCall(call_id, name, arguments, json.dumps(arguments))
    if isinstance(arguments, str):
        # A string is sent as the model's raw JSON text: malformed text replays a malformed call.
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError:
            parsed = None
        return ToolCall(call_id, name, parsed if isinstance(parsed, dict) else None, arguments)
    if arguments is None:
        raw_text = raw.get("raw_arguments", "")
        return ToolCall(call_id, name, None, raw_text if isinstance(raw_text, str) else "")
    raise ModelScriptError(f"{where}: 'arguments' must be an object or a JSON string")


def _parse_usage(raw: Any, where: str) -> Usage:
    if raw is None:
        return Usage()
    if not isinstance(raw, dict):
        raise ModelScriptError(f"{where}: 'usage' must be an object")
    values = {}
    for key in ("input_tokens", "output_tokens"):
        value = raw.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ModelScriptError(f"{where}: usage.{key} must be a non-negative integer")
        values[key] = value
    return Usage(input_tokens=values["input_tokens"], output_tokens=values["output_tokens"])
