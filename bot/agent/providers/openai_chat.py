"""OpenAI chat completions with tool calling, for api.openai.com and any compatible server.

vLLM, Ollama, LiteLLM and other gateways speak the same protocol at another base URL. The key
and base URL are passed explicitly; the SDK's retries are off (ours are in `retry`).
May import: bot.errors, bot.redact, bot.agent.messages, bot.agent.pricing,
bot.agent.providers.retry.
"""

from __future__ import annotations

import json
from typing import Any

import openai

from bot.agent.messages import Message, ModelReply, ToolCall, ToolSpec
from bot.agent.pricing import PriceTable
from bot.agent.providers.retry import Failure, RetryPolicy, call_with_retries, http_failure
from bot.errors import ModelError

OPENAI_BASE_URL = "https://api.openai.com/v1"
_FINISH = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def parse_arguments(raw: str | None) -> dict[str, Any] | None:
    """JSON object arguments, {} for empty text, None when the text is not a JSON object."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            result.append(
                {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
            )
        elif m.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": m.content or None}
            if m.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": json.dumps(c.arguments)
                            if c.arguments is not None
                            else c.raw_arguments,
                        },
                    }
                    for c in m.tool_calls
                ]
            result.append(entry)
        else:
            result.append({"role": m.role, "content": m.content})
    return result


def to_openai_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def classify(exc: BaseException) -> Failure | None:
    """Retry 408 / 409 / 429 / 5xx, timeouts and dropped connections; nothing else."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure(True, "the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(True, f"connection failed ({type(exc.__cause__ or exc).__name__})")
    if isinstance(exc, openai.APIStatusError):
        return http_failure(exc.status_code, exc.body, dict(exc.response.headers))
    if isinstance(exc, openai.OpenAIError):
        return Failure(False, type(exc).__name__)
    return None


class OpenAIChatModel:
    """A ChatModel on the chat completions endpoint of OpenAI or a compatible server."""

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
        provider: str = "openai",
    ) -> None:
        self.provider = provider
        self.model = model
        self.base_url = base_url or OPENAI_BASE_URL
        self.policy = policy
        self.prices = prices
        self.max_output_tokens = max_output_tokens
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=self.base_url,
            max_retries=0,
            # Backstop only: the hard deadline in `retry` fires first and names the limit.
            timeout=policy.timeout_s + 5,
        )
        # The SDK fills organization, project and extra headers from OPENAI_* variables when
        # they are not given; settings are the only source, so drop what it read.
        self._client.organization = None
        self._client.project = None
        self._client._custom_headers = {}
        if hasattr(self._client, "_ambient_authorizations"):
            self._client._ambient_authorizations = frozenset()
        # Load the SDK's lazily imported resources now, not inside the first call's deadline.
        self._completions = self._client.chat.completions

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.provider}:{self.model} at {self.base_url})"

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"

    def complete(self, messages: list[Message], tools: list[ToolSpec], *, role: str) -> ModelReply:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
        }
        if tools:
            kwargs["tools"] = to_openai_tools(tools)
        # api.openai.com wants max_completion_tokens; most compatible servers know max_tokens.
        if self.provider == "openai":
            kwargs["max_completion_tokens"] = self.max_output_tokens
        else:
            kwargs["max_tokens"] = self.max_output_tokens
        response = call_with_retries(
            lambda: self._completions.create(**kwargs),
            classify,
            self.policy,
            label=f"{self.label} ({role})",
        )
        try:
            return self._reply(response, role)
        except (AttributeError, TypeError, ValueError, IndexError):
            raise ModelError(
                f"{self.label} ({role}): the reply is not a chat completion "
                "(is the base URL an OpenAI-compatible /v1 endpoint?)"
            ) from None

    def _reply(self, response: Any, role: str) -> ModelReply:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise ModelError(f"{self.label} ({role}): the reply has no choices")
        if not isinstance(choices, list):
            raise TypeError("choices is not a list")
        choice = choices[0]
        message = choice.message
        content = message.content or ""
        calls: list[ToolCall] = []
        for index, call in enumerate(message.tool_calls or []):
            function = getattr(call, "function", None)
            if function is None:
                continue
            raw = function.arguments if isinstance(function.arguments, str) else ""
            if not isinstance(function.name, str) or not function.name:
                raise ValueError("a tool call without a function name")
            calls.append(
                ToolCall(
                    id=call.id if isinstance(call.id, str) and call.id else f"call_{index}",
                    name=function.name,
                    arguments=parse_arguments(raw),
                    raw_arguments=raw,
                )
            )
        finish = choice.finish_reason
        stop = _FINISH.get(finish, finish) if isinstance(finish, str) else None
        refusal = getattr(message, "refusal", None)
        if refusal:
            stop = "refusal"
            content = content or str(refusal)
        if calls and stop == "end_turn":
            stop = "tool_use"  # some compatible servers answer "stop" with tool calls
        usage = getattr(response, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return ModelReply(
            content=content,
            tool_calls=tuple(calls),
            usage=self.prices.usage(self.provider, self.model, input_tokens, output_tokens),
            stop_reason=stop,
            model=self.label,
        )
