"""The dashboard mounted in the web app reads jobs from the real job store in Redis."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from bot.incident import Incident
from bot.jobs import JobRequest
from bot.ops.artifacts import fmt_usd
from bot.settings import Settings
from bot.state import JobStore, new_job_id
from bot.web import create_app
from tests.ops.jobdata import write_artifacts
from tests.wiring.conftest import ADMIN

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _admit(store: JobStore, repo: str, title: str) -> JobRequest:
    request = JobRequest(
        job_id=new_job_id(),
        kind="incident",
        source="sentry",
        repo=repo,
        fingerprint=f"fp-{title[:8]}",
        incident=Incident(source="sentry", title=title, repo=repo),
        delivery_id=f"sentry:event:{title[:8]}",
        created_at=time.time(),
    )
    assert store.admit(request, request.delivery_id).status == "queued"
    return request


def _run(store: JobStore, request: JobRequest, outcome: dict[str, object]) -> None:
    claim = store.claim(request.job_id, "w1", 30, 3, 100, "inst")
    assert claim.status == "claimed"
    assert store.finish(request.job_id, "w1", "done", outcome, 0, 3600)


def test_a_finished_job_in_redis_shows_on_the_list_and_its_page_reads_its_artifacts(
    settings: Settings, store: JobStore, tmp_path: Path
) -> None:
    shop = _admit(store, "acme/shop", "KeyError: 'gone' in Cart.total")
    folder = tmp_path / "elsewhere" / shop.job_id
    write_artifacts(folder, action="pr", title="KeyError: 'gone' in Cart.total", fingerprint="fp")
    _run(
        store,
        shop,
        {
            "ok": True,
            "summary": "opened a pull request",
            "decision": "pr",
            "url": "https://github.com/acme/shop/pull/7",
            "details": {"artifacts": str(folder), "cost_usd": 0.0875, "decision": "pr"},
        },
    )
    # A job whose outcome names no folder: its page reads SELFHEAL_ARTIFACTS_DIR/<id>.
    api = _admit(store, "acme/api", "TimeoutError in fetch_rates")
    write_artifacts(
        settings.selfheal_artifacts_dir / api.job_id,
        action="report",
        title="TimeoutError in fetch_rates",
        fingerprint="fp2",
    )
    _run(store, api, {"ok": True, "details": {"cost_usd": "not a number"}})
    waiting = _admit(store, "acme/api", "still queued")

    with TestClient(create_app(settings)) as client:
        # The dashboard is mounted, behind sign-in.
        assert client.get("/", follow_redirects=False).status_code == 303
        listing = client.get("/", headers=AUTH)
        assert listing.status_code == 200
        page = listing.text
        for job in (shop, api, waiting):
            assert f'data-job="{job.job_id}"' in page
        shop_row = page.split(f'data-job="{shop.job_id}"', 1)[1].split("</tr>", 1)[0]
        assert fmt_usd(0.0875) in shop_row and ">pr<" in shop_row
        only_pr = client.get("/", params={"decision": "pr"}, headers=AUTH).text
        assert shop.job_id in only_pr and api.job_id not in only_pr
        only_api = client.get("/", params={"repo": "acme/api"}, headers=AUTH).text
        assert api.job_id in only_api and waiting.job_id in only_api
        assert shop.job_id not in only_api

        job_page = client.get(f"/jobs/{shop.job_id}", headers=AUTH)
        assert job_page.status_code == 200
        assert "test_unknown_sku_is_reported" in job_page.text  # from its report.json
        assert "UnknownSku" in job_page.text  # from its patch.diff
        diff = client.get(f"/jobs/{shop.job_id}/files/patch.diff", headers=AUTH)
        assert diff.status_code == 200 and "UnknownSku" in diff.text
        fallback = client.get(f"/jobs/{api.job_id}", headers=AUTH)
        assert fallback.status_code == 200 and "TimeoutError in fetch_rates" in fallback.text
        assert "report.json is missing" in client.get(f"/jobs/{waiting.job_id}", headers=AUTH).text
        assert client.get("/jobs/no-such-job", headers=AUTH).status_code == 404
        # The webhook routes and /setup still answer beside the dashboard.
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/setup", headers=AUTH).status_code == 200


def test_the_store_source_maps_outcomes_defensively(settings: Settings, store: JobStore) -> None:
    from bot.web.jobsource import StoreJobSource

    source = StoreJobSource(store, settings)
    job = _admit(store, "acme/shop", "boom")
    queued = source.get_job(job.job_id)
    assert queued is not None
    assert (queued["state"], queued["decision"], queued["cost_usd"], queued["duration_s"]) == (
        "queued",
        None,
        None,
        None,
    )
    _run(store, job, {"ok": False, "decision": 3, "details": ["not", "a", "dict"]})
    ended = source.get_job(job.job_id)
    assert ended is not None
    assert ended["state"] == "done" and ended["decision"] is None and ended["cost_usd"] is None
    assert ended["duration_s"] is not None and 0 <= ended["duration_s"] < 60
    assert ended["artifacts_dir"] == str(settings.selfheal_artifacts_dir / job.job_id)
    assert source.get_job("x" * 500) is None
