"""Every human-facing markdown string the bot posts on GitHub: PR bodies, comments, help,
refusals, the config-error explanation. May import: bot.policy, bot.incident.

Untrusted text (error messages, issue titles, user names) is quoted, fenced or escaped here,
never interpolated raw into markdown that could ping people or fake the bot's own markers.
"""

from __future__ import annotations

import re

from bot.incident import Incident
from bot.policy import Action, Decision

# GitHub rejects issue/PR bodies and comments over 65,536 characters and check-run
# summaries over 65,535; leave room for the truncation note.
MAX_BODY = 65_536
MAX_CHECK_SUMMARY = 65_535
MARKER_PREFIX = "<!-- selfheal:"

ACTION_WORDS = {
    Action.MERGE: "merge",
    Action.PR: "open a pull request for review",
    Action.DRAFT_PR: "open a draft pull request",
    Action.REPORT: "report only (no pull request)",
}

_ROWS = [
    ("/selfheal fix [hint]", "try to fix the problem in this issue (a hint helps)", "write"),
    ("/selfheal retry [hint]", "run the fix again, optionally with a hint", "write"),
    (
        "/selfheal revise FEEDBACK",
        "on a Selfheal pull request: push a new commit that addresses the feedback",
        "write",
    ),
    ("/selfheal explain", "show the policy decision and every rule's verdict", "anyone"),
    ("/selfheal merge", "merge this Selfheal pull request; evidence rules still apply", "write"),
    ("/selfheal stop", "cancel the running job", "write"),
    ("/selfheal help", "show this help", "anyone"),
]
COMMANDS_HELP = "| command | what it does | who may run it |\n| --- | --- | --- |\n" + "".join(
    f"| `{c}` | {what} | {'write access' if who == 'write' else who} |\n" for c, what, who in _ROWS
)


def marker(kind: str, key: str) -> str:
    """A hidden marker that lets the bot find its own comment or PR again."""
    return f"{MARKER_PREFIX}{kind}:{key} -->"


def neutralize(text: str) -> str:
    """Make untrusted text inert in markdown: no mentions, no HTML comments (our markers)."""
    text = text.replace("<!--", "&lt;!--").replace("-->", "--&gt;")
    return re.sub(r"@(?=[A-Za-z0-9])", "@\u200b", text)


def truncate(
    text: str,
    limit: int,
    note: str = "\n\n… (truncated: the full report is in the job's artifacts)",
) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(note)] + note


def decision_table(decision: Decision) -> str:
    """The decision record: the decision and every rule's verdict as a markdown table."""
    icon = {"pass": "✅", "fail": "❌", "skip": "-"}
    lines = [
        f"**Decision: `{decision.action.label}`**"
        + (
            " — shadow mode: every other rule passed, so this *would have merged* "
            "if auto-merge were on."
            if decision.would_merge
            else ""
        ),
        "",
        "| rule | verdict | detail |",
        "| --- | --- | --- |",
    ]
    for r in decision.reasons:
        caps = f" (caps at `{r.caps.label}`)" if r.verdict == "fail" else ""
        detail = neutralize(r.detail).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{r.rule}` | {icon[r.verdict]} {r.verdict} | {detail}{caps} |")
    return "\n".join(lines)


def backlinks(incident: Incident, trigger_url: str | None = None) -> list[str]:
    """Links back to where the problem was reported (Sentry, PagerDuty, CI run, issue)."""
    names = {"sentry": "Sentry issue", "pagerduty": "PagerDuty incident", "github": "CI run"}
    out = []
    for link in incident.links:
        if link.startswith(("https://", "http://")):
            out.append(f"- {names.get(incident.source, 'Source')}: {link}")
    if trigger_url:
        out.append(f"- Triggered from: {trigger_url}")
    return out


def pr_title(incident: Incident) -> str:
    title = " ".join(incident.title.split())[:200] or incident.error_type or "a failure"
    return f"Fix: {neutralize(title)}"


def pr_body(
    incident: Incident, decision: Decision, report_markdown: str, trigger_url: str | None = None
) -> str:
    """The PR body: what was fixed, the decision record, links back, then the evidence report."""
    links = backlinks(incident, trigger_url)
    head = [
        marker("fingerprint", incident.fingerprint),
        f"Selfheal proposes a fix for **{neutralize(incident.error_type or 'a failure')}** "
        f"(`{incident.short_fingerprint}`).",
        "",
        "### Decision",
        decision_table(decision),
        "",
    ]
    if links:
        head += ["### Links", *links, ""]
    head += [
        "### Evidence",
        "",
    ]
    tail = [
        "",
        "",
        "---",
        "Comment `/selfheal help` for commands (revise, explain, merge, stop).",
    ]
    fixed = "\n".join(head) + "\n".join(tail)
    report = truncate(neutralize(report_markdown), MAX_BODY - len(fixed) - 200)
    return "\n".join(head) + report + "\n".join(tail)


def check_summary(decision: Decision, report_markdown: str) -> str:
    """The `selfheal` check run's summary, within GitHub's 65,535-character limit."""
    return truncate(
        decision_table(decision) + "\n\n" + neutralize(report_markdown), MAX_CHECK_SUMMARY
    )


def check_title(decision: Decision) -> str:
    return f"Selfheal decision: {decision.action.label}"


def delivered_comment(
    incident: Incident,
    decision: Decision,
    pr_url: str | None,
    merged: bool,
    auto_merge: bool,
    notes: list[str],
) -> str:
    """The comment on the triggering issue or PR after a delivery."""
    lines = [marker("delivery", incident.fingerprint)]
    if merged:
        lines.append(f"Selfheal fixed this and merged {pr_url}.")
    elif auto_merge:
        lines.append(f"Selfheal opened {pr_url}; it will merge once the required checks pass.")
    elif pr_url:
        kind = "a draft pull request" if decision.action is Action.DRAFT_PR else "a pull request"
        lines.append(f"Selfheal opened {kind}: {pr_url}")
    else:
        lines.append("Selfheal looked into this but did not open a pull request.")
    lines += ["", decision_table(decision)]
    if notes:
        lines += ["", *[f"- {neutralize(n)}" for n in notes]]
    return truncate("\n".join(lines), MAX_BODY)


def config_error_comment(error: str) -> str:
    """Why the job fell back to `report`: the config file is invalid (field and line)."""
    return (
        f"{marker('config-error', 'selfheal.yml')}\n"
        "Selfheal could not use `.github/selfheal.yml`, so this job only reports "
        "(no pull request, no merge):\n\n"
        f"```\n{error.replace('```', '`‍``')}\n```\n\n"
        "Fix the field named above on the default branch (every field is described in "
        "Selfheal's docs/configuration.md); the next job will use it."
    )


def help_text(unknown: str | None = None) -> str:
    intro = ""
    if unknown is not None:
        intro = f"I did not understand `{neutralize(unknown)[:80].replace('`', '')}`.\n\n"
    return f"{intro}Selfheal commands (one per comment, at the start of a line):\n\n{COMMANDS_HELP}"


def refusal(command: str, user: str, permission: str) -> str:
    return (
        f"Sorry @{user}, `/selfheal {command}` needs write, maintain or admin permission on "
        f"this repository (yours: {permission})."
    )


def not_a_bot_pr(command: str) -> str:
    return f"`/selfheal {command}` works on pull requests that Selfheal opened."


def ack(command: str, detail: str) -> str:
    return f"`/selfheal {command}`: {neutralize(detail)}"


def no_decision_record() -> str:
    return "There is no Selfheal decision recorded for this issue or pull request yet."


def merge_outcome(merged: bool, auto_merge: bool, detail: str) -> str:
    if merged:
        return f"Merged. {neutralize(detail)}".strip()
    if auto_merge:
        return "Auto-merge is on: GitHub merges once the required checks pass."
    return f"Not merged: {neutralize(detail)}"
