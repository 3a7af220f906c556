"""Trajectory records: one redacted JSON line per step, deltas per conversation, read back."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bot.agent.messages import Message, ModelReply, ToolCall, Usage
from bot.agent.trajectory import MAX_TOOL_RESULT_CHARS, TrajectoryWriter, read_trajectory
from bot.errors import ModelScriptError
from bot.redact import redact, redact_obj

GH_TOKEN = "ghs_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
OPENAI_KEY = "sk-proj-" + "abcDEF1234567890abcDEF1234567890"


def reply(text: str, *calls: ToolCall) -> ModelReply:
    return ModelReply(text, calls, Usage(100, 20, 0.0012), "end_turn", "openai:gpt-4.1-mini")


def test_each_step_is_one_line_with_the_contract_fields(tmp_path: Path) -> None:
    path = tmp_path / "t" / "trajectory.jsonl"
    history = [Message("system", "fix"), Message("user", "boom")]
    call = ToolCall("c1", "read_file", {"path": "a.py"}, '{"path": "a.py"}')
    with TrajectoryWriter(path) as writer:
        writer.model_step(
            role="fixer",
            model="openai:gpt-4.1-mini",
            messages=history,
            reply=reply("", call),
            elapsed_s=1.25,
        )
        # The next call sends two more messages: only those are recorded.
        history += [Message("assistant", "", (call,)), Message("tool", "x = 1", tool_call_id="c1")]
        writer.tool_step(
            role="fixer",
            model="openai:gpt-4.1-mini",
            tool="read_file",
            arguments={"path": "a.py"},
            result="x" * (MAX_TOOL_RESULT_CHARS + 500),
            elapsed_s=0.01,
            call_id="c1",
        )
        writer.model_step(
            role="fixer",
            model="openai:gpt-4.1-mini",
            messages=history,
            reply=reply("done"),
            elapsed_s=0.5,
        )
        writer.event("budget_exhausted", role="fixer", limit="steps")
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    records = [json.loads(line) for line in lines]
    for record in records:
        assert {
            "ts",
            "role",
            "model",
            "kind",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "elapsed_s",
        } <= set(record)
    first, tool, second, event = records
    assert [first["kind"], tool["kind"], second["kind"], event["kind"]] == [
        "model",
        "tool",
        "model",
        "event",
    ]
    assert first["messages_from"] == 0 and len(first["messages"]) == 2
    assert first["reply"]["tool_calls"][0]["arguments"] == {"path": "a.py"}
    assert (first["input_tokens"], first["output_tokens"], first["cost_usd"]) == (100, 20, 0.0012)
    assert second["messages_from"] == 2 and [m["role"] for m in second["messages"]] == [
        "assistant",
        "tool",
    ]
    assert tool["result"].endswith("500 more characters not recorded]")
    assert len(tool["result"]) < MAX_TOOL_RESULT_CHARS + 100
    assert event["event"] == "budget_exhausted" and event["data"] == {"limit": "steps"}
    assert read_trajectory(path) == records


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    leaky = Message("user", f"env: GITHUB_TOKEN={GH_TOKEN} OPENAI_API_KEY={OPENAI_KEY}")
    with TrajectoryWriter(path) as writer:
        writer.model_step(
            role="planner",
            model="openai:gpt-4.1",
            messages=[leaky],
            reply=reply(f"I will push with https://x-access-token:{GH_TOKEN}@github.com/o/r.git"),
            elapsed_s=0.1,
        )
        writer.tool_step(
            role="planner",
            model="openai:gpt-4.1",
            tool="run_tests",
            arguments={"cmd": f"curl -H 'Authorization: Bearer {OPENAI_KEY}'"},
            result="-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            elapsed_s=0.1,
        )
    text = path.read_text()
    for secret in (GH_TOKEN, OPENAI_KEY, "MIIEow"):
        assert secret not in text
    assert text.count("[REDACTED]") >= 5


def test_parallel_writers_do_not_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    with TrajectoryWriter(path) as writer:

        def work(n: int) -> None:
            for i in range(50):
                writer.event("tick", role=f"r{n}", payload="y" * 2000, i=i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(read_trajectory(path)) == 200


def test_a_corrupt_trajectory_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"kind": "event", "role": ""}\n{"kind": "event"\n')
    with pytest.raises(ModelScriptError, match=r"t.jsonl: line 2 is not JSON"):
        read_trajectory(path)
    path.write_text('{"kind": "chat", "role": "x"}\n')
    with pytest.raises(ModelScriptError, match=r"line 1 is not a trajectory step"):
        read_trajectory(path)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"token {GH_TOKEN}", GH_TOKEN),
        ("ghp_" + "x" * 36, "ghp_" + "x" * 36),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "github_pat_11ABCDEFG0123456789",
        ),
        (f"key={OPENAI_KEY}", OPENAI_KEY),
        ("sk-ant-api03-" + "Z" * 40, "Z" * 40),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9"),
        ("redis://:hunter2secret@cache:6379/0", "hunter2secret"),
        ("https://user:pa55word@example.com/x", "pa55word"),
        ("SENTRY_AUTH_TOKEN=abcdef0123456789", "abcdef0123456789"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n", "b3BlbnNzaC1rZXk"),
    ],
)
def test_redact_removes_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "[REDACTED]" in redact(text)


def test_redact_keeps_ordinary_text() -> None:
    text = "ZeroDivisionError: division by zero in app/orders.py:42 (see https://example.com/docs)"
    assert redact(text) == text
    assert redact_obj({"a": [text, 3, None, (GH_TOKEN,)]}) == {
        "a": [text, 3, None, ("[REDACTED]",)]
    }
    # Values of secret-named keys go whatever they look like; token counts stay.
    record = {"arguments": {"api_key": "abc", "token": None}, "input_tokens": 12}
    assert redact_obj(record) == {
        "arguments": {"api_key": "[REDACTED]", "token": None},
        "input_tokens": 12,
    }
