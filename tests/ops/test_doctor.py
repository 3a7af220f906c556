"""`selfheal doctor` against real parts: redis-server, bwrap, a local GitHub/OpenAI/Anthropic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.doctor import run_checks
from tests.ops.fake_vendors import Vendors

ROOT = Path(__file__).resolve().parents[2]


def healthy_env(vendors: Vendors, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "GITHUB_API_URL": vendors.github_api,
        "GITHUB_APP_ID": str(vendors.app_id),
        "GITHUB_PRIVATE_KEY": vendors.private_key.replace("\n", "\\n"),
        "GITHUB_WEBHOOK_SECRET": "e3b0c44298fc1c149afbf4c8996fb924",
        "OPENAI_API_KEY": vendors.openai_key,
        "OPENAI_BASE_URL": f"{vendors.base}/openai/v1",
        "ANTHROPIC_API_KEY": vendors.anthropic_key,
        "ANTHROPIC_BASE_URL": f"{vendors.base}/anthropic",
        "SELFHEAL_PUBLIC_URL": "https://selfheal.acme.test",
        "SELFHEAL_ADMIN_TOKEN": "a" * 32,
        "SELFHEAL_CACHE_DIR": str(tmp_path / "cache"),
        "SELFHEAL_MIN_FREE_DISK_GB": "0.01",
    }


def doctor_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": str(cwd), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", "doctor", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def by_name(checks: list) -> dict[str, object]:
    return {c.name: c for c in checks}


def test_a_healthy_installation_passes(vendors: Vendors, redis_url: str, tmp_path: Path) -> None:
    result = doctor_cli(healthy_env(vendors, redis_url, tmp_path), tmp_path, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["redis"]["status"] == "ok"
    # The test's redis-server runs without AOF: a warning, not a failure.
    assert checks["redis persistence"]["status"] == "warn"
    assert checks["github app"]["detail"] == "signed in as App selfheal-acme"
    assert checks["openai key"]["status"] == "ok" and checks["anthropic key"]["status"] == "ok"
    assert checks["sandbox"]["detail"] == "bwrap runs a command isolated"
    assert checks["disk"]["status"] == "ok"
    # The App check really signed a JWT and called GET /app.
    assert any(path == "/github/app" for _, path, _ in vendors.requests)


def test_each_broken_part_is_named_with_its_fix(
    vendors: Vendors, redis_url: str, tmp_path: Path
) -> None:
    env = healthy_env(vendors, redis_url, tmp_path)
    env.update(
        {
            "GITHUB_APP_ID": "999",  # the key belongs to another App
            "OPENAI_API_KEY": "sk-revoked-" + "x" * 30,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "SELFHEAL_MIN_FREE_DISK_GB": "1000000",
            "PAGERDUTY_SERVICE_REPOS": "PABC123=acme/billing",
        }
    )
    checks = by_name(run_checks(env))
    assert checks["github app"].status == "fail"
    assert "GET /app answered 401" in checks["github app"].detail
    assert checks["openai key"].status == "fail" and "401" in checks["openai key"].detail
    assert "sk-revoked" not in checks["openai key"].detail
    assert checks["anthropic key"].status == "ok"
    assert checks["redis"].status == "fail" and "REDIS_URL" in checks["redis"].fix
    assert checks["disk"].status == "fail" and "SELFHEAL_CACHE_DIR" in checks["disk"].fix
    assert checks["pagerduty webhook secret"].status == "fail"


def test_unconfigured_machine_is_told_what_to_set(tmp_path: Path) -> None:
    result = doctor_cli({"REDIS_URL": "redis://127.0.0.1:1/0"}, tmp_path)
    assert result.returncode == 1
    out = result.stdout
    for text in (
        "[FAIL] github app: GITHUB_APP_ID is not set",
        "/setup",
        "GITHUB_WEBHOOK_SECRET",
        "OPENAI_API_KEY is not set",
        "ANTHROPIC_API_KEY is not set",
        "SELFHEAL_ADMIN_TOKEN",
        "check(s) failed",
    ):
        assert text in out, out
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_one_clear_failure(tmp_path: Path) -> None:
    result = doctor_cli({"GITHUB_APP_ID": "twelve"}, tmp_path)
    assert result.returncode == 1
    assert "[FAIL] settings: GITHUB_APP_ID: invalid value (expected an integer)" in result.stdout
