"""The jobs dashboard over HTTP: access control, filters, the job page's evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from bot.ops import create_ops_app
from bot.ops.dashboard import ListJobSource
from bot.settings import load_settings
from tests.ops.fake_vendors import Vendors

ADMIN = "adm-" + "7f3c9a" * 6


def client_for(jobs: list[dict[str, Any]], token: str | None = ADMIN) -> TestClient:
    environ = {"SELFHEAL_ADMIN_TOKEN": token} if token else {}
    app = create_ops_app(load_settings(environ=environ), ListJobSource(jobs))
    return TestClient(app, follow_redirects=False)


def signed_in(jobs: list[dict[str, Any]]) -> TestClient:
    client = client_for(jobs)
    response = client.post("/login", data={"token": ADMIN, "next": "/"})
    assert response.status_code == 303
    return client


def test_pages_need_the_admin_token(jobs: list[dict[str, Any]]) -> None:
    client = client_for(jobs)
    redirect = client.get("/jobs/job-4f2a")
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/login?next=%2Fjobs%2Fjob-4f2a"
    wrong = client.post("/login", data={"token": "guess", "next": "/"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert client.get("/", headers={"Authorization": "Bearer guess"}).status_code == 401
    bearer = client.get("/", headers={"Authorization": f"Bearer {ADMIN}"})
    assert bearer.status_code == 200 and "job-4f2a" in bearer.text
    login = client.post("/login", data={"token": ADMIN, "next": "/jobs/job-4f2a"})
    assert login.status_code == 303 and login.headers["location"] == "/jobs/job-4f2a"
    cookie = login.cookies.get("selfheal_admin")
    assert cookie and ADMIN not in cookie  # the cookie never holds the token itself
    assert "httponly" in login.headers["set-cookie"].lower()
    assert client.get("/jobs/job-4f2a").status_code == 200
    client.post("/logout")
    assert client.get("/").status_code == 303


def test_open_redirects_are_refused(jobs: list[dict[str, Any]]) -> None:
    client = client_for(jobs)
    for target in ("https://evil.test/", "//evil.test/", "/\\evil.test"):
        response = client.post("/login", data={"token": ADMIN, "next": target})
        assert response.headers["location"] == "/"


def test_dashboard_is_closed_without_a_token(jobs: list[dict[str, Any]]) -> None:
    client = client_for(jobs, token=None)
    for path in ("/", "/jobs/job-4f2a", "/login"):
        response = client.get(path)
        assert response.status_code == 503
        assert "SELFHEAL_ADMIN_TOKEN" in response.text


def test_list_and_filters(jobs: list[dict[str, Any]]) -> None:
    client = signed_in(jobs)
    page = client.get("/").text
    # Newest first, with the columns an operator scans.
    assert page.index("job-4f2a") < page.index("job-77b1") < page.index("job-a1d9")
    assert "$0.09" in page and "5m 12s" in page and "acme/billing" in page
    only_billing = client.get("/", params={"repo": "acme/billing"}).text
    assert "job-9c03" in only_billing and "job-4f2a" not in only_billing
    merged = client.get("/", params={"decision": "merge", "source": "github"}).text
    assert "job-77b1" in merged and "job-4f2a" not in merged
    none = client.get("/", params={"state": "dead"}).text
    assert "No jobs match" in none
    hostile = client.get("/", params={"repo": "<script>alert(1)</script>", "limit": "x"})
    assert hostile.status_code == 200 and "<script>alert(1)" not in hostile.text


def test_job_page_shows_the_evidence(jobs: list[dict[str, Any]]) -> None:
    client = signed_in(jobs)
    page = client.get("/jobs/job-4f2a").text
    assert "KeyError: &#39;gone&#39; in Cart.total" in page
    assert "tests/test_cart.py::test_unknown_sku_is_reported" in page
    assert "7 lines changed; merge allows 5" in page  # the decision record
    assert '<span class="gi">+            if price is None:' in page  # highlighted diff
    assert "KeyError: &#39;gone&#39;" in page and "48 passed in 3.02s" in page  # before/after
    assert "apply_patch" in page and "run_tests" in page  # timeline of steps
    assert "$0.06" in page  # the fixer's cost in the per-role table
    raw = client.get("/jobs/job-4f2a/files/patch.diff")
    assert raw.status_code == 200 and raw.text.startswith("diff --git a/shop/cart.py")
    assert client.get("/jobs/job-4f2a/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/jobs/nope").status_code == 404
    running = client.get("/jobs/job-9c03")
    assert running.status_code == 200 and "No patch." in running.text


def test_broken_artifacts_are_reported_not_fatal(jobs: list[dict[str, Any]]) -> None:
    folder = Path(jobs[0]["artifacts_dir"])
    (folder / "report.json").write_text("{not json")
    with (folder / "trajectory.jsonl").open("a") as handle:
        handle.write("garbage line\n[1, 2]\n")
    (folder / "test-after.log").write_text("token ghs_" + "Z" * 40 + " in a log\n")
    (folder / "test-before.log").unlink()
    (folder / "test-before.log").symlink_to("/etc/passwd")
    client = signed_in(jobs)
    page = client.get("/jobs/job-4f2a")
    assert page.status_code == 200
    assert "report.json is not valid JSON" in page.text
    assert "2 line(s) unreadable" in page.text
    assert "ghs_ZZZZ" not in page.text and "[Redacted]" in page.text
    assert "root:x:0:0" not in page.text


@pytest.mark.parametrize("by_role", [True, False])
def test_cost_by_role_from_report_or_trajectory(jobs: list[dict[str, Any]], by_role: bool) -> None:
    folder = Path(jobs[0]["artifacts_dir"])
    if not by_role:
        report = json.loads((folder / "report.json").read_text())
        del report["cost"]["by_role"]
        (folder / "report.json").write_text(json.dumps(report))
    page = signed_in(jobs).get("/jobs/job-4f2a").text
    fixer_row = page[page.index('data-role="fixer"') :].split("</tr>")[0]
    assert "14,200" in fixer_row and "$0.06" in fixer_row


def test_guessing_the_token_is_throttled(jobs: list[dict[str, Any]]) -> None:
    client = client_for(jobs)
    codes = [client.post("/login", data={"token": f"guess-{i}"}).status_code for i in range(11)]
    assert codes == [401] * 10 + [429]
    # Even the right token waits out the window: guessing gains nothing.
    assert client.post("/login", data={"token": ADMIN}).status_code == 429


def test_list_refreshes_itself_while_jobs_run(jobs: list[dict[str, Any]]) -> None:
    client = signed_in(jobs)
    assert 'http-equiv="refresh"' in client.get("/").text
    assert 'http-equiv="refresh"' not in client.get("/", params={"state": "done"}).text


def github_client(vendors: Vendors, jobs: list[dict[str, Any]], users: str) -> TestClient:
    settings = load_settings(
        environ={
            "GITHUB_API_URL": vendors.github_api,
            "GITHUB_CLIENT_ID": vendors.client_id,
            "GITHUB_CLIENT_SECRET": vendors.client_secret,
            "SELFHEAL_ADMIN_USERS": users,
            "SELFHEAL_PUBLIC_URL": "https://selfheal.acme.test",
        }
    )
    app = create_ops_app(settings, ListJobSource(jobs))
    return TestClient(app, base_url="https://selfheal.acme.test", follow_redirects=False)


def github_sign_in(client: TestClient, vendors: Vendors, login: str) -> Any:
    start = client.get("/login/github", params={"next": "/jobs/job-77b1"})
    assert start.status_code == 303
    location = urlsplit(start.headers["location"])
    assert location.path == "/github/login/oauth/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [vendors.client_id]
    assert query["redirect_uri"] == ["https://selfheal.acme.test/login/github/callback"]
    vendors.oauth_codes["c0de-" + login] = login  # the user approves on GitHub
    return client.get(
        "/login/github/callback", params={"code": "c0de-" + login, "state": query["state"][0]}
    )


def test_github_sign_in_for_listed_admins(vendors: Vendors, jobs: list[dict[str, Any]]) -> None:
    client = github_client(vendors, jobs, "Octo-Admin, other")
    login_page = client.get("/login")
    assert "Sign in with GitHub" in login_page.text and 'id="token"' not in login_page.text
    done = github_sign_in(client, vendors, "octo-admin")
    assert done.status_code == 303 and done.headers["location"] == "/jobs/job-77b1"
    assert client.get("/jobs/job-77b1").status_code == 200
    # A session for a user later removed from the list stops working.
    cookie = client.cookies.get("selfheal_admin")
    later = github_client(vendors, jobs, "other")
    later.cookies.set("selfheal_admin", cookie)
    assert later.get("/").status_code == 303
    # A forged cookie for another login is refused.
    forged = cookie.replace("octo-admin", "other")
    later.cookies.set("selfheal_admin", forged)
    assert later.get("/").status_code == 303


def test_github_sign_in_refuses_others(vendors: Vendors, jobs: list[dict[str, Any]]) -> None:
    client = github_client(vendors, jobs, "octo-admin")
    refused = github_sign_in(client, vendors, "mallory")
    assert refused.status_code == 403 and "not listed in SELFHEAL_ADMIN_USERS" in refused.text
    assert client.get("/").status_code == 303
    replay = client.get("/login/github/callback", params={"code": "x", "state": "forged"})
    assert replay.status_code == 403
    start = client.get("/login/github")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    unknown_code = client.get("/login/github/callback", params={"code": "nope", "state": state})
    assert unknown_code.status_code == 400


def test_huge_logs_show_their_tail_and_hostile_text_is_escaped(
    jobs: list[dict[str, Any]],
) -> None:
    folder = Path(jobs[0]["artifacts_dir"])
    (folder / "test-before.log").write_text("noise line\n" * 100_000 + "E   KeyError: 'gone'\n")
    with (folder / "trajectory.jsonl").open("a") as handle:
        handle.write(json.dumps({"role": "fixer", "kind": "tool", "tool": "<script>x()</script>"}))
        handle.write("\n")
    page = signed_in(jobs).get("/jobs/job-4f2a").text
    assert "bytes not shown]" in page and "E   KeyError: &#39;gone&#39;" in page
    assert "<script>x()" not in page and "&lt;script&gt;x()" in page
