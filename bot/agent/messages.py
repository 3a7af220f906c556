"""Provider-neutral chat records shared by every model provider and the agent loop.

May import: nothing from bot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to a model: name, description and JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A tool call a model asked for. `arguments` is None when the model sent malformed JSON."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""


@dataclass(frozen=True)
class Message:
    """One chat message in the provider-neutral form."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role == "tool"
    name: str | None = None  # tool name for role == "tool"


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one call. `priced` is False when the model is not in the price table."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True


@dataclass(frozen=True)
class ModelReply:
    """What one model call returned."""

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None  # end_turn | tool_use | max_tokens | refusal | ...
    model: str = ""


class ChatModel(Protocol):
    """One provider:model pair that can complete a conversation with tools."""

    provider: str
    model: str
    scripted: bool  # True when replies are replayed from a file, not produced by a model

    def complete(
        self, messages: list[Message], tools: list[ToolSpec], *, role: str
    ) -> ModelReply: ...
