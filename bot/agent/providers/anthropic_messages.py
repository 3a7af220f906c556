"""Anthropic Messages API with tool use.

The key and base URL are passed explicitly; the SDK's retries are off (ours are in `retry`).
System messages become the `system` parameter; tool results go back as `tool_result` blocks
in one user turn, as the API requires for parallel calls.
May import: bot.errors, bot.agent.messages, bot.agent.pricing, bot.agent.providers.retry.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from bot.agent.messages import Message, ModelReply, ToolCall, ToolSpec
from bot.agent.pricing import PriceTable
from bot.agent.providers.retry import Failure, RetryPolicy, call_with_retries, http_failure
from bot.errors import ModelError

ANTHROPIC_BASE_URL = "https://api.anthropic.com"


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, messages) with consecutive same-role turns merged into one."""
    system: list[str] = []
    result: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if result and result[-1]["role"] == role:
            result[-1]["content"].extend(blocks)
        else:
            result.append({"role": role, "content": blocks})

    for m in messages:
        if m.role == "system":
            if m.content:
                system.append(m.content)
        elif m.role == "tool":
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": m.tool_call_id or "",
                        "content": m.content or "(no output)",
                    }
                ],
            )
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
                )
            add("assistant", blocks)
        else:
            add("user", [{"type": "text", "text": m.content}] if m.content else [])
    return "\n\n".join(system), result


def classify(exc: BaseException) -> Failure | None:
    """Retry 408 / 409 / 429 / 5xx (529: overloaded), timeouts and dropped connections."""
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure(True, "the request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return Failure(True, f"connection failed ({type(exc.__cause__ or exc).__name__})")
    if isinstance(exc, anthropic.APIStatusError):
        return http_failure(exc.status_code, exc.body, dict(exc.response.headers))
    if isinstance(exc, anthropic.AnthropicError):
        return Failure(False, type(exc).__name__)
    return None


class AnthropicModel:
    """A ChatModel on Anthropic's Messages API."""

    provider = "anthropic"
    scripted = False

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None,
        policy: RetryPolicy,
        prices: PriceTable,
        max_output_tokens: int,
    ) -> None:
        self.model = model
        self.base_url = base_url or ANTHROPIC_BASE_URL
        self.policy = policy
        self.prices = prices
        self.max_output_tokens = max_output_tokens
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            max_retries=0,
            # Backstop only: the hard deadline in `retry` fires first and names the limit.
            timeout=policy.timeout_s + 5,
        )
        # The SDK adds headers from ANTHROPIC_CUSTOM_HEADERS; settings are the only source.
        self._client._custom_headers = {}
        # Load the SDK's lazily imported resources now, not inside the first call's deadline.
        self._messages = self._client.messages

    def __repr__(self) -> str:
        return f"AnthropicModel(anthropic:{self.model} at {self.base_url})"

    @property
    def label(self) -> str:
        return f"anthropic:{self.model}"

    def complete(self, messages: list[Message], tools: list[ToolSpec], *, role: str) -> ModelReply:
        system, converted = to_anthropic(messages)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_output_tokens,
            "messages": converted,
        }
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in tools
            ]
        response = call_with_retries(
            lambda: self._messages.create(**kwargs),
            classify,
            self.policy,
            label=f"{self.label} ({role})",
        )
        content = getattr(response, "content", None)
        if getattr(response, "type", None) != "message" or not isinstance(content, list):
            raise ModelError(
                f"{self.label} ({role}): the reply is not a Messages API message "
                "(is ANTHROPIC_BASE_URL the API root, without /v1?)"
            )
        try:
            return self._reply(response)
        except (AttributeError, TypeError, ValueError):
            raise ModelError(f"{self.label} ({role}): the reply has malformed content") from None

    def _reply(self, response: Any) -> ModelReply:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in response.content:
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(getattr(block, "text", "") or "")
            elif kind == "tool_use":
                raw_input = getattr(block, "input", None)
                if isinstance(raw_input, dict):
                    arguments: dict[str, Any] | None = raw_input
                    raw = json.dumps(raw_input)
                else:  # a proxy or a broken server sent something other than an object
                    arguments = None
                    raw = raw_input if isinstance(raw_input, str) else json.dumps(raw_input)
                call_id, name = getattr(block, "id", None), getattr(block, "name", None)
                if not isinstance(call_id, str) or not isinstance(name, str) or not name:
                    raise ValueError("a tool_use block without a string id and name")
                calls.append(
                    ToolCall(
                        id=call_id,
                        name=name,
                        arguments=arguments,
                        raw_arguments=raw,
                    )
                )
        usage = getattr(response, "usage", None)
        input_tokens = sum(
            int(getattr(usage, key, 0) or 0)
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        output_tokens = int(getattr(usage, "output_tokens", 0) or 0)
        stop = getattr(response, "stop_reason", None)
        return ModelReply(
            content="\n".join(t for t in texts if t),
            tool_calls=tuple(calls),
            usage=self.prices.usage("anthropic", self.model, input_tokens, output_tokens),
            stop_reason=stop if isinstance(stop, str) else None,
            model=self.label,
        )
