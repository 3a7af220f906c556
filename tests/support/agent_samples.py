"""Small sample repositories with one production bug each, and a team script that fixes it.

Used by tests/agent and by `python -m bench.agent`. Each sample is built as a real git
repository with two commits (the second one introduces the bug, so it is the suspect commit),
an incident whose frames point at the code the way production printed them (a container path,
an installed package, build output), and the edits a competent team would make.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agent.messages import ModelReply, ToolCall, Usage
from bot.incident import Frame, Incident
from bot.toolchain import TestPlan
from tests.support.gitrepo import git, make_repo


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@dataclass(frozen=True)
class Sample:
    name: str
    files: dict[str, str]
    bug: dict[str, str]  # committed second: "the suspect commit"
    frames: tuple[Frame, ...]
    error_type: str
    error_message: str
    fix_path: str
    fix_old: str
    fix_new: str
    repro_path: str
    repro_code: str
    repro_id: str
    extra_files: dict[str, str] = field(default_factory=dict)

    def incident(self, body: str | None = None) -> Incident:
        extra: dict[str, Any] = {"body": body} if body else {}
        return Incident(
            source="traceback",
            title=f"{self.error_type}: {self.error_message}",
            error_type=self.error_type,
            error_message=self.error_message,
            frames=self.frames,
            extra=extra,
        )

    def build(self, path: Path) -> Path:
        make_repo(path, {**self.files, **self.extra_files})
        for name, content in self.bug.items():
            (path / name).write_text(content)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"{self.name}: simplify the hot path")
        return path


_FILLER = {f"docs/notes_{i}.md": f"# Note {i}\n" for i in range(5)}

SHOP = Sample(
    name="shop",
    files={
        "shop/__init__.py": "",
        "shop/cart.py": _d('''
            """Cart arithmetic."""


            def line_total(price: float, qty: int) -> float:
                return price * qty


            def average_price(items: list[tuple[float, int]]) -> float:
                if not items:
                    return 0.0
                return sum(p for p, _ in items) / len(items)
            '''),
        "shop/api.py": _d('''
            """HTTP handlers."""
            from shop.cart import average_price


            def summary(items: list[tuple[float, int]]) -> dict[str, float]:
                return {"average": average_price(items)}
            '''),
        "shop/legacy/cart.py": "def average_price(items):\n    return 0\n",
        "tests/__init__.py": "",
        "tests/test_cart.py": _d("""
            from shop.cart import average_price, line_total


            def test_line_total():
                assert line_total(2.0, 3) == 6.0


            def test_average_price():
                assert average_price([(2.0, 1), (4.0, 1)]) == 3.0
            """),
    },
    bug={
        "shop/cart.py": _d('''
            """Cart arithmetic."""


            def line_total(price: float, qty: int) -> float:
                return price * qty


            def average_price(items: list[tuple[float, int]]) -> float:
                return sum(p for p, _ in items) / len(items)
            '''),
    },
    frames=(
        Frame("/srv/app/shop/api.py", 6, "summary"),
        Frame("/srv/app/shop/cart.py", 9, "average_price"),
    ),
    error_type="ZeroDivisionError",
    error_message="division by zero",
    fix_path="shop/cart.py",
    fix_old="    return sum(p for p, _ in items) / len(items)\n",
    fix_new=(
        "    if not items:\n        return 0.0\n    return sum(p for p, _ in items) / len(items)\n"
    ),
    repro_path="tests/test_cart_empty.py",
    repro_code=_d("""
        from shop.cart import average_price


        def test_average_price_of_empty_cart():
            assert average_price([]) == 0.0
        """),
    repro_id="tests/test_cart_empty.py::test_average_price_of_empty_cart",
    extra_files=_FILLER,
)

CONFKIT = Sample(
    name="confkit",
    files={
        "pyproject.toml": '[project]\nname = "confkit"\nversion = "0.1"\n',
        "src/confkit/__init__.py": "",
        "src/confkit/loader.py": _d('''
            """Read service settings from a mapping."""


            class Loader:
                def __init__(self, env: dict[str, str]) -> None:
                    self.env = env

                def port(self) -> int:
                    return int(self.env.get("PORT", "8080"))
            '''),
        "tests/conftest.py": "import sys\nsys.path.insert(0, 'src')\n",
        "tests/test_loader.py": _d("""
            from confkit.loader import Loader


            def test_port_from_env():
                assert Loader({"PORT": "9000"}).port() == 9000
            """),
    },
    bug={
        "src/confkit/loader.py": _d('''
            """Read service settings from a mapping."""


            class Loader:
                def __init__(self, env: dict[str, str]) -> None:
                    self.env = env

                def port(self) -> int:
                    return int(self.env["PORT"])
            '''),
    },
    frames=(
        Frame("/usr/lib/python3.11/runpy.py", 198, "_run_module_as_main", in_app=False),
        Frame("/opt/venv/lib/python3.11/site-packages/confkit/loader.py", 9, "port", in_app=True),
    ),
    error_type="KeyError",
    error_message="'PORT'",
    fix_path="src/confkit/loader.py",
    fix_old='        return int(self.env["PORT"])\n',
    fix_new='        return int(self.env.get("PORT", "8080"))\n',
    repro_path="tests/test_loader_default.py",
    repro_code=_d("""
        from confkit.loader import Loader


        def test_port_defaults_to_8080():
            assert Loader({}).port() == 8080
        """),
    repro_id="tests/test_loader_default.py::test_port_defaults_to_8080",
    extra_files=_FILLER,
)

INVENTORY = Sample(
    name="inventory",
    files={
        "inventory/__init__.py": "",
        "inventory/stock.py": _d('''
            """Stock levels."""
            from typing import Optional


            class Stock:
                def __init__(self) -> None:
                    self.levels: dict[str, int] = {}

                def level(self, sku: str) -> Optional[int]:
                    return self.levels.get(sku)

                def can_reserve(self, sku: str, qty: int) -> bool:
                    return (self.level(sku) or 0) >= qty
            '''),
        "inventory/report.py": _d('''
            """Reports."""
            from inventory.stock import Stock


            def low(stock: Stock, skus: list[str]) -> list[str]:
                return [s for s in skus if not stock.can_reserve(s, 5)]
            '''),
        "tests/test_stock.py": _d("""
            from inventory.stock import Stock


            def test_can_reserve():
                s = Stock()
                s.levels["a"] = 10
                assert s.can_reserve("a", 3)
            """),
    },
    bug={
        "inventory/stock.py": _d('''
            """Stock levels."""
            from typing import Optional


            class Stock:
                def __init__(self) -> None:
                    self.levels: dict[str, int] = {}

                def level(self, sku: str) -> Optional[int]:
                    return self.levels.get(sku)

                def can_reserve(self, sku: str, qty: int) -> bool:
                    return self.level(sku) >= qty
            '''),
    },
    frames=(
        Frame("build/lib/inventory/report.py", 6, "low"),
        Frame("build/lib/inventory/report.py", 6, "<listcomp>"),
        Frame("build/lib/inventory/stock.py", 13, "can_reserve"),
    ),
    error_type="TypeError",
    error_message="'>=' not supported between instances of 'NoneType' and 'int'",
    fix_path="inventory/stock.py",
    fix_old="        return self.level(sku) >= qty\n",
    fix_new="        return (self.level(sku) or 0) >= qty\n",
    repro_path="tests/test_stock_unknown.py",
    repro_code=_d("""
        from inventory.stock import Stock


        def test_unknown_sku_cannot_be_reserved():
            assert Stock().can_reserve("missing", 1) is False
        """),
    repro_id="tests/test_stock_unknown.py::test_unknown_sku_cannot_be_reserved",
)

SAMPLES: tuple[Sample, ...] = (SHOP, CONFKIT, INVENTORY)

# ----------------------------------------------------------------------------- team scripts

_ids = itertools.count(1)
USAGE = Usage(input_tokens=1200, output_tokens=150, cost_usd=0.002)


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{next(_ids)}", name=name, arguments=arguments)


def turn(*calls: ToolCall, content: str = "") -> ModelReply:
    stop = "tool_use" if calls else "end_turn"
    return ModelReply(content=content, tool_calls=calls, usage=USAGE, stop_reason=stop)


def team_script(sample: Sample) -> dict[str, list[ModelReply]]:
    """Replies per role for a team that localizes, reproduces, fixes and reviews the bug."""
    return {
        "planner": [
            turn(
                call(
                    "delegate",
                    role="localizer",
                    task=f"Find the fault behind the crash in {sample.fix_path}.",
                )
            ),
            turn(
                call(
                    "delegate", role="reproducer", task=f"Write {sample.repro_path} reproducing it."
                )
            ),
            turn(
                call(
                    "delegate",
                    role="fixer",
                    task=f"Fix {sample.fix_path}; {sample.repro_id} must pass.",
                )
            ),
            turn(call("delegate", role="reviewer", task="Review the diff for masking.")),
            turn(
                call(
                    "finish",
                    summary=f"Fixed {sample.fix_path}",
                    root_cause=f"{sample.error_type} in {sample.fix_path}",
                    confidence=0.9,
                    reproduction_test=sample.repro_id,
                )
            ),
        ],
        "localizer": [
            turn(call("read_file", path=sample.fix_path)),
            turn(call("finish", summary=f"The fault is in {sample.fix_path}", confidence=0.8)),
        ],
        "reproducer": [
            turn(call("write_file", path=sample.repro_path, content=sample.repro_code)),
            turn(call("run_tests", selection=[sample.repro_id])),
            turn(
                call("finish", summary="test fails as expected", reproduction_test=sample.repro_id)
            ),
        ],
        "fixer": [
            turn(
                call(
                    "edit_file",
                    path=sample.fix_path,
                    old=sample.fix_old,
                    new=sample.fix_new,
                )
            ),
            turn(call("run_tests")),
            turn(call("finish", summary=f"Guarded the failing case in {sample.fix_path}")),
        ],
        "reviewer": [
            turn(call("git_diff")),
            turn(
                call(
                    "finish", summary="The change fixes the root cause; no masking.", confidence=0.9
                )
            ),
        ],
    }


def script_document(script: dict[str, list[ModelReply]]) -> dict[str, Any]:
    """The replies as a `scripted` provider file (docs/scripted-models.md)."""
    roles: dict[str, list[dict[str, Any]]] = {}
    for role, replies in script.items():
        roles[role] = [
            {
                "content": r.content,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments or c.raw_arguments}
                    for c in r.tool_calls
                ],
                "usage": {
                    "input_tokens": r.usage.input_tokens,
                    "output_tokens": r.usage.output_tokens,
                },
            }
            for r in replies
        ]
    return {"version": 1, "roles": roles}


def write_script(path: Path, script: dict[str, list[ModelReply]]) -> str:
    """Write the script file and return the `scripted:PATH` spec for every role."""
    import json

    path.write_text(json.dumps(script_document(script), indent=1))
    return f"scripted:{path}"


def sample_plan() -> TestPlan:
    """How the sample repositories are tested: this interpreter's pytest, without plugin
    autoload (hypothesis, timeout... cost seconds per run and the samples need none)."""
    return TestPlan(
        "python",
        (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        runner="pytest",
    )
