"""Count every model call in bot.metrics: calls, tokens and USD by role and provider:model.

`make_model` wraps each provider's model in `MeteredModel`, so this is the one place a call
is counted whatever the provider. Attributes other than `complete` are the wrapped model's.
May import: bot.metrics, bot.agent.messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot import metrics
from bot.agent.messages import ChatModel, Message, ModelReply, ToolSpec


def model_label(model: ChatModel) -> str:
    """`provider:model`; a scripted model is labelled by its file name, not its path."""
    name = Path(model.model).name if model.scripted else model.model
    return f"{model.provider}:{name}"[:200]


class MeteredModel:
    """A ChatModel that counts its calls, then answers exactly as the model it wraps."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.scripted = inner.scripted
        self.label = model_label(inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return repr(self.inner)

    def complete(self, messages: list[Message], tools: list[ToolSpec], *, role: str) -> ModelReply:
        try:
            reply = self.inner.complete(messages, tools, role=role)
        except BaseException:
            metrics.MODEL_CALLS.labels(role, self.label, "error").inc()
            raise
        usage = reply.usage
        metrics.MODEL_CALLS.labels(role, self.label, "ok").inc()
        metrics.MODEL_TOKENS.labels(role, self.label, "input").inc(max(usage.input_tokens, 0))
        metrics.MODEL_TOKENS.labels(role, self.label, "output").inc(max(usage.output_tokens, 0))
        metrics.MODEL_COST_USD.labels(role, self.label).inc(max(usage.cost_usd, 0.0))
        return reply
