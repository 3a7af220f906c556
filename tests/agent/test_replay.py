"""`selfheal replay`: a recorded job re-runs from its trajectory with the scripted provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bot.agent.providers import ROLES
from bot.agent.team import AgentTask, run_team
from bot.localize import localize
from bot.sandbox import Sandbox
from bot.toolchain import TestPlan
from bot.workspace import Workspace
from tests.support.agent_samples import CONFKIT, Sample, team_script, write_script

Checkout = Callable[[Sample], Workspace]
ROOT = Path(__file__).resolve().parents[2]


def selfheal(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "SELFHEAL_SANDBOX": "none",
        "SELFHEAL_CACHE_DIR": str(tmp_path / "replay-cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )


def test_replay_reruns_the_recorded_job_and_validates_it(
    checkout: Checkout, sandbox: Sandbox, plan: TestPlan, tmp_path: Path
) -> None:
    ws = checkout(CONFKIT)
    spec = write_script(tmp_path / "team.json", team_script(CONFKIT))
    incident = CONFKIT.incident()
    recorded = tmp_path / "recorded" / "trajectory.jsonl"
    result = run_team(
        AgentTask(
            incident=incident,
            workspace=ws,
            sandbox=sandbox,
            plan=plan,
            localization=localize(incident, ws.path),
            models=dict.fromkeys(ROLES, spec),
            trajectory_path=recorded,
            repo=str(tmp_path / "origin-confkit"),
        )
    )
    assert result.status == "finished"
    original_diff = ws.diff()
    (tmp_path / "team.json").unlink()  # replay needs only the trajectory

    out = tmp_path / "replayed"
    proc = selfheal("replay", str(recorded), "--json", "--out", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["agent"]["status"] == "finished" and doc["agent"]["scripted"]
    assert doc["validated"] and doc["evidence"]["reproduction"]["before"] == "failed"
    assert doc["patch"]["files"] == ["src/confkit/loader.py", CONFKIT.repro_path]
    assert (out / "patch.diff").read_text() == original_diff
    assert "KeyError" in (out / "test-before.log").read_text()
    steps = [json.loads(x) for x in (out / "trajectory.jsonl").read_text().splitlines()]
    assert sum(1 for s in steps if s["kind"] == "model") == 15
    assert "| planner |" in (out / "costs.md").read_text()

    human = selfheal("replay", str(recorded), "--out", str(tmp_path / "again"), tmp_path=tmp_path)
    assert human.returncode == 0 and "Validated  yes" in human.stdout


def test_replay_rejects_files_that_are_not_team_trajectories(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text("hello\n")
    proc = selfheal("replay", str(bad), tmp_path=tmp_path)
    assert proc.returncode == 2 and "line 1 is not JSON" in proc.stderr
    nostart = tmp_path / "t.jsonl"
    nostart.write_text(json.dumps({"kind": "event", "role": "", "event": "x", "data": {}}) + "\n")
    proc = selfheal("replay", str(nostart), tmp_path=tmp_path)
    assert proc.returncode == 2 and "no start event" in proc.stderr
    proc = selfheal("replay", str(tmp_path / "missing.jsonl"), tmp_path=tmp_path)
    assert proc.returncode == 2 and "no such trajectory file" in proc.stderr
