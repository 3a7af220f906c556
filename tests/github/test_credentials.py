"""git credentials through the environment: scoped to one origin, never in config or argv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.github.app import GitHubApp
from bot.github.credentials import git_auth_env
from tests.support.fake_github import FakeGitHub, fake_github


def test_the_header_is_sent_only_to_the_scoped_origin(
    gh: FakeGitHub, app: GitHubApp, tmp_path: Path
) -> None:
    with fake_github(tmp_path / "other") as other:
        other.add_repo("evil/sub", {"x": "y"})
        token = app.installation_token(1)
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            **git_auth_env(token, gh.clone_url("acme/shop")),
        }
        ok = subprocess.run(
            ["git", "clone", "-q", gh.clone_url("acme/shop"), str(tmp_path / "a")],
            env=env,
            capture_output=True,
            text=True,
        )
        assert ok.returncode == 0, ok.stderr
        refused = subprocess.run(
            ["git", "clone", "-q", other.clone_url("evil/sub"), str(tmp_path / "b")],
            env=env,
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0
        assert all("authorization" not in c.headers for c in other.calls)
        assert token not in (tmp_path / "a" / ".git" / "config").read_text()


def test_existing_git_config_entries_are_kept() -> None:
    base = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.askPass", "GIT_CONFIG_VALUE_0": ""}
    env = git_auth_env("ghs_abc", "https://github.com/acme/shop.git", base)
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert env["GIT_CONFIG_KEY_1"] == "http.https://github.com/.extraHeader"
    assert env["GIT_CONFIG_VALUE_1"].startswith("Authorization: Basic ")


@pytest.mark.parametrize(
    ("token", "url"),
    [
        ("", None),
        ("ghs_a\nb", None),
        ("ghs_a", "https://x-access-token:t@github.com/a/b"),
        ("ghs_a", "ssh://github.com/a"),
    ],
)
def test_bad_tokens_and_urls_are_refused(token: str, url: str | None) -> None:
    with pytest.raises(ValueError):
        git_auth_env(token, url)
