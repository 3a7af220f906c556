"""`/selfheal stop`: a queued job for the issue ends without touching the repository."""

from __future__ import annotations

import time
from pathlib import Path

from bot.jobrun import JobRunner, QueueHandlers, run_job
from bot.jobs import GitHubEvent, JobRequest
from bot.settings import load_settings
from bot.state import JobStore
from tests.support.fake_github import fake_github


def test_stop_cancels_the_queued_job_for_the_issue(redis_url: str, tmp_path: Path) -> None:
    with fake_github(tmp_path) as gh:
        gh.add_repo("acme/stop", {"app.py": "print('hi')\n"}, 1)
        settings = load_settings(
            {
                "REDIS_URL": redis_url,
                "GITHUB_APP_ID": str(gh.app_id),
                "GITHUB_PRIVATE_KEY": gh.private_key,
                "GITHUB_API_URL": gh.api_url,
                "GITHUB_WRITE_INTERVAL_S": "0",
            },
            env_file=None,
        )
        store = JobStore(redis_url)
        job = JobRequest(
            job_id=f"stop{time.time_ns()}",
            kind="issue",
            source="github",
            repo="acme/stop",
            fingerprint=f"stop-test-{time.time_ns()}",
            installation_id="1",
            github=GitHubEvent(event="issues", action="labeled", number=3, title="Crash"),
            created_at=time.time(),
        )
        assert store.admit(job).status == "queued"
        handlers = QueueHandlers(JobRunner(job, settings, store))
        reply = handlers.cancel("acme/stop", 3, "alice")
        assert job.job_id in reply
        assert "no queued or running job" in handlers.cancel("acme/stop", 4, "alice")
        calls_before = len(gh.calls)
        outcome = run_job(job, settings)
        assert outcome.ok and "cancelled" in outcome.summary
        assert len(gh.calls) == calls_before  # nothing cloned, nothing written
        store.client.close()
