"""The one-click App setup: manifest form, state checks, code exchange, env file written 0600."""

from __future__ import annotations

import html
import json
import re
import stat
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.ops import create_ops_app
from bot.ops.setup_flow import SetupFlow, write_env_file
from bot.settings import Settings, load_settings
from tests.ops.fake_vendors import Vendors

ROOT = Path(__file__).resolve().parents[2]


def make_client(vendors: Vendors, env_file: Path, **extra: str) -> tuple[TestClient, SetupFlow]:
    settings = load_settings(
        environ={
            "GITHUB_API_URL": vendors.github_api,
            "SELFHEAL_PUBLIC_URL": "https://selfheal.acme.test",
            "SELFHEAL_ENV_FILE": str(env_file),
            **extra,
        }
    )
    flow = SetupFlow(settings, manifest_path=ROOT / "app.yml")
    app = create_ops_app(settings, setup_flow=flow)
    return TestClient(app, base_url="https://selfheal.acme.test"), flow


def start(client: TestClient, query: str = "") -> tuple[str, dict[str, object], str]:
    """Open /setup; return the form action, the manifest posted, and the state."""
    page = client.get(f"/setup{query}")
    assert page.status_code == 200, page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text)[1])
    manifest = json.loads(
        html.unescape(re.search(r'name="manifest" value="([^"]*)"', page.text)[1])
    )
    state = re.search(r"state=([A-Za-z0-9_\-]+)", action)[1]
    return action, manifest, state


def test_setup_creates_the_app_and_writes_credentials(vendors: Vendors, tmp_path: Path) -> None:
    env_file = tmp_path / "conf" / ".env"
    env_file.parent.mkdir()
    env_file.write_text("REDIS_URL=redis://redis:6379/0\nGITHUB_APP_ID=1\n")
    client, _ = make_client(vendors, env_file)
    action, manifest, state = start(client)

    # The web host comes from GITHUB_API_URL (api.github.com -> github.com, HOST/api/v3 -> HOST).
    assert action.startswith(f"{vendors.base}/github/settings/apps/new?state=")
    assert manifest["url"] == "https://selfheal.acme.test"
    assert manifest["hook_attributes"] == {
        "url": "https://selfheal.acme.test/webhooks/github",
        "active": True,
    }
    assert manifest["redirect_url"] == "https://selfheal.acme.test/setup/callback"
    assert "workflows" not in manifest["default_permissions"]

    vendors.codes.add("a1b2c3d4e5")  # GitHub issues a code and redirects the browser back
    done = client.get(f"/setup/callback?code=a1b2c3d4e5&state={state}")
    assert done.status_code == 200, done.text
    assert "https://github.com/apps/selfheal-acme/installations/new" in done.text
    assert vendors.requests[-1][:2] == ("POST", "/github/app-manifests/a1b2c3d4e5/conversions")

    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    assert "REDIS_URL=redis://redis:6379/0" in text  # other settings kept
    assert text.count("GITHUB_APP_ID=") == 1
    settings = Settings(_env_file=str(env_file))  # type: ignore[call-arg]
    assert settings.github_app_id == vendors.app_id
    assert settings.private_key() == vendors.private_key
    assert settings.github_webhook_secret is not None
    assert (
        settings.github_webhook_secret.get_secret_value() == vendors.conversion()["webhook_secret"]
    )
    assert settings.github_app_slug == "selfheal-acme"
    assert settings.github_client_id == "Iv23liAbCdEfGhIjKlMn"

    # Setup is over: the page and a replay of the same link are both refused.
    assert client.get("/setup").status_code == 404
    replay = client.get(f"/setup/callback?code=a1b2c3d4e5&state={state}")
    assert replay.status_code == 403
    assert "already used" in replay.text


def test_organization_form_and_ghes_host(vendors: Vendors, tmp_path: Path) -> None:
    client, _ = make_client(vendors, tmp_path / ".env")
    action, _, _ = start(client, "?org=acme-corp")
    assert action.startswith(f"{vendors.github_api}/organizations/acme-corp/settings/apps/new?")
    assert client.get("/setup?org=../../evil").status_code == 400
    for api, web in [
        ("https://ghe.acme.test/api/v3", "https://ghe.acme.test"),
        ("https://api.github.com", "https://github.com"),
    ]:
        settings = load_settings(environ={"GITHUB_API_URL": api})
        page = TestClient(create_ops_app(settings)).get("/setup")
        assert f'action="{web}/settings/apps/new?state=' in page.text


@pytest.mark.parametrize("case", ["foreign_state", "no_cookie", "expired", "unknown_code"])
def test_callback_refuses_what_it_did_not_issue(
    vendors: Vendors, tmp_path: Path, case: str
) -> None:
    env_file = tmp_path / ".env"
    client, flow = make_client(vendors, env_file)
    _, _, state = start(client)
    vendors.codes.add("c0de")
    if case == "foreign_state":
        url = "/setup/callback?code=c0de&state=forged-by-someone-else"
    elif case == "no_cookie":
        client.cookies.clear()
        url = f"/setup/callback?code=c0de&state={state}"
    elif case == "expired":
        flow.clock = lambda: 10**12
        url = f"/setup/callback?code=c0de&state={state}"
    else:
        url = f"/setup/callback?code=not-issued-by-github&state={state}"
    response = client.get(url)
    assert 400 <= response.status_code < 500
    assert "Start again from /setup" in response.text
    assert not env_file.exists()
    vendors.codes.discard("c0de")


def test_setup_is_hidden_once_configured(vendors: Vendors, tmp_path: Path) -> None:
    client, _ = make_client(
        vendors, tmp_path / ".env", GITHUB_APP_ID="5", GITHUB_PRIVATE_KEY="x" * 40
    )
    assert client.get("/setup").status_code == 404
    assert client.get("/setup/callback?code=a&state=b").status_code == 403


def test_env_file_quotes_values_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# my settings\nexport SENTRY_DSN=https://k@o1.ingest.sentry.io/2\n")
    write_env_file(path, {"GITHUB_PRIVATE_KEY": 'line1\nline2 "quoted"', "SENTRY_DSN": "x"})
    text = path.read_text()
    assert text.startswith("# my settings\nSENTRY_DSN=x\n")
    assert 'GITHUB_PRIVATE_KEY="line1\\nline2 \\"quoted\\""' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_setup_asks_for_the_admin_token_when_one_is_set(vendors: Vendors, tmp_path: Path) -> None:
    client, _ = make_client(vendors, tmp_path / ".env", SELFHEAL_ADMIN_TOKEN="t" * 32)
    client.follow_redirects = False
    response = client.get("/setup")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsetup"
    page = client.get("/setup", headers={"Authorization": "Bearer " + "t" * 32})
    assert page.status_code == 200 and "Create GitHub App" in page.text
