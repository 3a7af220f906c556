"""The sample for `selfheal demo`: a small shop service with a real bug, a matching Sentry
event and a model script that replays a team fixing it. May import: nothing from bot except
bot.workspace (to commit the sample).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.workspace import run_git

CART = '''"""Shopping cart arithmetic used by the checkout page."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    price_cents: int
    quantity: int = 1


@dataclass
class Cart:
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> None:
        self.items.append(item)

    def total_cents(self) -> int:
        return sum(item.price_cents * item.quantity for item in self.items)

    def item_count(self) -> int:
        return sum(item.quantity for item in self.items)


def average_item_price(cart: Cart) -> float:
    """Average price per item in cents, shown next to the total."""
    return cart.total_cents() / cart.item_count()
'''

CHECKOUT = '''"""The checkout summary the web handler renders."""

from __future__ import annotations

from shop.cart import Cart, average_item_price


def checkout_summary(cart: Cart) -> dict[str, int]:
    return {
        "total_cents": cart.total_cents(),
        "items": cart.item_count(),
        "average_cents": round(average_item_price(cart)),
    }
'''

APP = '''"""A tiny request handler standing in for the web framework."""

from __future__ import annotations

from shop.cart import Cart, Item
from shop.checkout import checkout_summary


def handle_checkout(lines: list[tuple[str, int, int]]) -> dict[str, int]:
    cart = Cart()
    for name, price, quantity in lines:
        cart.add(Item(name, price, quantity))
    return checkout_summary(cart)
'''

TESTS = """from shop.cart import Cart, Item, average_item_price
from shop.checkout import checkout_summary


def test_total():
    cart = Cart([Item("tea", 350, 2), Item("cake", 500)])
    assert cart.total_cents() == 1200


def test_average():
    cart = Cart([Item("tea", 300, 2), Item("cake", 600)])
    assert average_item_price(cart) == 400


def test_summary():
    cart = Cart([Item("tea", 350, 2)])
    assert checkout_summary(cart) == {"total_cents": 700, "items": 2, "average_cents": 350}
"""

REPRO_TEST = """from shop.cart import Cart, average_item_price
from shop.checkout import checkout_summary


def test_average_item_price_of_empty_cart_is_zero():
    assert average_item_price(Cart()) == 0


def test_checkout_summary_of_empty_cart():
    assert checkout_summary(Cart()) == {"total_cents": 0, "items": 0, "average_cents": 0}
"""

BUGGY_LINE = "    return cart.total_cents() / cart.item_count()\n"
FIXED_LINES = (
    "    count = cart.item_count()\n"
    "    if count == 0:\n"
    "        return 0.0\n"
    "    return cart.total_cents() / count\n"
)
REPRO_ID = "tests/test_empty_cart.py::test_average_item_price_of_empty_cart_is_zero"


def _frame(path: str, line: int, function: str, context: str) -> dict[str, Any]:
    return {
        "filename": path,
        "abs_path": f"/srv/shop/{path}",
        "module": path.removesuffix(".py").replace("/", "."),
        "function": function,
        "lineno": line,
        "in_app": True,
        "context_line": context,
    }


def sentry_event() -> dict[str, Any]:
    """A Sentry event_alert webhook body for the empty-cart crash."""
    frames = [
        _frame("shop/app.py", 13, "handle_checkout", "    return checkout_summary(cart)"),
        _frame(
            "shop/checkout.py",
            12,
            "checkout_summary",
            '        "average_cents": round(average_item_price(cart)),',
        ),
        _frame("shop/cart.py", 31, "average_item_price", BUGGY_LINE.rstrip("\n")),
    ]
    event = {
        "event_id": "9f3c1a2b7d4e4f5a8b6c0d1e2f3a4b5c",
        "issue_id": "4711",
        "title": "ZeroDivisionError: division by zero",
        "culprit": "shop.cart in average_item_price",
        "level": "error",
        "platform": "python",
        "datetime": "2026-11-30T09:12:44.000000Z",
        "web_url": "https://sentry.example.com/organizations/acme/issues/4711/events/9f3c1a2b7d4e4f5a8b6c0d1e2f3a4b5c/",
        "exception": {
            "values": [
                {
                    "type": "ZeroDivisionError",
                    "value": "division by zero",
                    "mechanism": {"type": "generic", "handled": False},
                    "stacktrace": {"frames": frames},
                }
            ]
        },
        "tags": [["environment", "production"], ["release", "shop@1.4.2"]],
    }
    return {
        "action": "triggered",
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {"event": event, "triggered_rule": "Checkout errors"},
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def _call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "name": name, "arguments": arguments}


def _turn(
    content: str, *calls: dict[str, Any], tokens: tuple[int, int] = (900, 120)
) -> dict[str, Any]:
    return {
        "content": content,
        "tool_calls": list(calls),
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


def model_script() -> dict[str, Any]:
    """The team's turns: the planner delegates reproduction, then the fix, then finishes."""
    return {
        "version": 1,
        "roles": {
            "planner": [
                _turn(
                    "The crash is a division by item_count() in average_item_price. First reproduce it.",
                    _call(
                        "p1",
                        "delegate",
                        role="reproducer",
                        task="Write a pytest test showing that average_item_price raises "
                        "ZeroDivisionError for an empty cart (it should be 0).",
                    ),
                ),
                _turn(
                    "Reproduced. Now fix it.",
                    _call(
                        "p2",
                        "delegate",
                        role="fixer",
                        task="Make average_item_price return 0.0 for an empty cart without "
                        "changing results for non-empty carts. Run the tests.",
                    ),
                ),
                _turn(
                    "Done.",
                    _call(
                        "p3",
                        "finish",
                        summary="average_item_price now returns 0.0 when the cart has no items; "
                        "a regression test covers the empty cart.",
                        root_cause="average_item_price divides the cart total by item_count() "
                        "without handling an empty cart, so checking out an empty "
                        "cart raises ZeroDivisionError.",
                        confidence=0.9,
                        reproduction_test=REPRO_ID,
                    ),
                ),
            ],
            "reproducer": [
                _turn(
                    "Writing the reproduction test.",
                    _call("r1", "write_file", path="tests/test_empty_cart.py", content=REPRO_TEST),
                ),
                _turn(
                    "Running it.", _call("r2", "run_tests", selection=["tests/test_empty_cart.py"])
                ),
                _turn(
                    "It fails with ZeroDivisionError as expected.",
                    _call(
                        "r3",
                        "finish",
                        summary="tests/test_empty_cart.py fails with ZeroDivisionError on the base code.",
                        reproduction_test=REPRO_ID,
                    ),
                    tokens=(700, 60),
                ),
            ],
            "fixer": [
                _turn(
                    "Reading the function.",
                    _call("f1", "read_file", path="shop/cart.py", start_line=28, end_line=31),
                ),
                _turn(
                    "Guarding the empty cart.",
                    _call("f2", "edit_file", path="shop/cart.py", old=BUGGY_LINE, new=FIXED_LINES),
                ),
                _turn("Running the suite.", _call("f3", "run_tests")),
                _turn(
                    "All tests pass.",
                    _call(
                        "f4",
                        "finish",
                        summary="Return 0.0 for an empty cart in average_item_price.",
                        root_cause="Division by zero when the cart is empty.",
                    ),
                    tokens=(1100, 80),
                ),
            ],
        },
    }


@dataclass(frozen=True)
class DemoSample:
    repo: Path
    incident: Path
    script: Path
    sandbox: str
    sandbox_note: str


def write_demo(where: Path | None = None) -> DemoSample:
    """Write the sample repository, the Sentry event and the model script; commit the repo."""
    root = Path(tempfile.mkdtemp(prefix="selfheal-demo-")) if where is None else where
    repo = root / "shop-service"
    if repo.exists():
        shutil.rmtree(repo)
    files = {
        "shop/__init__.py": "",
        "shop/cart.py": CART,
        "shop/checkout.py": CHECKOUT,
        "shop/app.py": APP,
        "tests/__init__.py": "",
        "tests/test_cart.py": TESTS,
        # The sample has no dependencies: it runs its tests with the interpreter selfheal itself
        # runs on (it has pytest), so the install phase has nothing to fetch (works offline).
        ".github/selfheal.yml": (
            f"setup: []\ntest: {sys.executable} -m pytest -q -p no:cacheprovider\n"
        ),
        "README.md": "# shop-service\n\nA tiny checkout service used by `selfheal demo`.\n",
    }
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    run_git("init", "-q", "-b", "main", cwd=repo)
    run_git("add", "-A", cwd=repo)
    run_git("commit", "-q", "-m", "shop: checkout summary with average item price", cwd=repo)
    incident = root / "sentry-event.json"
    incident.write_text(json.dumps(sentry_event(), indent=2))
    script = root / "model-script.json"
    script.write_text(json.dumps(model_script(), indent=2))
    sandbox, note = "bwrap", ""
    if shutil.which("bwrap") is None:
        sandbox, note = (
            "none",
            "bubblewrap is not installed; the demo runs only its own sample code",
        )
    return DemoSample(repo, incident, script, sandbox, note)
