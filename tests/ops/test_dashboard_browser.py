"""The dashboard in a real headless Chromium: sign in, filter, open a job, read its evidence.

Needs Debian's `chromium` (apt-get install chromium) and the Playwright Python package; no
browser is downloaded. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.ops import create_ops_app
from bot.ops.dashboard import ListJobSource
from bot.settings import load_settings
from tests.ops.serve import serve

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
ADMIN = "adm-" + "5e1fheal" * 5
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def test_operator_signs_in_filters_and_reads_a_job(page: Page, jobs: list[dict[str, Any]]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    settings = load_settings(environ={"SELFHEAL_ADMIN_TOKEN": ADMIN})
    with serve(create_ops_app(settings, ListJobSource(jobs))) as base:
        page.goto(f"{base}/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.fill("#token", "wrong-token")
        page.click("text=Sign in >> nth=-1")
        expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
        page.fill("#token", ADMIN)
        page.get_by_role("button", name="Sign in").click()

        rows = page.locator("#jobs tbody tr")
        expect(rows).to_have_count(4)
        expect(rows.first).to_contain_text("acme/shop")
        expect(rows.first).to_contain_text("$0.09")
        page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

        page.select_option("select[name=source]", "sentry")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(2)
        page.fill("input[name=repo]", "acme/billing")
        page.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("report")
        assert "repo=acme%2Fbilling" in page.url and "source=sentry" in page.url
        page.screenshot(path=str(SHOTS / "dashboard-filtered.png"), full_page=True)

        page.get_by_role("link", name="Clear").click()
        page.get_by_role("link", name="job-4f2a").click()
        expect(page.locator("#title")).to_have_text("KeyError: 'gone' in Cart.total")
        expect(page.locator("#decision")).to_have_text("pr")
        expect(page.locator("#reasons")).to_contain_text("7 lines changed; merge allows 5")
        added = page.locator("#diff .gi").filter(has_text="if price is None:")
        expect(added).to_be_visible()
        # Added lines are shown green on green: the colouring a reviewer relies on.
        assert added.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(218, 251, 225)"
        expect(page.locator("#before-log")).to_contain_text("KeyError: 'gone'")
        expect(page.locator("#after-log")).to_contain_text("48 passed")
        expect(page.locator("#timeline tbody tr")).to_have_count(8)
        expect(page.locator("#roles tbody tr").first).to_contain_text("fixer")
        page.screenshot(path=str(SHOTS / "job.png"), full_page=True)

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.goto(f"{base}/jobs/job-4f2a")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    for name in ("dashboard.png", "dashboard-filtered.png", "job.png"):
        assert (SHOTS / name).stat().st_size > 10_000
