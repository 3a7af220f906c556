"""The scripted provider, spec parsing and role routing: what `--model` users see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from bot.agent.messages import Message, ToolSpec
from bot.agent.providers import make_model, make_models, parse_spec, resolve_model_specs
from bot.agent.trajectory import TrajectoryWriter, script_from_trajectory
from bot.errors import ModelScriptError, SettingsError, UsageError
from bot.settings import Settings, load_settings

TOOLS = [ToolSpec("read_file", "Read a file", {"type": "object", "properties": {}})]
HELLO = [Message("user", "fix it")]


def settings(**env: str) -> Settings:
    return load_settings(env)


def write_script(path: Path, roles: dict[str, list[dict[str, object]]]) -> Path:
    path.write_text(json.dumps({"version": 1, "roles": roles}))
    return path


def test_turns_replay_in_order_per_role_and_roles_share_one_file(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "demo.json",
        {
            "planner": [
                {
                    "content": "look first",
                    "tool_calls": [
                        {"id": "c1", "name": "read_file", "arguments": {"path": "app.py"}}
                    ],
                    "usage": {"input_tokens": 120, "output_tokens": 30},
                },
                {"content": "done"},
            ],
            "fixer": [{"content": "patched"}],
        },
    )
    spec = f"scripted:{script}"
    models = make_models({"planner": spec, "fixer": spec}, settings())
    planner, fixer = models["planner"], models["fixer"]
    assert planner.scripted and fixer.scripted

    first = planner.complete(HELLO, TOOLS, role="planner")
    assert first.content == "look first"
    assert first.tool_calls[0].name == "read_file"
    assert first.tool_calls[0].arguments == {"path": "app.py"}
    assert first.stop_reason == "tool_use"
    assert (first.usage.input_tokens, first.usage.output_tokens) == (120, 30)
    assert first.model == f"scripted:{script}"
    assert fixer.complete(HELLO, TOOLS, role="fixer").content == "patched"
    assert planner.complete(HELLO, TOOLS, role="planner").stop_reason == "end_turn"

    with pytest.raises(ModelScriptError, match=r"role 'planner' ran out of turns: turn 3"):
        planner.complete(HELLO, TOOLS, role="planner")


def test_sub_agents_of_one_role_share_the_queue(tmp_path: Path) -> None:
    script = write_script(tmp_path / "s.json", {"localizer": [{"content": "a"}, {"content": "b"}]})
    models = make_models(
        {"planner": f"scripted:{script}", "localizer": f"scripted:{script}"}, settings()
    )
    # The planner model starting a localizer sub-agent uses the localizer's queue.
    assert models["localizer"].complete(HELLO, [], role="localizer").content == "a"
    assert models["planner"].complete(HELLO, [], role="localizer").content == "b"


def test_malformed_arguments_in_a_script_replay_as_a_malformed_call(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "s.json",
        {"fixer": [{"tool_calls": [{"name": "edit_file", "arguments": '{"path": "a.py",'}]}]},
    )
    call = make_model(f"scripted:{script}", settings(), role="fixer").complete(
        HELLO, TOOLS, role="fixer"
    )
    assert call.tool_calls[0].arguments is None
    assert call.tool_calls[0].raw_arguments == '{"path": "a.py",'
    assert call.tool_calls[0].id == "fixer-1-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"bad\.json: not valid JSON \(line 1"),
        ("[]", r"expected an object"),
        ('{"version": 2, "roles": {}}', r"version must be 1, got 2"),
        ('{"version": 1, "roles": []}', r"'roles' must be an object"),
        ('{"version": 1, "roles": {"fixer": {}}}', r"role 'fixer': expected a list"),
        ('{"version": 1, "roles": {"fixer": [{"contnet": "x"}]}}', r"turn 1: unknown key"),
        (
            '{"version": 1, "roles": {"fixer": [{}, {"tool_calls": [{"arguments": {}}]}]}}',
            r"role 'fixer' turn 2 tool call 1: 'name' must be a non-empty string",
        ),
        (
            '{"version": 1, "roles": {"fixer": [{"usage": {"input_tokens": -1}}]}}',
            r"usage.input_tokens must be a non-negative integer",
        ),
    ],
)
def test_malformed_scripts_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ModelScriptError, match=message) as caught:
        make_model(f"scripted:{path}", settings(), role="fixer")
    assert "\n" not in str(caught.value)


def test_missing_script_and_role_without_turns(tmp_path: Path) -> None:
    with pytest.raises(ModelScriptError, match="no such script file"):
        make_model(f"scripted:{tmp_path / 'nope.json'}", settings(), role="planner")
    script = write_script(tmp_path / "s.json", {"fixer": [{"content": "x"}]})
    model = make_model(f"scripted:{script}", settings(), role="reviewer")
    with pytest.raises(
        ModelScriptError, match=r"no turns for role 'reviewer' \(the script has: fixer\)"
    ):
        model.complete(HELLO, [], role="reviewer")


def test_a_recorded_trajectory_replays_as_a_script(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "s.json",
        {
            "planner": [
                {"tool_calls": [{"id": "p1", "name": "read_file", "arguments": {"path": "x"}}]},
                {"content": "all done"},
            ],
            "fixer": [{"tool_calls": [{"id": "f1", "name": "edit_file", "arguments": "{oops"}]}],
        },
    )
    models = make_models(
        {"planner": f"scripted:{script}", "fixer": f"scripted:{script}"}, settings()
    )
    trajectory = tmp_path / "run" / "trajectory.jsonl"
    with TrajectoryWriter(trajectory) as writer:
        for role, n in (("planner", 1), ("fixer", 1), ("planner", 1)):
            for _ in range(n):
                reply = models[role].complete(HELLO, TOOLS, role=role)
                writer.model_step(
                    role=role, model=reply.model, messages=HELLO, reply=reply, elapsed_s=0.01
                )
                writer.tool_step(
                    role=role,
                    model=reply.model,
                    tool="read_file",
                    arguments={},
                    result="ok",
                    elapsed_s=0.0,
                )
    replay = make_model(f"scripted:{trajectory}", settings(), role="planner")
    first = replay.complete(HELLO, TOOLS, role="planner")
    assert first.tool_calls[0].arguments == {"path": "x"} and first.tool_calls[0].id == "p1"
    fixed = replay.complete(HELLO, TOOLS, role="fixer").tool_calls[0]
    assert (fixed.arguments, fixed.raw_arguments, fixed.id) == (None, "{oops", "f1")
    assert replay.complete(HELLO, TOOLS, role="planner").content == "all done"
    doc = script_from_trajectory(trajectory)
    assert [len(doc["roles"][r]) for r in ("planner", "fixer")] == [2, 1]


def test_spec_parsing_names_the_accepted_providers() -> None:
    assert parse_spec("openai:gpt-4.1-mini") == ("openai", "gpt-4.1-mini")
    assert parse_spec("openai-compatible:llama3@http://127.0.0.1:11434/v1") == (
        "openai-compatible",
        "llama3@http://127.0.0.1:11434/v1",
    )
    with pytest.raises(
        UsageError, match=r"unknown model provider 'gemini'.*openai:MODEL.*scripted:FILE"
    ):
        parse_spec("gemini:pro")
    with pytest.raises(UsageError, match="is not PROVIDER:MODEL"):
        parse_spec("gpt-4.1")


def test_missing_keys_name_the_variable_and_never_leak_one() -> None:
    with pytest.raises(SettingsError, match=r"^OPENAI_API_KEY is not set: role reviewer uses"):
        make_model("openai:gpt-4.1-mini", settings(), role="reviewer")
    with pytest.raises(SettingsError, match=r"^ANTHROPIC_API_KEY is not set"):
        make_model("anthropic:claude-sonnet-4-5", settings(), role="planner")
    with pytest.raises(SettingsError, match="OPENAI_COMPATIBLE_BASE_URL"):
        make_model("openai-compatible:llama3", settings(), role="planner")
    model = make_model(
        "anthropic:claude-sonnet-4-5",
        settings(ANTHROPIC_API_KEY="sk-ant-secret-123456789012345"),
        role="planner",
    )
    assert "secret" not in repr(model) and "secret" not in repr(vars(model))


def test_model_flags_set_one_role_or_all() -> None:
    base = settings().models()
    specs = resolve_model_specs(base, ["scripted:demo.json", "fixer=openai:gpt-4.1"])
    assert specs["planner"] == specs["reviewer"] == "scripted:demo.json"
    assert specs["fixer"] == "openai:gpt-4.1"
    with pytest.raises(UsageError, match="unknown role 'fixxer'"):
        resolve_model_specs(base, ["fixxer=openai:gpt-4.1"])
    with pytest.raises(UsageError, match="unknown model provider"):
        resolve_model_specs(base, ["planner=foo:bar"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "roles",
                    "fixer",
                    "content",
                    "tool_calls",
                    "usage",
                    "name",
                    "id",
                    "arguments",
                    "input_tokens",
                    "stop_reason",
                    "kind",
                    "role",
                    "reply",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings_(max_examples=200, deadline=None)
@given(doc=json_values, as_trajectory=st.booleans())
def test_any_json_is_a_script_or_a_one_line_script_error(
    tmp_path_factory: pytest.TempPathFactory, doc: object, as_trajectory: bool
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "s.json"
    if as_trajectory:
        doc = {"kind": "model", "role": "fixer", "reply": doc, "input_tokens": doc}
    path.write_text(json.dumps(doc))
    try:
        model = make_model(f"scripted:{path}", settings(), role="fixer")
    except ModelScriptError as error:
        assert "\n" not in str(error)
        return
    try:
        reply = model.complete(HELLO, TOOLS, role="fixer")
    except ModelScriptError:
        return
    assert isinstance(reply.content, str)
    assert all(isinstance(c.name, str) and c.name for c in reply.tool_calls)
