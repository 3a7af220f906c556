"""The same error read twice gives the same fingerprint, whatever the message or line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.readers import from_sentry_event, parse_incident

Load = Callable[[str], Any]

TRACE = """Traceback (most recent call last):
  File "{root}/shop/views.py", line {a}, in cart_summary
    "average": average_price(cart),
  File "{root}/shop/cart.py", line {b}, in average_price
    return sum(prices) / len(prices)
ZeroDivisionError: {message}
"""


def test_python_line_shifts_and_messages_do_not_change_it() -> None:
    first = parse_incident(TRACE.format(root="/srv/app", a=42, b=27, message="cart 1 empty"))
    second = parse_incident(TRACE.format(root="/srv/app", a=45, b=31, message="cart 9 empty"))
    assert first.error_message != second.error_message
    assert first.fingerprint == second.fingerprint


def test_python_other_checkout_path_does_not_change_it() -> None:
    first = parse_incident(TRACE.format(root="/srv/app", a=42, b=27, message="x"))
    second = parse_incident(TRACE.format(root="/home/ci/work/app", a=42, b=27, message="x"))
    assert first.fingerprint == second.fingerprint


def test_another_error_or_function_changes_it() -> None:
    base = parse_incident(TRACE.format(root="/srv/app", a=42, b=27, message="x"))
    other_type = parse_incident(
        TRACE.format(root="/srv/app", a=42, b=27, message="x").replace(
            "ZeroDivisionError", "TypeError"
        )
    )
    other_function = parse_incident(
        TRACE.format(root="/srv/app", a=42, b=27, message="x").replace(
            "in average_price", "in median_price"
        )
    )
    assert len({base.fingerprint, other_type.fingerprint, other_function.fingerprint}) == 3


def test_sentry_events_of_one_issue_share_it(load_json: Load) -> None:
    first = load_json("sentry-api.event.python.json")
    second = json.loads(json.dumps(first))
    second["eventID"] = "0" * 32
    exception = second["entries"][0]["data"]["values"][-1]
    exception["value"] = "float division by zero"
    for frame in exception["stacktrace"]["frames"]:
        frame["lineNo"] += 3
        frame["absPath"] = frame["absPath"].replace("/srv/shop", "/opt/deploy/shop")
    a, b = from_sentry_event(first), from_sentry_event(second)
    assert a.error_message != b.error_message
    assert a.fingerprint == b.fingerprint


def test_node_line_and_column_shifts_do_not_change_it() -> None:
    stack = "TypeError: {m}\n    at total (/app/src/cart.js:{n}:5)\n    at /app/src/index.js:3:1\n"
    first = parse_incident(stack.format(m="x is not a function", n=12))
    second = parse_incident(stack.format(m="y is not a function", n=19))
    assert first.fingerprint == second.fingerprint
