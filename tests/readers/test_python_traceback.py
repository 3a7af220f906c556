"""Python tracebacks as text: plain, chained, inside log lines, SyntaxError, 3.11 carets."""

from __future__ import annotations

import pytest

from bot.errors import IncidentFormatError
from bot.readers import from_python_traceback

CHAINED = """\
2026-11-30 09:14:02,118 ERROR [shop.views] checkout failed
Traceback (most recent call last):
  File "/srv/shop/shop/cart.py", line 18, in count_items
    total += line["quantity"]
KeyError: 'quantity'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/shop/.venv/lib/python3.11/site-packages/flask/app.py", line 880, in dispatch_request
    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/shop/shop/views.py", line 42, in cart_summary
    "average": average_price(cart),
               ^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
  File "/srv/shop/shop/cart.py", line 27, in average_price
    return sum(prices) / len(prices)
           ~~~~~~~~~~~~^~~~~~~~~~~~~
shop.errors.CartError: cart 8812 is empty
2026-11-30 09:14:02,120 INFO [werkzeug] 500 GET /cart/summary
"""


def test_chained_takes_the_last_exception() -> None:
    incident = from_python_traceback(CHAINED)
    assert incident.source == "traceback"
    assert incident.error_type == "shop.errors.CartError"
    assert incident.error_message == "cart 8812 is empty"  # the next log record is not in it
    assert incident.title == "shop.errors.CartError: cart 8812 is empty"
    assert [(f.file, f.line, f.function, f.in_app) for f in incident.frames] == [
        (
            "/srv/shop/.venv/lib/python3.11/site-packages/flask/app.py",
            880,
            "dispatch_request",
            False,
        ),
        ("/srv/shop/shop/views.py", 42, "cart_summary", True),
        ("/usr/lib/python3.11/json/__init__.py", 346, "loads", False),  # stdlib
        ("/srv/shop/shop/cart.py", 27, "average_price", True),
    ]
    assert incident.frames[-1].context == ("return sum(prices) / len(prices)",)
    assert incident.extra["chained_exceptions"] == ["KeyError: 'quantity'"]


def test_direct_cause_chain() -> None:
    text = CHAINED.replace(
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    )
    assert from_python_traceback(text).extra["chained_exceptions"] == ["KeyError: 'quantity'"]


def test_unrelated_earlier_traceback_is_not_a_chain() -> None:
    text = CHAINED.replace(
        "During handling of the above exception, another exception occurred:", "INFO retrying"
    )
    incident = from_python_traceback(text)
    assert incident.error_type == "shop.errors.CartError"
    assert "chained_exceptions" not in incident.extra


@pytest.mark.parametrize(
    "prefix",
    [
        "web-1  | ",
        "2026-11-30T09:14:0{n}.118Z app[web.1]: ",
        "2026-11-30T09:14:02.{n}1{n}Z ",  # nanoseconds with trailing zeros trimmed
        "    ",
    ],
)
def test_traceback_inside_prefixed_log_lines(prefix: str) -> None:
    body = [
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 5, in <module>',
        "    main()",
        '  File "/app/billing.py", line 3, in main',
        "    charge(None)",
        "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'",
    ]
    text = "\n".join(prefix.format(n=n * 111) + line for n, line in enumerate(body))
    incident = from_python_traceback("boot ok\n" + text + "\n")
    assert incident.error_type == "TypeError"
    assert incident.error_message == "unsupported operand type(s) for +: 'NoneType' and 'int'"
    assert [(f.file, f.line, f.function) for f in incident.frames] == [
        ("/app/main.py", 5, "<module>"),
        ("/app/billing.py", 3, "main"),
    ]
    assert incident.frames[0].context == ("main()",)


def test_syntax_error_frame_without_function() -> None:
    text = """Traceback (most recent call last):
  File "/app/run.py", line 1, in <module>
    import shop.config
  File "/app/shop/config.py", line 7
    DEBUG = = True
            ^
SyntaxError: invalid syntax
"""
    incident = from_python_traceback(text)
    assert incident.error_type == "SyntaxError"
    assert incident.frames[-1].file == "/app/shop/config.py"
    assert incident.frames[-1].line == 7
    assert incident.frames[-1].function is None
    assert incident.frames[-1].context == ("DEBUG = = True",)


def test_multi_line_message_and_bare_exception_name() -> None:
    text = """Traceback (most recent call last):
  File "/app/models.py", line 9, in build
    return User(**data)
pydantic_core._pydantic_core.ValidationError: 1 validation error for User
email
  Field required [type=missing, input_value={}, input_type=dict]
"""
    incident = from_python_traceback(text)
    assert incident.error_type == "pydantic_core._pydantic_core.ValidationError"
    assert incident.error_message is not None
    assert incident.error_message.splitlines() == [
        "1 validation error for User",
        "email",
        "  Field required [type=missing, input_value={}, input_type=dict]",
    ]
    assert (
        incident.title
        == "pydantic_core._pydantic_core.ValidationError: 1 validation error for User"
    )
    bare = from_python_traceback(text.split("pydantic_core.")[0] + "KeyboardInterrupt\n")
    assert bare.error_type == "KeyboardInterrupt"
    assert bare.error_message is None
    assert bare.title == "KeyboardInterrupt"


def test_colour_codes_are_removed() -> None:
    text = (
        "\x1b[31mTraceback (most recent call last):\x1b[0m\n"
        '  File "\x1b[35m/app/a.py\x1b[0m", line \x1b[35m2\x1b[0m, in \x1b[35mf\x1b[0m\n'
        "\x1b[1;35mValueError\x1b[0m: \x1b[35mbad\x1b[0m\n"
    )
    incident = from_python_traceback(text)
    assert incident.error_type == "ValueError"
    assert incident.error_message == "bad"
    assert incident.frames[0].file == "/app/a.py"


def test_text_without_a_traceback_is_refused() -> None:
    with pytest.raises(IncidentFormatError, match="no line reading"):
        from_python_traceback("ValueError: something")
    with pytest.raises(IncidentFormatError, match="no frames and no exception line"):
        from_python_traceback("Traceback (most recent call last):\n\n")
