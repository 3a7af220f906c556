"""Which `.github/selfheal.yml` a job judges with: the default branch's, not the incident's commit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bot.demo import write_demo
from bot.jobrun import run_job
from bot.jobs import JobRequest
from bot.readers.detect import read_incident
from bot.settings import DEFAULT_MODELS, load_settings
from tests.support.fake_github import GIT_ENV, fake_github

REPO = "acme/shop-config"


def test_the_default_branchs_config_decides_not_the_incidents_commit(
    redis_url: str, tmp_path: Path
) -> None:
    sample = write_demo(tmp_path / "demo")
    names = subprocess.run(
        ["git", "ls-files"], cwd=sample.repo, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {name: (sample.repo / name).read_text() for name in names}
    with fake_github(tmp_path / "github") as gh:
        repo = gh.add_repo(REPO, files, 1)
        incident_ref = repo.sha("main")
        assert incident_ref is not None
        # After the incident's commit the default branch forbids automated changes to shop/.
        seed = gh.root / "seed" / REPO
        config = seed / ".github/selfheal.yml"
        config.write_text(config.read_text() + "policy:\n  forbidden_paths: ['shop/**']\n")
        env = {**GIT_ENV, "PATH": "/usr/bin:/bin"}
        for args in (
            ["commit", "-q", "-am", "forbid shop/"],
            ["push", "-q", str(repo.bare), "HEAD"],
        ):
            subprocess.run(["git", "-C", str(seed), *args], check=True, env=env)
        settings = load_settings(
            {
                "REDIS_URL": redis_url,
                "GITHUB_APP_ID": str(gh.app_id),
                "GITHUB_PRIVATE_KEY": gh.private_key,
                "GITHUB_API_URL": gh.api_url,
                "GITHUB_WRITE_INTERVAL_S": "0",
                "SELFHEAL_MODELS": ",".join(
                    f"{role}=scripted:{sample.script}" for role in DEFAULT_MODELS
                ),
                "SELFHEAL_SANDBOX_RO_PATHS": ",".join(sorted({sys.prefix, sys.base_prefix})),
                "SELFHEAL_CACHE_DIR": str(tmp_path / "cache"),
                "SELFHEAL_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
            },
            env_file=None,
        )
        incident = read_incident(sample.incident).with_changes(repo=REPO, ref=incident_ref)
        job = JobRequest(
            job_id=f"config{time.time_ns()}",
            kind="incident",
            source="sentry",
            repo=REPO,
            fingerprint=incident.fingerprint,
            installation_id="1",
            incident=incident,
            created_at=time.time(),
        )
        outcome = run_job(job, settings)
        assert outcome.ok, outcome
        assert outcome.decision == "report", outcome
        assert repo.pulls == {} and repo.sha(f"selfheal/{incident.short_fingerprint}") is None
