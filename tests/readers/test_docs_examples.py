"""Every example in docs/incident-formats.md is read as the section it stands in says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.readers import parse_incident

DOC = Path(__file__).resolve().parents[2] / "docs" / "incident-formats.md"
EXPECTED_SOURCE = {
    "Sentry event (REST API)": "sentry",
    "Sentry webhook": "sentry",
    "PagerDuty V3 webhook": "pagerduty",
    "PagerDuty incident alerts": "pagerduty",
    "Python traceback": "traceback",
    "Node.js stack trace": "nodejs",
    "JSON logs": "traceback",
}


def _examples() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for section in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        heading = section.splitlines()[0].strip()
        if heading in EXPECTED_SOURCE:
            for block in re.findall(r"^```(?:json)?\n(.*?)^```", section, flags=re.M | re.S):
                found.append((heading, block))
    return found


EXAMPLES = _examples()


def test_every_format_has_an_example() -> None:
    assert {heading for heading, _ in EXAMPLES} == set(EXPECTED_SOURCE)


@pytest.mark.parametrize(("heading", "block"), EXAMPLES, ids=[h for h, _ in EXAMPLES])
def test_example_is_read(heading: str, block: str) -> None:
    incident = parse_incident(block)
    assert incident.source == EXPECTED_SOURCE[heading]
    assert incident.title
