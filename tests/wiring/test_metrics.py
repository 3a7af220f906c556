"""The counters of bot.metrics move with real work (a scripted fix job: model calls, sandboxed
commands, a decision; a command stopped by a limit) and show in the web app's `/metrics`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prometheus_client import generate_latest
from starlette.testclient import TestClient

from bot import __version__
from bot.demo import DemoSample
from bot.metrics import REGISTRY
from bot.sandbox import Limits, make_sandbox
from bot.settings import Settings
from bot.web import create_app
from tests.test_cli_fix import _fix


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_fix_job_moves_model_sandbox_and_decision_counters(
    settings: Settings, sample: DemoSample, tmp_path: Path
) -> None:
    script = f"scripted:{Path(sample.script).name}"
    before = {
        "decisions": value("selfheal_decisions_total", action="pr"),
        "calls": value("selfheal_model_calls_total", role="fixer", model=script, outcome="ok"),
        "runs": sum(
            value("selfheal_sandbox_runs_total", backend="bwrap", outcome=outcome)
            for outcome in ("ok", "failed", "limit")
        ),
    }
    code, out, err = _fix(sample, "--json", "--out", str(tmp_path / "art"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["decision"]["action"] == "pr"
    assert value("selfheal_decisions_total", action="pr") == before["decisions"] + 1
    fixer_calls = value("selfheal_model_calls_total", role="fixer", model=script, outcome="ok")
    assert fixer_calls > before["calls"]
    runs = sum(
        value("selfheal_sandbox_runs_total", backend="bwrap", outcome=outcome)
        for outcome in ("ok", "failed", "limit")
    )
    # The reproduction fails before the fix and passes after: at least two sandboxed runs.
    assert runs >= before["runs"] + 2
    assert value("selfheal_sandbox_runs_total", backend="bwrap", outcome="failed") > 0

    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    assert (
        f'selfheal_decisions_total{{action="pr"}} {value("selfheal_decisions_total", action="pr")}'
        in text
    )
    assert f'selfheal_model_calls_total{{model="{script}",outcome="ok",role="fixer"}}' in text
    assert 'selfheal_model_tokens_total{direction="input",model=' in text
    assert "selfheal_model_cost_usd_total{" in text
    assert 'selfheal_sandbox_runs_total{backend="bwrap",outcome="failed"}' in text
    assert (
        f'selfheal_build_info{{python="{sys.version.split()[0]}",version="{__version__}"}} 1.0'
        in text
    )


def test_a_command_stopped_by_its_time_limit_is_counted(tmp_path: Path) -> None:
    sandbox = make_sandbox("none", allow_unsafe=True)
    timeouts = value("selfheal_sandbox_limits_total", backend="none", limit="timeout")
    ok = value("selfheal_sandbox_runs_total", backend="none", outcome="ok")
    assert sandbox.run(["true"], workdir=tmp_path).ok
    stopped = sandbox.run(["sleep", "30"], workdir=tmp_path, limits=Limits(timeout_s=0.3))
    assert stopped.limit_hit == "timeout"
    assert value("selfheal_sandbox_runs_total", backend="none", outcome="ok") == ok + 1
    assert value("selfheal_sandbox_limits_total", backend="none", limit="timeout") == timeouts + 1
    text = generate_latest(REGISTRY).decode()
    assert 'selfheal_sandbox_limits_total{backend="none",limit="timeout"}' in text
