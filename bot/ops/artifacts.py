"""Read a job's artifacts folder for the job page, and format the numbers the pages show.

The folder holds report.json, report.md, patch.diff, test-before.log, test-after.log and
trajectory.jsonl. Each file is read with a size cap (the head of a diff, the tail of a log),
symlinks are refused, secrets are redacted again, and a broken file becomes a problem shown
on the page, never an exception. May import: bot.redact.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

from bot.redact import redact, redact_text

ARTIFACTS = (
    "report.json",
    "report.md",
    "patch.diff",
    "test-before.log",
    "test-after.log",
    "trajectory.jsonl",
)
MAX_TEXT = 512 * 1024  # bytes shown of a log or diff (the tail of a log, the head of a diff)
MAX_STEPS = 2000


# --- formatting -------------------------------------------------------------------------


def epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def fmt_time(value: Any) -> str:
    seconds = epoch(value)
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_usd(value: Any) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"
    return "—"


def fmt_duration(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return "—"
    seconds = round(value)
    if seconds < 60:
        return f"{value:.1f}s" if value < 10 else f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "—"


# --- artifacts --------------------------------------------------------------------------


def read_artifact(folder: Path | None, name: str, *, tail: bool = False) -> str | None:
    """A text artifact, capped at MAX_TEXT (head, or tail for logs); None when absent."""
    if folder is None:
        return None
    path = folder / name
    try:
        if path.is_symlink() or not path.is_file():
            return None
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size > MAX_TEXT and tail:
                handle.seek(size - MAX_TEXT)
            data = handle.read(MAX_TEXT)
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    if size > MAX_TEXT:
        note = f"[{size - MAX_TEXT:,} bytes not shown]"
        text = f"{note}\n{text}" if tail else f"{text}\n{note}"
    return redact_text(text)


def _get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


@dataclass
class Step:
    index: int
    offset_s: float | None
    role: str
    kind: str
    what: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    elapsed_s: float | None


def read_trajectory(text: str | None) -> tuple[list[Step], int]:
    """Steps from trajectory.jsonl and the number of unreadable lines skipped."""
    if not text:
        return [], 0
    steps: list[Step] = []
    skipped = 0
    start: float | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        if len(steps) >= MAX_STEPS:
            skipped += 1
            continue
        ts = epoch(record.get("ts"))
        if ts is not None and start is None:
            start = ts
        kind = str(record.get("kind") or "")
        what = str(record.get("tool") or "") if kind == "tool" else str(record.get("model") or "")

        def num(key: str, rec: dict[str, Any] = record) -> Any:
            value = rec.get(key)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        steps.append(
            Step(
                index=len(steps) + 1,
                offset_s=(ts - start) if ts is not None and start is not None else None,
                role=str(record.get("role") or "—"),
                kind=kind or "—",
                what=what or "—",
                input_tokens=num("input_tokens"),
                output_tokens=num("output_tokens"),
                cost_usd=num("cost_usd"),
                elapsed_s=num("elapsed_s"),
            )
        )
    return steps, skipped


def cost_by_role(report: dict[str, Any], steps: list[Step]) -> list[dict[str, Any]]:
    """Per-role cost: report.json's cost.by_role, else summed from the trajectory."""
    by_role = _get(report, "cost.by_role")
    rows: dict[str, dict[str, Any]] = {}
    if isinstance(by_role, dict) and by_role:
        for role, entry in by_role.items():
            entry = entry if isinstance(entry, dict) else {}
            rows[str(role)] = {
                "usd": float(entry.get("usd") or 0),
                "input_tokens": int(entry.get("input_tokens") or 0),
                "output_tokens": int(entry.get("output_tokens") or 0),
                "calls": int(entry.get("calls") or 0),
            }
    else:
        for step in steps:
            if step.kind != "model":
                continue
            row = rows.setdefault(
                step.role, {"usd": 0.0, "input_tokens": 0, "output_tokens": 0, "calls": 0}
            )
            row["usd"] += step.cost_usd or 0
            row["input_tokens"] += step.input_tokens or 0
            row["output_tokens"] += step.output_tokens or 0
            row["calls"] += 1
    top = max((r["usd"] for r in rows.values()), default=0) or 1
    return [
        {"role": role, **row, "share": row["usd"] / top}
        for role, row in sorted(rows.items(), key=lambda kv: -kv[1]["usd"])
    ]


def diff_html(diff: str | None) -> str:
    if not diff:
        return ""
    return highlight(diff, DiffLexer(), HtmlFormatter(cssclass="highlight", wrapcode=True))


def load_job_page(job: dict[str, Any]) -> dict[str, Any]:
    """Everything the job page shows, read from the artifacts folder."""
    folder_value = job.get("artifacts_dir")
    folder = Path(folder_value) if folder_value else None
    problems: list[str] = []
    report: dict[str, Any] = {}
    raw_report = read_artifact(folder, "report.json")
    if raw_report is not None:
        try:
            loaded = json.loads(raw_report)
            report = redact(loaded) if isinstance(loaded, dict) else {}
            if not isinstance(loaded, dict):
                problems.append("report.json is not a JSON object")
        except json.JSONDecodeError as exc:
            problems.append(f"report.json is not valid JSON ({exc.msg} at line {exc.lineno})")
    elif folder is not None:
        problems.append("report.json is missing")
    steps, skipped = read_trajectory(read_artifact(folder, "trajectory.jsonl"))
    if skipped:
        problems.append(f"trajectory.jsonl: {skipped} line(s) unreadable or over the limit")
    diff = read_artifact(folder, "patch.diff")
    reasons = _get(report, "decision.reasons")
    suite = _get(report, "evidence.suite")
    return {
        "report": report,
        "title": _get(report, "incident.title") or job.get("fingerprint") or job.get("id"),
        "fingerprint": _get(report, "incident.fingerprint") or job.get("fingerprint"),
        "action": _get(report, "decision.action") or job.get("decision"),
        "reasons": [r for r in reasons if isinstance(r, dict)] if isinstance(reasons, list) else [],
        "reproduction": _get(report, "evidence.reproduction") or {},
        "suite": suite if isinstance(suite, dict) else ({"summary": suite} if suite else {}),
        "patch": report.get("patch") if isinstance(report.get("patch"), dict) else {},
        "models": report.get("models"),
        "total_usd": _get(report, "cost.usd"),
        "report_md": read_artifact(folder, "report.md"),
        "diff": diff,
        "diff_html": diff_html(diff),
        "before_log": read_artifact(folder, "test-before.log", tail=True),
        "after_log": read_artifact(folder, "test-after.log", tail=True),
        "steps": steps,
        "roles": cost_by_role(report, steps),
        "problems": problems,
    }
