"""App-level calls on the fake GitHub, parsed by githubkit's models: webhook deliveries
(list and redeliver), the manifest code conversion, the repo's installation."""

from __future__ import annotations

import pytest
from githubkit import GitHub
from githubkit.exception import RequestFailed

from bot.github.app import GitHubApp
from tests.github.conftest import REPO
from tests.support.fake_github import FakeGitHub


def test_failed_deliveries_are_listed_and_redelivered(gh: FakeGitHub, app: GitHubApp) -> None:
    gh.add_delivery("guid-ok", "OK")
    failed = gh.add_delivery("guid-failed", "Invalid HTTP Response: 502")
    listed = app.app_client.rest.apps.list_webhook_deliveries(per_page=100, status="failure")
    assert [d.guid for d in listed.parsed_data] == ["guid-failed"]
    assert app.app_client.rest.apps.redeliver_webhook_delivery(failed).status_code == 202
    assert gh.redelivered == [failed]


def test_app_routes_need_the_app_jwt(gh: FakeGitHub, app: GitHubApp) -> None:
    token = app.installation_token(1)
    with_token = GitHub(token, base_url=gh.api_url, auto_retry=False)
    with pytest.raises(RequestFailed) as info:
        with_token.rest.apps.list_webhook_deliveries()
    assert info.value.response.status_code == 401


def test_manifest_code_converts_once(gh: FakeGitHub) -> None:
    gh.add_manifest_code("code123")
    anonymous = GitHub(base_url=gh.api_url, auto_retry=False)
    created = anonymous.rest.apps.create_from_manifest("code123").parsed_data
    assert created.id == gh.app_id and created.pem == gh.private_key and created.webhook_secret
    with pytest.raises(RequestFailed) as info:  # a manifest code is single-use
        anonymous.rest.apps.create_from_manifest("code123")
    assert info.value.response.status_code == 404


def test_installation_is_found_for_a_repository(app: GitHubApp) -> None:
    assert app.installation_id_for(REPO) == 1


def test_deliveries_are_paginated_with_a_cursor_link(gh: FakeGitHub, app: GitHubApp) -> None:
    ids = [gh.add_delivery(f"guid-{i}", "Invalid HTTP Response: 502") for i in range(5)]
    pages = app.app_client.rest.paginate(
        app.app_client.rest.apps.list_webhook_deliveries, per_page=2, status="failure"
    )
    assert [d.id for d in pages] == list(reversed(ids))


def test_the_app_is_built_from_settings(gh: FakeGitHub) -> None:
    from bot.errors import SettingsError
    from bot.settings import load_settings

    settings = load_settings(
        {
            "GITHUB_APP_ID": str(gh.app_id),
            "GITHUB_PRIVATE_KEY": gh.private_key.replace("\n", "\\n"),
            "GITHUB_API_URL": gh.api_url,
            "GITHUB_WRITE_INTERVAL_S": "0",
        }
    )
    app = GitHubApp.from_settings(settings)
    assert app.installation_id_for(REPO) == 1 and app.installation_token(1) in gh.tokens
    with pytest.raises(SettingsError, match="GITHUB_APP_ID"):
        GitHubApp.from_settings(load_settings({}))
