"""The real openai and anthropic SDKs against local protocol-faithful servers.

Each behaviour runs for both protocols: tool calls (single, parallel, malformed), retries on
429 (Retry-After honoured, measured by the server's request times) and 500, the hard per-call
timeout, refusals, usage and cost, and non-retryable errors without secrets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.agent.messages import ChatModel, Message, ToolCall, ToolSpec
from bot.agent.providers import make_model
from bot.errors import ModelError
from bot.settings import load_settings
from tests.support.fake_llm import (
    TEST_ANTHROPIC_KEY,
    TEST_OPENAI_KEY,
    FakeLLM,
    Reply,
    anthropic_error,
    anthropic_reply,
    fake_anthropic,
    fake_openai,
    openai_error,
    openai_reply,
)

READ = ToolSpec(
    "read_file",
    "Read a file of the work tree",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
CONVERSATION = [Message("system", "You fix bugs."), Message("user", "ZeroDivisionError in app.py")]


@dataclass
class Wire:
    """One protocol: its fake server and how to phrase replies and errors on it."""

    name: str
    llm: FakeLLM
    spec: str
    reply: Callable[..., dict[str, Any]]
    error: Callable[[int, str], dict[str, Any]]
    key: str

    def model(self, **env: str) -> ChatModel:
        base = {
            "OPENAI_API_KEY": TEST_OPENAI_KEY,
            "OPENAI_BASE_URL": self.llm.base_url,
            "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": self.llm.base_url,
            "SELFHEAL_MODEL_TIMEOUT_S": "5",
            "SELFHEAL_MODEL_RETRY_BASE_S": "0.05",
        }
        return make_model(self.spec, load_settings({**base, **env}), role="fixer")

    def text(self, content: str, **kw: Any) -> dict[str, Any]:
        return self.reply(content, **kw)

    def calls(self, calls: list[tuple[str, str, Any]], **kw: Any) -> dict[str, Any]:
        key = "tool_calls" if self.name == "openai" else "tool_uses"
        return self.reply(None, **{key: calls}, **kw)


@pytest.fixture(params=["openai", "anthropic"])
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    if request.param == "openai":
        with fake_openai() as llm:
            yield Wire(
                "openai", llm, "openai:gpt-4.1-mini", openai_reply, openai_error, TEST_OPENAI_KEY
            )
    else:
        with fake_anthropic() as llm:
            yield Wire(
                "anthropic",
                llm,
                "anthropic:claude-sonnet-4-5",
                anthropic_reply,
                anthropic_error,
                TEST_ANTHROPIC_KEY,
            )


def test_tool_call_round_trip_with_results_sent_back(wire: Wire) -> None:
    wire.llm.queue(
        wire.calls([("call_1", "read_file", {"path": "app.py"})], usage=(1000, 50)),
        wire.text("The divisor can be zero.", usage=(1500, 20)),
    )
    model = wire.model()
    first = model.complete(CONVERSATION, [READ], role="fixer")
    assert first.tool_calls == (
        ToolCall("call_1", "read_file", {"path": "app.py"}, json.dumps({"path": "app.py"})),
    )
    assert first.stop_reason == "tool_use"
    assert first.model == wire.spec
    history = [
        *CONVERSATION,
        Message("assistant", first.content, first.tool_calls),
        Message("tool", "def ratio(a, b): return a / b", tool_call_id="call_1", name="read_file"),
    ]
    second = model.complete(history, [READ], role="fixer")
    assert second.content == "The divisor can be zero."
    assert second.stop_reason == "end_turn"
    assert wire.llm.violations == []
    sent = wire.llm.completions()[1].body
    assert "def ratio(a, b)" in json.dumps(sent["messages"])
    tools = sent["tools"]
    assert (tools[0].get("function") or tools[0])["name"] == "read_file"
    if wire.name == "anthropic":
        assert sent["system"] == "You fix bugs."


def test_parallel_tool_calls_come_back_in_order_and_their_results_in_one_turn(wire: Wire) -> None:
    wire.llm.queue(
        wire.calls(
            [
                ("c1", "read_file", {"path": "a.py"}),
                ("c2", "read_file", {"path": "b.py"}),
                ("c3", "search_code", {"query": "ratio"}),
            ]
        ),
        wire.text("ok"),
    )
    model = wire.model()
    reply = model.complete(CONVERSATION, [READ], role="fixer")
    assert [(c.id, c.name) for c in reply.tool_calls] == [
        ("c1", "read_file"),
        ("c2", "read_file"),
        ("c3", "search_code"),
    ]
    history = [*CONVERSATION, Message("assistant", "", reply.tool_calls)] + [
        Message("tool", f"result {c.id}", tool_call_id=c.id, name=c.name) for c in reply.tool_calls
    ]
    assert model.complete(history, [READ], role="fixer").content == "ok"
    assert wire.llm.violations == []
    if wire.name == "anthropic":  # all three results in the one user turn after the calls
        last = wire.llm.completions()[1].body["messages"][-1]
        assert [b["tool_use_id"] for b in last["content"]] == ["c1", "c2", "c3"]


def test_malformed_tool_arguments_become_a_call_without_arguments(wire: Wire) -> None:
    broken = '{"path": "app.py", "line": '
    wire.llm.queue(wire.calls([("c1", "read_file", broken), ("c2", "read_file", {"path": "x"})]))
    reply = wire.model().complete(CONVERSATION, [READ], role="fixer")
    assert reply.tool_calls[0].arguments is None
    assert reply.tool_calls[0].raw_arguments == broken
    assert reply.tool_calls[1].arguments == {"path": "x"}


def test_429_waits_as_long_as_retry_after_says(wire: Wire) -> None:
    wire.llm.queue(
        Reply(429, wire.error(429, "rate limited"), {"Retry-After": "1"}),
        wire.text("after the wait"),
    )
    reply = wire.model().complete(CONVERSATION, [], role="fixer")
    assert reply.content == "after the wait"
    first, second = wire.llm.completions()
    assert second.at - first.at >= 1.0
    assert second.at - first.at < 3.0


def test_500_is_retried_then_succeeds(wire: Wire) -> None:
    wire.llm.queue(Reply(500, wire.error(500, "internal")), wire.text("fine now"))
    assert wire.model().complete(CONVERSATION, [], role="fixer").content == "fine now"
    assert len(wire.llm.completions()) == 2


def test_persistent_5xx_gives_up_after_the_configured_attempts(wire: Wire) -> None:
    status = 529 if wire.name == "anthropic" else 503
    wire.llm.queue(*[Reply(status, wire.error(status, "overloaded")) for _ in range(5)])
    with pytest.raises(ModelError, match=rf"HTTP {status} \(overloaded\); gave up after 3"):
        wire.model(SELFHEAL_MODEL_MAX_ATTEMPTS="3").complete(CONVERSATION, [], role="fixer")
    assert len(wire.llm.completions()) == 3


def test_retry_after_beyond_the_wait_budget_fails_at_once(wire: Wire) -> None:
    wire.llm.queue(Reply(429, wire.error(429, "quota"), {"Retry-After": "3600"}))
    model = wire.model()
    started = time.monotonic()
    with pytest.raises(ModelError, match="retry budget of 90s"):
        model.complete(CONVERSATION, [], role="fixer")
    assert time.monotonic() - started < 2
    assert len(wire.llm.completions()) == 1


def test_a_call_past_the_timeout_is_abandoned_and_retried(wire: Wire) -> None:
    wire.llm.queue(Reply(200, wire.text("too late"), delay_s=30), wire.text("in time"))
    model = wire.model(SELFHEAL_MODEL_TIMEOUT_S="0.5")
    started = time.monotonic()
    reply = model.complete(CONVERSATION, [], role="fixer")
    assert reply.content == "in time"
    assert time.monotonic() - started < 5
    assert len(wire.llm.completions()) == 2


def test_only_timeouts_end_in_a_model_error(wire: Wire) -> None:
    wire.llm.queue(*[Reply(200, wire.text("late"), delay_s=30) for _ in range(2)])
    with pytest.raises(ModelError, match=r"timed out .*gave up after 2 attempts"):
        wire.model(SELFHEAL_MODEL_TIMEOUT_S="0.3", SELFHEAL_MODEL_MAX_ATTEMPTS="2").complete(
            CONVERSATION, [], role="fixer"
        )


def test_refusal_is_a_reply_not_an_exception(wire: Wire) -> None:
    if wire.name == "openai":
        wire.llm.queue(openai_reply(None, refusal="I can't help with that."))
    else:
        wire.llm.queue(anthropic_reply("I can't help with that.", stop_reason="refusal"))
    reply = wire.model().complete(CONVERSATION, [], role="fixer")
    assert reply.stop_reason == "refusal"
    assert reply.content == "I can't help with that."
    assert reply.tool_calls == ()


def test_usage_is_counted_and_priced(wire: Wire) -> None:
    wire.llm.queue(wire.text("x", usage=(200_000, 10_000)))
    usage = wire.model().complete(CONVERSATION, [], role="fixer").usage
    assert (usage.input_tokens, usage.output_tokens) == (200_000, 10_000)
    # gpt-4.1-mini: 0.4 / 1.6 USD per million; claude-sonnet-4-5: 3 / 15.
    expected = 0.08 + 0.016 if wire.name == "openai" else 0.6 + 0.15
    assert usage.cost_usd == pytest.approx(expected)
    assert usage.priced


def test_price_overrides_and_unknown_models(wire: Wire) -> None:
    model_name = wire.spec.split(":", 1)[1]
    prices = json.dumps({model_name: {"input": 1.0, "output": 2.0}})
    wire.llm.queue(wire.text("x", usage=(1_000_000, 1_000_000)), wire.text("y", usage=(5, 5)))
    assert wire.model(SELFHEAL_PRICES=prices).complete(
        CONVERSATION, [], role="fixer"
    ).usage.cost_usd == pytest.approx(3.0)
    unknown = make_model(
        wire.spec.split(":")[0] + ":my-finetune",
        load_settings(
            {
                "OPENAI_API_KEY": TEST_OPENAI_KEY,
                "OPENAI_BASE_URL": wire.llm.base_url,
                "ANTHROPIC_API_KEY": TEST_ANTHROPIC_KEY,
                "ANTHROPIC_BASE_URL": wire.llm.base_url,
            }
        ),
        role="fixer",
    ).complete(CONVERSATION, [], role="fixer")
    assert (unknown.usage.cost_usd, unknown.usage.priced) == (0.0, False)
    assert unknown.usage.input_tokens == 5


def test_a_wrong_key_is_a_model_error_without_the_key(wire: Wire) -> None:
    wrong = (
        "sk-ant-wrong-key-abcdefghijklmnop"
        if wire.name == "anthropic"
        else "sk-wrong-key-abcdefghijklmnop"
    )
    env = {"ANTHROPIC_API_KEY": wrong} if wire.name == "anthropic" else {"OPENAI_API_KEY": wrong}
    with pytest.raises(ModelError, match="HTTP 401") as caught:
        wire.model(**env).complete(CONVERSATION, [], role="fixer")
    assert "wrong-key" not in str(caught.value)
    assert len(wire.llm.completions()) == 1  # not retried


def test_a_400_echoing_the_key_is_redacted(wire: Wire) -> None:
    wire.llm.queue(Reply(400, wire.error(400, f"Incorrect API key provided: {wire.key}")))
    with pytest.raises(
        ModelError, match=r"HTTP 400 \(Incorrect API key provided: \[REDACTED\]\)"
    ) as caught:
        wire.model().complete(CONVERSATION, [], role="fixer")
    assert wire.key not in str(caught.value)
    assert len(wire.llm.completions()) == 1


def test_the_sdk_never_retries_on_its_own(wire: Wire) -> None:
    wire.llm.queue(Reply(500, wire.error(500, "boom")))
    with pytest.raises(ModelError, match="gave up after 1 attempts"):
        wire.model(SELFHEAL_MODEL_MAX_ATTEMPTS="1").complete(CONVERSATION, [], role="fixer")
    assert len(wire.llm.completions()) == 1


def test_openai_compatible_server_by_base_url_with_its_own_key() -> None:
    with fake_openai(api_key="local-server-key") as llm:
        llm.queue(openai_reply("hi from vllm", model="qwen2.5-coder"))
        settings = load_settings(
            {"OPENAI_API_KEY": TEST_OPENAI_KEY, "OPENAI_COMPATIBLE_API_KEY": "local-server-key"}
        )
        model = make_model(
            f"openai-compatible:qwen2.5-coder@{llm.base_url}", settings, role="localizer"
        )
        reply = model.complete(CONVERSATION, [], role="localizer")
        assert reply.content == "hi from vllm"
        assert reply.model == "openai-compatible:qwen2.5-coder"
        body = llm.completions()[0].body
        assert body["model"] == "qwen2.5-coder" and "max_tokens" in body
        # The OpenAI key is never sent to another server.
        assert TEST_OPENAI_KEY not in json.dumps(llm.completions()[0].headers)


@pytest.mark.parametrize(
    "garbage",
    [
        Reply(200, "<html>proxy login</html>"),
        Reply(200, {}),
        Reply(200, {"choices": "x", "content": "x", "type": "message"}),
        Reply(200, []),
        Reply(200, {"type": "message", "content": [{"type": "tool_use", "id": 5, "name": None}]}),
    ],
)
def test_a_reply_of_the_wrong_shape_is_a_model_error_not_a_crash(
    wire: Wire, garbage: Reply
) -> None:
    wire.llm.queue(garbage, garbage)
    with pytest.raises(ModelError, match=wire.spec) as caught:
        wire.model(SELFHEAL_MODEL_MAX_ATTEMPTS="2").complete(CONVERSATION, [], role="fixer")
    assert "\n" not in str(caught.value)


reply_bodies = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "message",
                    "content",
                    "tool_calls",
                    "function",
                    "name",
                    "arguments",
                    "id",
                    "type",
                    "text",
                    "input",
                    "usage",
                    "finish_reason",
                    "stop_reason",
                    "refusal",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=15,
)


cached: dict[str, ChatModel] = {}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=reply_bodies)
def test_any_200_body_is_a_reply_or_a_model_error(wire: Wire, body: Any) -> None:
    if wire.name == "anthropic" and isinstance(body, dict):
        body = {**body, "type": "message"}  # get past the envelope check more often
    wire.llm.queue(Reply(200, body))
    model = cached.get(wire.name + wire.llm.base_url)
    if model is None:
        model = cached[wire.name + wire.llm.base_url] = wire.model(SELFHEAL_MODEL_MAX_ATTEMPTS="1")
    try:
        reply = model.complete(CONVERSATION, [], role="fixer")
    except ModelError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(reply.content, str)
    assert all(isinstance(c.id, str) and c.name for c in reply.tool_calls)
    assert reply.usage.input_tokens >= 0


def test_the_sdks_take_nothing_from_the_environment(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys, base URLs, organization and extra headers come from settings only."""
    for prefix in ("OPENAI", "ANTHROPIC"):
        monkeypatch.setenv(f"{prefix}_API_KEY", "sk-from-the-environment-0000000000")
        monkeypatch.setenv(f"{prefix}_BASE_URL", "http://127.0.0.1:9/v1")
        monkeypatch.setenv(
            f"{prefix}_CUSTOM_HEADERS", "X-Leak: yes\nAuthorization: Bearer env-token-000000"
        )
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-env")
    wire.llm.queue(wire.text("ok"))
    assert wire.model().complete(CONVERSATION, [], role="fixer").content == "ok"
    headers = wire.llm.completions()[0].headers
    assert "x-leak" not in headers
    assert "openai-organization" not in headers and "openai-project" not in headers
    assert "from-the-environment" not in json.dumps(headers)
    assert "env-token" not in json.dumps(headers)


def test_the_fake_servers_list_models_to_the_real_sdks() -> None:
    import anthropic
    import openai

    with fake_openai() as oa, fake_anthropic() as an:
        oa_client = openai.OpenAI(api_key=TEST_OPENAI_KEY, base_url=oa.base_url, max_retries=0)
        assert [m.id for m in oa_client.models.list()] == ["gpt-4.1-mini", "gpt-4.1"]
        an_client = anthropic.Anthropic(
            api_key=TEST_ANTHROPIC_KEY, base_url=an.base_url, max_retries=0
        )
        assert [m.id for m in an_client.models.list()] == ["claude-sonnet-4-5"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(api_key="sk-nope", base_url=oa.base_url, max_retries=0).models.list()
