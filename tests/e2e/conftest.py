"""End-to-end fixtures: one fake GitHub hosting the demo sample as several repositories, a real
redis-server, real `python -m bot worker` processes running the default handler
(bot.pipeline.run_job) with the scripted model, and the real web app receiving signed webhooks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from bot.demo import sentry_event, write_demo
from bot.settings import DEFAULT_MODELS, load_settings
from bot.state import JobStore
from bot.web import create_app
from tests.intake.conftest import (
    GITHUB_SECRET,
    SENTRY_SECRET,
    Workers,
    dumps,
    send_github,
    send_sentry,
    wait_for,
)
from tests.support.fake_github import FakeGitHub, fake_github

INSTALLATION = 1
# Repository -> extra lines for its .github/selfheal.yml and fake-GitHub settings.
REPOS: dict[str, dict[str, Any]] = {
    # auto-merge on; the repo allows native auto-merge and requires CI
    "acme/shop": {
        "yaml": "policy:\n  auto_merge: true\n",
        "allow_auto_merge": True,
        "required_checks": ["ci"],
    },
    "acme/shop-pr": {"yaml": ""},  # shadow mode: an open PR
    "acme/shop-forbidden": {
        "yaml": "policy:\n  auto_merge: true\n  forbidden_paths: ['shop/**']\n"
    },
    "acme/shop-bad": {"yaml": "policy:\n  auto_merge: maybe\n"},
    # auto-merge on, but the repo does not allow native auto-merge: REST merge
    "acme/shop-rest": {"yaml": "policy:\n  auto_merge: true\n"},
    # auto-merge on, no native auto-merge, and CI slower than the job's wait for checks:
    # the merge waits for the check suite webhook.
    "acme/shop-late": {"yaml": "policy:\n  auto_merge: true\n", "required_checks": ["ci"]},
    "acme/shop-ci": {"yaml": ""},  # CI failures on the default branch
    "acme/shop-issue": {"yaml": ""},  # issues labelled for the bot
}
# Mapped to a Sentry project but not installed on GitHub: the job fails with a reason.
MISSING_REPO = "acme/ghost"


@dataclass
class Stack:
    gh: FakeGitHub
    client: TestClient
    store: JobStore
    workers: Workers
    tmp: Path

    def sentry(self, repo: str, issue_id: str, event_id: str) -> str:
        """Send the demo's Sentry alert for `repo` (its project has the repo's name)."""
        payload = sentry_event()
        event = payload["data"]["event"]
        event["issue_id"], event["event_id"] = issue_id, event_id
        project = repo.split("/")[1]
        event["url"] = f"https://sentry.io/api/0/projects/acme/{project}/events/{event_id}/"
        response = send_sentry(self.client, "event_alert", dumps(payload))
        assert response.status_code == 202, response.text
        return str(response.json()["job"])

    def github(self, event: str, payload: dict[str, Any]) -> Any:
        return send_github(self.client, event, json.dumps(payload).encode())

    def finished(self, job_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait for the job to end (a deadline generous enough for a loaded 2-core machine)."""

        def done() -> Any:
            record = self.store.get(job_id)
            return record if record and record.state in ("done", "failed", "quarantined") else None

        record = wait_for(done, timeout, f"job {job_id} to finish\n{self.workers.logs()[-4000:]}")
        assert record.outcome is not None
        return {"state": record.state, **record.outcome}


def _sample_files(root: Path) -> dict[str, str]:
    sample = write_demo(root / "demo")
    names = subprocess.run(
        ["git", "ls-files"], cwd=sample.repo, capture_output=True, text=True, check=True
    ).stdout.split()
    return {name: (sample.repo / name).read_text() for name in names}


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    flush = redis.Redis.from_url(redis_url)
    flush.flushdb()
    flush.close()
    files = _sample_files(tmp)
    script = write_demo(tmp / "script").script
    with fake_github(tmp / "github") as gh:
        for repo, spec in REPOS.items():
            gh.add_repo(
                repo,
                {
                    **files,
                    ".github/selfheal.yml": files[".github/selfheal.yml"] + spec["yaml"],
                },
                INSTALLATION,
                allow_auto_merge=bool(spec.get("allow_auto_merge")),
                required_checks=spec.get("required_checks"),
                permissions={"alice": "admin", "mallory": "read"},
            )
        env = {
            "REDIS_URL": redis_url,
            "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
            "SENTRY_CLIENT_SECRET": SENTRY_SECRET,
            "SENTRY_PROJECT_REPOS": ",".join(
                f"acme/{r.split('/')[1]}={r}" for r in [*REPOS, MISSING_REPO]
            ),
            "GITHUB_APP_ID": str(gh.app_id),
            "GITHUB_PRIVATE_KEY": gh.private_key,
            "GITHUB_API_URL": gh.api_url,
            "GITHUB_APP_SLUG": gh.app_slug,
            "GITHUB_WRITE_INTERVAL_S": "0",
            "SELFHEAL_MODELS": ",".join(f"{role}=scripted:{script}" for role in DEFAULT_MODELS),
            "SELFHEAL_SANDBOX_RO_PATHS": ",".join(sorted({sys.prefix, sys.base_prefix})),
            "SELFHEAL_CACHE_DIR": str(tmp / "cache"),
            "SELFHEAL_ARTIFACTS_DIR": str(tmp / "artifacts"),
            "SELFHEAL_FINGERPRINT_COOLDOWN_SECONDS": "0",
            "SELFHEAL_CHECKS_WAIT_S": "20",
            "SELFHEAL_CHECKS_SETTLE_S": "0",
            "SELFHEAL_CHECKS_POLL_S": "0.2",
        }
        workers = Workers(env, tmp)
        workers.env.pop("SELFHEAL_JOB_HANDLER", None)  # the default handler: the pipeline
        for _ in range(3):
            workers.start()
        store = JobStore(redis_url)
        try:
            with TestClient(create_app(load_settings(env, env_file=None))) as client:
                yield Stack(gh, client, store, workers, tmp)
        finally:
            workers.stop()
            store.client.close()
