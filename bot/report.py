"""The job's artifacts and its JSON document: report.md, report.json, patch.diff, test logs.

`report.json` is also what `selfheal fix --json` prints; its schema is a contract documented
in docs/fix-json.md (`version` changes only for breaking changes). May import:
bot.agent.budget (usage records), bot.incident, bot.evidence, bot.patch, bot.policy,
bot.messages (the decision record table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agent.budget import RoleUsage
from bot.evidence import Evidence
from bot.incident import Incident
from bot.messages import decision_table
from bot.patch import Patch
from bot.policy import Action, Decision

SCHEMA_VERSION = 1


@dataclass
class Report:
    """Everything a reviewer needs to judge a job without reading raw diffs or logs."""

    job_id: str
    incident: Incident
    decision: Decision
    evidence: Evidence
    patch: Patch
    models: dict[str, str]
    scripted: bool
    agent_status: str
    summary: str = ""
    root_cause: str = ""
    confidence: float | None = None
    agent_message: str = ""
    branch: str | None = None
    artifacts: Path | None = None
    by_role: dict[str, RoleUsage] = field(default_factory=dict)
    localization: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)  # warm, or the install error
    delivery: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return self.decision.action != Action.REPORT and self.branch is not None

    def cost(self) -> dict[str, Any]:
        roles = self.by_role.values()
        return {
            "usd": round(sum(r.usd for r in roles), 6),
            "input_tokens": sum(r.input_tokens for r in roles),
            "output_tokens": sum(r.output_tokens for r in roles),
            "by_role": {
                name: {
                    "calls": r.calls,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "usd": round(r.usd, 6),
                    "elapsed_s": round(r.elapsed_s, 3),
                }
                for name, r in self.by_role.items()
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "job_id": self.job_id,
            "incident": self.incident.to_dict(),
            "decision": self.decision.to_dict(),
            "evidence": self.evidence.to_dict(),
            "patch": self.patch.to_dict(),
            "branch": self.branch,
            "artifacts": str(self.artifacts) if self.artifacts else None,
            "cost": self.cost(),
            "models": dict(self.models),
            "scripted": self.scripted,
            "agent": {
                "status": self.agent_status,
                "summary": self.summary,
                "root_cause": self.root_cause,
                "confidence": self.confidence,
                "message": self.agent_message,
            },
            "localization": self.localization,
            "timing": {k: round(v, 3) for k, v in self.timing.items()},
            "environment": self.environment,
            "delivery": self.delivery,
        }


def render_markdown(report: Report, *, decision_record: bool = True) -> str:
    """The human report: root cause, change, red -> green, suite, rules, cost.

    The PR body and the check run show the decision record at their top themselves
    (`messages.pr_body`, `messages.check_summary`); what they embed is rendered without it.
    """
    inc, ev, dec = report.incident, report.evidence, report.decision
    lines = [f"# Selfheal report: {inc.title}", ""]
    if report.scripted:
        lines += ["> Models were **scripted** (replayed turns), not live.", ""]
    lines += [
        f"- **Incident**: {inc.error_type or 'error'}: {inc.error_message or inc.title}",
        f"- **Source**: {inc.source}" + (f" ({', '.join(inc.links)})" if inc.links else ""),
        f"- **Fingerprint**: `{inc.short_fingerprint}`",
        f"- **Decision**: **{dec.action.label}**"
        + (" (would have merged: auto-merge is off)" if dec.would_merge else ""),
        "",
        "## Root cause",
        "",
        report.root_cause or "_not determined_",
        "",
        "## What changed and why",
        "",
        report.summary or "_no summary_",
        "",
    ]
    if report.patch.files:
        lines += [
            f"Files: {', '.join(f'`{f}`' for f in report.patch.files)} "
            f"(+{report.patch.added} -{report.patch.removed})",
            "",
        ]
    rep = ev.reproduction
    lines += [
        "## Evidence",
        "",
        f"- Reproduction test: `{rep.test or 'none'}`",
        f"- Base commit: **{rep.before or 'not run'}**; with the patch: **{rep.after or 'not run'}**"
        + (" (flaky on the base commit)" if rep.flaky else ""),
    ]
    suite = ev.suite
    if suite.before or suite.after:

        def fmt(c: Any) -> str:
            return f"{c.passed} passed, {c.failed} failed, {c.errored} errors" if c else "not run"

        lines += [f"- Suite before: {fmt(suite.before)}; after: {fmt(suite.after)}"]
        if suite.new_failures:
            lines += [f"- New failures: {', '.join(f'`{t}`' for t in suite.new_failures)}"]
    for finding in ev.anti_masking:
        lines += [f"- Masking: {finding.kind} in `{finding.file}`: {finding.detail}"]
    if decision_record:
        lines += ["", "## Decision record", "", decision_table(dec)]
    cost = report.cost()
    lines += [
        "",
        "## Cost",
        "",
        "| role | model | calls | tokens in | tokens out | USD |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for role, rc in report.by_role.items():
        lines.append(
            f"| {role} | {report.models.get(role, '?')} | {rc.calls} | {rc.input_tokens} | "
            f"{rc.output_tokens} | {rc.usd:.4f} |"
        )
    lines += [
        f"| total | | | {cost['input_tokens']} | {cost['output_tokens']} | {cost['usd']:.4f} |",
        "",
    ]
    if report.agent_message:
        lines += [f"Agent: {report.agent_status}: {report.agent_message}", ""]
    return "\n".join(lines)


def write_artifacts(report: Report, out: Path, logs: dict[str, str]) -> None:
    """Write report.md, report.json, patch.diff and the given logs into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    report.artifacts = out
    (out / "patch.diff").write_text(report.patch.diff)
    for name, text in logs.items():
        (out / name).write_text(text)
    (out / "report.md").write_text(render_markdown(report))
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
