"""read_incident / parse_incident: detection by content, and every kind of bad input."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.errors import IncidentFormatError, UsageError
from bot.incident import Incident
from bot.readers import (
    MAX_FILE_BYTES,
    MAX_FRAMES,
    MAX_MESSAGE_BYTES,
    parse_incident,
    read_incident,
)

Load = Callable[[str], Any]
PathOf = Callable[[str], Path]

PY_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/shop/cart.py", line 27, in average_price\n'
    "    return sum(prices) / len(prices)\n"
    "ZeroDivisionError: division by zero\n"
)
NODE_STACK = (
    "TypeError: x is not a function\n"
    "    at fn (/app/src/cart.js:12:5)\n"
    "    at /app/src/index.js:3:1\n"
)


@pytest.mark.parametrize(
    ("name", "source", "external_id"),
    [
        ("sentry-api.event.python.json", "sentry", "4412345678"),
        ("sentry-issue.created.json", "sentry", "1170820242"),
        ("sentry-event_alert.triggered.json", "sentry", "1117540176"),
        ("sentry-error.created.json", "sentry", "1170820242"),
        ("pagerduty-incident.priority_updated.json", "pagerduty", "PGR0VU2"),
        ("pagerduty-webhook-signed.incident.priority_updated.json", "pagerduty", "PGR0VU2"),
        ("pagerduty-rest.incident-alerts.response.json", "pagerduty", "PT4KHLK"),
    ],
)
def test_every_vendor_fixture_is_recognised(
    fixture_path: PathOf, name: str, source: str, external_id: str
) -> None:
    incident = read_incident(fixture_path(name))
    assert incident.source == source
    assert incident.external_id == external_id
    assert incident.title


def test_detection_ignores_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "sentry-event.json"
    misleading.write_text(PY_TRACE)
    assert read_incident(misleading).source == "traceback"
    other = tmp_path / "trace.txt"
    other.write_text(NODE_STACK)
    assert read_incident(other).source == "nodejs"


def test_text_and_bytes_and_bom() -> None:
    assert parse_incident(PY_TRACE).error_type == "ZeroDivisionError"
    assert parse_incident(PY_TRACE.encode()).error_type == "ZeroDivisionError"
    assert parse_incident(b"\xef\xbb\xbf" + PY_TRACE.encode()).error_type == "ZeroDivisionError"
    assert parse_incident(PY_TRACE.replace("\n", "\r\n")).frames[0].line == 27
    powershell = PY_TRACE.replace("\n", "\r\n").encode("utf-16")  # BOM + UTF-16LE
    assert parse_incident(powershell).error_type == "ZeroDivisionError"


def test_project_repos_reach_the_reader(fixture_path: PathOf) -> None:
    incident = read_incident(
        fixture_path("sentry-event_alert.triggered.json"),
        project_repos={"front-end": "acme/web"},
    )
    assert incident.repo == "acme/web"
    pd = read_incident(
        fixture_path("pagerduty-incident.priority_updated.json"),
        service_repos={"PF9KMXH": "acme/api"},
    )
    assert pd.repo == "acme/api"


def test_headers_and_body_wrapper(load_json: Load) -> None:
    body = load_json("sentry-error.created.json")
    wrapped = {"headers": {"sentry-hook-resource": "error"}, "body": body}
    incident = parse_incident(json.dumps(wrapped))
    assert incident.extra["resource"] == "error"
    as_string = {"headers": {"Sentry-Hook-Resource": "error"}, "body": json.dumps(body)}
    assert parse_incident(json.dumps(as_string)).external_id == "1170820242"
    pd = {"headers": {}, "body": load_json("pagerduty-incident.priority_updated.json")}
    assert parse_incident(json.dumps(pd)).source == "pagerduty"


def test_bare_sentry_event_and_legacy_plugin_body(load_json: Load) -> None:
    event = load_json("sentry-event_alert.triggered.json")["data"]["event"]
    assert parse_incident(json.dumps(event)).error_type == "ReferenceError"
    legacy = {
        "id": "1117540176",
        "project": "front-end",
        "project_slug": "front-end",
        "level": "error",
        "event": event,
    }
    incident = parse_incident(json.dumps(legacy), project_repos={"front-end": "acme/web"})
    assert incident.error_type == "ReferenceError"
    assert incident.repo == "acme/web"


def _error(content: str | bytes) -> str:
    with pytest.raises(IncidentFormatError) as caught:
        parse_incident(content)
    message = str(caught.value)
    assert "\n" not in message
    assert isinstance(caught.value, UsageError)  # the CLI exits 2
    return message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("   \n\t\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (bytes(range(256)) * 40, "binary"),
        (b"caf\xe9 au lait", "not UTF-8"),
        ("\x01\x02\x03\x04\x05\x06 junk \x07\x08", "binary"),
        ('{"hello": "world"}', "matches no known shape"),
        ("[1, 2, 3]", "not an object"),
        ('{"event": ', "invalid"),
        ("just a line of prose", "no Python traceback or Node.js stack"),
    ],
)
def test_bad_content_gets_one_clear_line(content: str | bytes, needle: str) -> None:
    message = _error(content)
    assert needle in message


def test_unrecognised_content_lists_accepted_formats() -> None:
    for content in ("", '{"hello": 1}', "prose", b"\x00\x01"):
        message = _error(content)
        assert "Sentry" in message and "PagerDuty" in message and "Node.js" in message


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(IncidentFormatError, match="does not exist"):
        read_incident(tmp_path / "missing.json")
    with pytest.raises(IncidentFormatError, match="not a regular file"):
        read_incident(tmp_path)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(IncidentFormatError, match=r"empty\.json: incident is empty"):
        read_incident(empty)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_file_without_read_permission_names_the_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked.txt"
    locked.write_text(PY_TRACE)
    locked.chmod(0)
    with pytest.raises(IncidentFormatError, match="cannot read"):
        read_incident(locked)


def test_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: refused on its size alone
    started = time.monotonic()
    with pytest.raises(IncidentFormatError, match="over the 10 MB limit"):
        read_incident(big)
    assert time.monotonic() - started < 1
    with pytest.raises(IncidentFormatError, match="over the 10 MB limit"):
        parse_incident(b"x" * (MAX_FILE_BYTES + 1))


@pytest.mark.timeout(60)  # pathological (quadratic, backtracking) input would not end
def test_deeply_nested_json_is_refused_quickly() -> None:
    message = _error("[" * 200_000 + "]" * 200_000)
    assert "nested too deeply" in message
    nested: str = '{"a": ' * 50_000 + "1" + "}" * 50_000
    _error(nested)


@pytest.mark.timeout(60)  # pathological (quadratic, backtracking) input would not end
def test_hundred_thousand_sentry_frames_are_capped(load_json: Load) -> None:
    body = load_json("sentry-error.created.json")
    frames = [
        {"filename": f"app/mod{i}.py", "lineno": i + 1, "function": f"f{i}", "in_app": True}
        for i in range(100_000)
    ]
    body["data"]["error"]["exception"]["values"][0]["stacktrace"]["frames"] = frames
    incident = parse_incident(json.dumps(body))
    assert len(incident.frames) == MAX_FRAMES
    assert incident.frames[-1].file == "app/mod99999.py"  # the innermost are kept
    assert incident.extra["frames_omitted"] == 100_000 - MAX_FRAMES


@pytest.mark.timeout(60)  # a quadratic parse would not finish; speed itself is for bench/
def test_hundred_thousand_text_frames_are_capped() -> None:
    frame = '  File "/app/rec.py", line {n}, in recurse\n    return recurse(n - 1)\n'
    body = "".join(frame.format(n=n) for n in range(100_000))
    text = "Traceback (most recent call last):\n" + body + "RecursionError: too deep\n"
    incident = parse_incident(text)
    assert len(incident.frames) == MAX_FRAMES
    assert incident.frames[-1].line == 99_999
    assert incident.extra["frames_omitted"] == 100_000 - MAX_FRAMES
    node = "Error: deep\n" + "".join(f"    at f{n} (/app/a.js:{n + 1}:1)\n" for n in range(100_000))
    incident = parse_incident(node)
    assert len(incident.frames) == MAX_FRAMES
    assert incident.frames[-1].line == 1  # innermost: the first `at` line


def test_huge_message_and_control_characters_are_tamed() -> None:
    message = "A\x00\x07\x1b[2J\u202ebad " + "x" * 100_000
    text = PY_TRACE.replace("division by zero", message)
    incident = parse_incident(text.replace("\x00", ""))
    assert incident.error_message is not None
    assert len(incident.error_message.encode()) <= MAX_MESSAGE_BYTES
    assert incident.error_message.startswith("Abad x")
    assert len(incident.title) <= 300
    event = {
        "title": "T\x00itle\r\nwith\x1b[31m junk",
        "exception": {
            "values": [
                {
                    "type": "E\x07rr",
                    "value": "v" * 50_000,
                    "stacktrace": {"frames": [{"filename": "a\x00b.py\n"}]},
                }
            ]
        },
    }
    incident = parse_incident(json.dumps(event))
    assert incident.title == "Title with junk"
    assert incident.error_type == "Err"
    assert incident.frames[0].file == "ab.py"
    assert incident.error_message is not None
    assert len(incident.error_message.encode()) <= MAX_MESSAGE_BYTES


@pytest.mark.timeout(60)  # pathological (quadratic, backtracking) input would not end
def test_giant_single_line_is_handled_quickly() -> None:
    _error("at " * 3_000_000)
    _error("(" + "a" * 5_000_000)


def test_json_log_record_holding_a_traceback() -> None:
    record = {"level": "error", "event": "checkout failed", "exception": PY_TRACE}
    incident = parse_incident(json.dumps(record))
    assert incident.source == "traceback"
    assert incident.error_type == "ZeroDivisionError"


def test_json_lines_log_uses_the_last_stack() -> None:
    lines = [
        {"level": 30, "msg": "listening"},
        {"level": 50, "msg": "old", "err": {"stack": NODE_STACK.replace("x is", "old is")}},
        {"level": 50, "msg": "boom", "err": {"stack": NODE_STACK}},
        {"level": 30, "msg": "recovered"},
    ]
    incident = parse_incident("\n".join(json.dumps(line) for line in lines) + "\n")
    assert incident.source == "nodejs"
    assert incident.error_message == "x is not a function"
    assert incident.frames[-1].file == "/app/src/cart.js"


def test_json_lines_without_a_stack_is_refused() -> None:
    message = _error('{"level": 30, "msg": "a"}\n{"level": 30, "msg": "b"}\n')
    assert "invalid" in message


@pytest.mark.parametrize(
    "name",
    [
        "sentry-api.event.python.json",
        "sentry-issue.created.json",
        "sentry-event_alert.triggered.json",
        "sentry-error.created.json",
        "pagerduty-incident.priority_updated.json",
        "pagerduty-rest.incident-alerts.response.json",
    ],
)
def test_incidents_survive_a_json_round_trip(fixture_path: PathOf, name: str) -> None:
    """What a reader returns can travel through the queue as JSON unchanged."""
    incident = read_incident(fixture_path(name))
    again = Incident.from_dict(json.loads(json.dumps(incident.to_dict())))
    assert again == incident


@pytest.mark.timeout(60)  # pathological (quadratic, backtracking) input would not end
def test_huge_exception_chain_is_cut_to_its_newest_links() -> None:
    value = {"type": "E", "value": "v" * 40, "stacktrace": {"frames": [{"filename": "a.py"}]}}
    event = {"title": "x", "exception": {"values": [value] * 60_000}}
    incident = parse_incident(json.dumps(event))
    assert len(incident.extra["chained_exceptions"]) <= 20
    assert len(incident.frames) == 1
