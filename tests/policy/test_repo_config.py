"""`.github/selfheal.yml`: defaults, times as YAML writes them, errors that name field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.repo_config import DEFAULT_FORBIDDEN_PATHS, RepoConfig, load_repo_config, parse_repo_config


def test_absent_and_empty_files_give_safe_defaults(tmp_path: Path) -> None:
    assert load_repo_config(tmp_path) == RepoConfig()
    config = parse_repo_config("")
    assert config.policy.auto_merge is False
    assert config.forbidden_paths == DEFAULT_FORBIDDEN_PATHS


def test_pipeline_fields_keep_their_names() -> None:
    config = parse_repo_config(
        "setup: [pip install -e .]\ntest: pytest -q\nenv: {A: '1'}\n"
        "models: {fixer: 'openai:gpt-4.1'}\nbudget: {max_steps: 10}\n"
        "candidates: 2\nflake_reruns: 5\n"
    )
    assert config.setup == ["pip install -e ."]
    assert config.test == "pytest -q"
    assert config.env == {"A": "1"}
    assert config.models == {"fixer": "openai:gpt-4.1"}
    assert config.budget.max_steps == 10
    assert (config.candidates, config.flake_reruns) == (2, 5)


@pytest.mark.parametrize(
    ("start", "expected"),
    [("9:30", "09:30"), ("'9:30'", "09:30"), ("09:30", "09:30"), ("0:00", "00:00")],
)
def test_times_are_read_as_written_quoted_or_not(start: str, expected: str) -> None:
    config = parse_repo_config(f"policy:\n  merge_windows:\n    - start: {start}\n")
    assert config.policy.merge_windows[0].start == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policy:\n  merge_windows:\n    - start: 25:00\n", "line 3: policy.merge_windows.0.start"),
        ("policy:\n  merge_windows:\n    - end: '12:75'\n", "line 3: policy.merge_windows.0.end"),
        ("policy:\n  merge_windows:\n    - tz: Mars/Olympus\n", "unknown time zone"),
        (
            "policy:\n  auto_merge: true\n  max_changed_lines: lots\n",
            "line 3: policy.max_changed_lines",
        ),
        ("policy:\n  auto_merge_sources: [email]\n", "line 2: policy.auto_merge_sources.0"),
        ("\n\npolcy:\n  auto_merge: true\n", "line 3: polcy: unknown field"),
        ("candidates: 9\n", "line 1: candidates"),
        ("policy: [\n", "line"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_errors_name_the_field_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_repo_config(text)
    assert message in str(info.value)
    assert str(info.value).startswith(".github/selfheal.yml:")


def test_oversized_file_is_refused() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        parse_repo_config("#" * 70_000)


def test_the_documented_full_example_is_valid() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_repo_config(example)
    assert config.policy.auto_merge and config.policy.merge_windows[0].start == "09:00"
    assert config.policy.merge_windows[0].tz == "Europe/Paris"
