from __future__ import annotations

from bot.incident import Frame, Incident


def _frames(line: int) -> tuple[Frame, ...]:
    return (
        Frame("/srv/app/shop/app.py", 10, "handle"),
        Frame("/srv/app/shop/cart.py", line, "average"),
    )


def test_same_problem_same_fingerprint_despite_message_line_and_checkout_path() -> None:
    a = Incident("traceback", "x", "ZeroDivisionError", "division by zero", _frames(31))
    b = Incident(
        "traceback",
        "y",
        "ZeroDivisionError",
        "other text",
        tuple(
            Frame(f.file.replace("/srv/app", "/home/ci/work"), (f.line or 0) + 5, f.function)
            for f in _frames(31)
        ),
    )
    assert a.fingerprint == b.fingerprint
    assert len(a.short_fingerprint) == 12


def test_different_error_type_or_function_is_a_different_problem() -> None:
    a = Incident("traceback", "x", "ZeroDivisionError", "m", _frames(31))
    assert a.fingerprint != Incident("traceback", "x", "KeyError", "m", _frames(31)).fingerprint
    other = (*_frames(31)[:1], Frame("/srv/app/shop/cart.py", 31, "total"))
    assert a.fingerprint != Incident("traceback", "x", "ZeroDivisionError", "m", other).fingerprint


def test_sentry_issue_without_frames_matches_its_events() -> None:
    issue = Incident("sentry", "ZeroDivisionError", repo="acme/shop", external_id="4711")
    event = Incident(
        "sentry",
        "ZeroDivisionError",
        "ZeroDivisionError",
        "division by zero",
        _frames(31),
        repo="acme/shop",
        external_id="4711",
    )
    assert issue.fingerprint == event.fingerprint
    assert (
        issue.fingerprint
        != Incident("sentry", "t", repo="acme/shop", external_id="4712").fingerprint
    )


def test_round_trip_keeps_fingerprint() -> None:
    a = Incident(
        "traceback", "x", "ZeroDivisionError", "m", _frames(31), links=("https://e.example/1",)
    )
    assert Incident.from_dict(a.to_dict()) == a
