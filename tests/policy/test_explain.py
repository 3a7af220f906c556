"""`selfheal policy explain`: the decision and every rule for a report.json and a config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.evidence import Evidence, Reproduction, Suite, SuiteCounts, evidence_from_dict
from bot.incident import Frame, Incident
from bot.patch import Patch
from bot.policy import Action, Decision
from bot.report import Report

INCIDENT = Incident(
    source="sentry",
    title="ZeroDivisionError",
    error_type="ZeroDivisionError",
    frames=(Frame("app/cart.py", 3, "total"),),
    repo="acme/shop",
    severity="error",
)


def report(agent_status: str = "finished", agent_message: str = "") -> dict[str, Any]:
    """A report.json document as a job writes it."""
    return Report(
        job_id="job-1",
        incident=INCIDENT,
        decision=Decision(Action.PR, ()),
        evidence=Evidence(
            reproduction=Reproduction("tests/test_cart.py::t", "failed", "passed"),
            suite=Suite("pytest", SuiteCounts(3, 1), SuiteCounts(4, 0)),
        ),
        patch=Patch(diff="", files=("app/cart.py",), added=2, removed=1),
        models={},
        scripted=True,
        agent_status=agent_status,
        agent_message=agent_message,
    ).to_dict()


def run(
    tmp_path: Path, *args: str, document: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document or report()))
    return subprocess.run(
        [sys.executable, "-m", "bot", "policy", "explain", "--evidence", str(path), *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )


def test_evidence_round_trips_through_its_dict() -> None:
    evidence = Evidence(
        reproduction=Reproduction("t", "failed", "passed", reruns=("failed", "failed")),
        suite=Suite("pytest", SuiteCounts(1, 2, 3, 4), None, ("x",), 1),
    )
    assert evidence_from_dict(evidence.to_dict()) == evidence


def test_defaults_show_shadow_mode_and_every_rule(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("decision: pr  (shadow mode")
    for rule in ("red_to_green", "forbidden_paths", "merge_window", "auto_merge_enabled"):
        assert rule in result.stdout
    assert "FAIL  auto_merge_enabled" in result.stdout


def test_a_config_that_allows_merging_merges(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yml"
    config.write_text("policy:\n  auto_merge: true\n")
    result = run(tmp_path, "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "merge"


def test_an_agent_that_did_not_finish_reports(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yml"
    config.write_text("policy:\n  auto_merge: true\n")
    failed = report("budget_exhausted", "the budget of 20 turns is spent")
    result = run(tmp_path, "--config", str(config), document=failed)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("decision: report")
    assert "FAIL  job_completed" in result.stdout
    assert "budget_exhausted: the budget of 20 turns is spent" in result.stdout


def test_an_invalid_config_explains_itself_and_reports(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yml"
    config.write_text("policy:\n  max_changed_lines: many\n")
    result = run(tmp_path, "--config", str(config))
    assert result.returncode == 0
    assert result.stdout.startswith("decision: report")
    assert "line 2: policy.max_changed_lines" in result.stdout


def test_a_missing_report_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "policy", "explain", "--evidence", str(tmp_path / "no.json")],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot read" in result.stderr
