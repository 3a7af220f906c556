from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import load_settings


def test_reads_every_documented_variable_and_parses_mappings() -> None:
    settings = load_settings(
        {
            "GITHUB_APP_ID": "42",
            "SENTRY_PROJECT_REPOS": "acme/backend=acme/backend-api, acme/web=acme/web",
            "PAGERDUTY_SERVICE_REPOS": "PABC123=acme/backend-api",
            "REDIS_URL": "redis://example:6379/1",
            "SELFHEAL_UV_INDEX_ARGS": "--index-url 'https://pypi.example.com/my simple'",
        }
    )
    assert settings.selfheal_uv_index_args == ["--index-url", "https://pypi.example.com/my simple"]
    assert settings.github_app_id == 42
    assert settings.sentry_project_repos == {
        "acme/backend": "acme/backend-api",
        "acme/web": "acme/web",
    }
    assert settings.pagerduty_service_repos == {"PABC123": "acme/backend-api"}
    assert settings.redis_url == "redis://example:6379/1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_APP_ID": "abc"}, "GITHUB_APP_ID: invalid value (expected an integer)"),
        (
            {"SELFHEAL_SANDBOX": "podman"},
            "SELFHEAL_SANDBOX: invalid value (expected 'bwrap', 'docker' or 'none')",
        ),
        ({"PAGERDUTY_SERVICE_REPOS": "PABC123"}, "PAGERDUTY_SERVICE_REPOS: invalid value"),
        ({"SELFHEAL_UV_INDEX_ARGS": "--index-url 'open"}, "SELFHEAL_UV_INDEX_ARGS: invalid value"),
    ],
)
def test_invalid_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value).startswith(message)


def test_secrets_never_show_in_repr_or_errors() -> None:
    settings = load_settings({"OPENAI_API_KEY": "sk-live-abcdef123456", "GITHUB_APP_ID": "1"})
    assert "sk-live-abcdef123456" not in repr(settings)
    assert "sk-live-abcdef123456" not in str(settings.model_dump())
    with pytest.raises(SettingsError) as info:
        load_settings({"OPENAI_API_KEY": "sk-live-abcdef123456", "GITHUB_APP_ID": "nope"})
    assert "sk-live" not in str(info.value)


def test_private_key_from_path_and_unreadable_path(tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"
    pem.write_text("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n")
    assert "BEGIN RSA" in (load_settings({"GITHUB_PRIVATE_KEY_PATH": str(pem)}).private_key() or "")
    with pytest.raises(SettingsError, match="GITHUB_PRIVATE_KEY_PATH: cannot read"):
        load_settings({"GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "missing.pem")}).private_key()


def test_a_given_mapping_is_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHEAL_SANDBOX", "bogus")
    monkeypatch.setenv("GITHUB_APP_ID", "99")
    settings = load_settings({})
    assert settings.selfheal_sandbox == "bwrap"
    assert settings.github_app_id is None
    with pytest.raises(SettingsError, match="SELFHEAL_SANDBOX"):
        load_settings()


def test_env_file_is_read_when_no_mapping_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "GITHUB_APP_ID=7\nSENTRY_PROJECT_REPOS=a/b=c/d\nSELFHEAL_SANDBOX=docker\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_APP_ID", raising=False)
    monkeypatch.delenv("SENTRY_PROJECT_REPOS", raising=False)
    monkeypatch.setenv("SELFHEAL_SANDBOX", "none")
    settings = load_settings()
    assert settings.github_app_id == 7
    assert settings.sentry_project_repos == {"a/b": "c/d"}
    assert settings.selfheal_sandbox == "none"  # the process environment outranks `.env`
