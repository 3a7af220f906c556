"""Realistic job records and artifact folders, as the pipeline writes them, for dashboard tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T0 = 1_796_400_000.0  # 2026-12-04 (a fixed clock keeps pages comparable)

PATCH = """\
diff --git a/shop/cart.py b/shop/cart.py
index 3b18e51..9c2f0d4 100644
--- a/shop/cart.py
+++ b/shop/cart.py
@@ -38,9 +38,11 @@ class Cart:
     def total(self) -> Decimal:
         amount = Decimal("0")
         for line in self.lines:
-            price = self.catalog[line["sku"]]
+            price = self.catalog.get(line["sku"])
+            if price is None:
+                raise UnknownSku(line["sku"])
             amount += price * line["qty"]
         return amount.quantize(Decimal("0.01"))
diff --git a/tests/test_cart.py b/tests/test_cart.py
index 1a2b3c4..5d6e7f8 100644
--- a/tests/test_cart.py
+++ b/tests/test_cart.py
@@ -61,3 +61,8 @@ def test_total_rounds_to_cents(catalog):
     cart = Cart(catalog, [{"sku": "tea", "qty": 3}])
     assert cart.total() == Decimal("13.47")
+
+
+def test_unknown_sku_is_reported(catalog):
+    with pytest.raises(UnknownSku):
+        Cart(catalog, [{"sku": "gone", "qty": 1}]).total()
"""

BEFORE = """\
============================= test session starts ==============================
collected 1 item

tests/test_cart.py::test_unknown_sku_is_reported FAILED                  [100%]

=================================== FAILURES ===================================
_________________________ test_unknown_sku_is_reported _________________________
>           price = self.catalog[line["sku"]]
E           KeyError: 'gone'

shop/cart.py:41: KeyError
=========================== short test summary info ============================
FAILED tests/test_cart.py::test_unknown_sku_is_reported - KeyError: 'gone'
============================== 1 failed in 0.21s ===============================
"""

AFTER = """\
============================= test session starts ==============================
collected 48 items

tests/test_cart.py ........                                              [ 16%]
tests/test_checkout.py ..........................                        [ 70%]
tests/test_catalog.py ..............                                     [100%]

============================== 48 passed in 3.02s ==============================
"""

STEPS: list[dict[str, Any]] = [
    {
        "role": "planner",
        "model": "claude-sonnet-4-5",
        "kind": "model",
        "input_tokens": 5120,
        "output_tokens": 410,
        "cost_usd": 0.0215,
        "elapsed_s": 6.2,
    },
    {
        "role": "localizer",
        "model": "gpt-4.1-mini",
        "kind": "model",
        "input_tokens": 8800,
        "output_tokens": 230,
        "cost_usd": 0.0039,
        "elapsed_s": 3.1,
    },
    {"role": "localizer", "kind": "tool", "tool": "read_file", "elapsed_s": 0.02},
    {
        "role": "reproducer",
        "model": "gpt-4.1-mini",
        "kind": "model",
        "input_tokens": 6400,
        "output_tokens": 520,
        "cost_usd": 0.0034,
        "elapsed_s": 4.4,
    },
    {"role": "reproducer", "kind": "tool", "tool": "run_tests", "elapsed_s": 2.7},
    {
        "role": "fixer",
        "model": "claude-sonnet-4-5",
        "kind": "model",
        "input_tokens": 14200,
        "output_tokens": 980,
        "cost_usd": 0.0573,
        "elapsed_s": 11.8,
    },
    {"role": "fixer", "kind": "tool", "tool": "apply_patch", "elapsed_s": 0.05},
    {
        "role": "reviewer",
        "model": "gpt-4.1-mini",
        "kind": "model",
        "input_tokens": 4100,
        "output_tokens": 150,
        "cost_usd": 0.0019,
        "elapsed_s": 2.0,
    },
]


def write_artifacts(folder: Path, *, action: str, title: str, fingerprint: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    by_role: dict[str, dict[str, Any]] = {}
    for step in STEPS:
        if step["kind"] != "model":
            continue
        row = by_role.setdefault(
            step["role"], {"usd": 0.0, "input_tokens": 0, "output_tokens": 0, "calls": 0}
        )
        row["usd"] = round(row["usd"] + step["cost_usd"], 6)
        row["input_tokens"] += step["input_tokens"]
        row["output_tokens"] += step["output_tokens"]
        row["calls"] += 1
    report = {
        "incident": {"title": title, "fingerprint": fingerprint},
        "decision": {
            "action": action,
            "reasons": [
                {
                    "rule": "reproduced",
                    "verdict": "pass",
                    "detail": "test_unknown_sku_is_reported failed before the fix",
                },
                {"rule": "red_to_green", "verdict": "pass", "detail": "it passes after the fix"},
                {"rule": "suite_no_new_failures", "verdict": "pass", "detail": "48 passed"},
                {
                    "rule": "max_lines_for_merge",
                    "verdict": "fail" if action != "merge" else "pass",
                    "detail": "7 lines changed; merge allows 5",
                },
            ],
        },
        "evidence": {
            "reproduction": {
                "test": "tests/test_cart.py::test_unknown_sku_is_reported",
                "before": "fail",
                "after": "pass",
            },
            "suite": {"before": "47 passed", "after": "48 passed", "new_failures": 0},
        },
        "patch": {"files": ["shop/cart.py", "tests/test_cart.py"], "added": 8, "removed": 1},
        "cost": {"usd": round(sum(r["usd"] for r in by_role.values()), 6), "by_role": by_role},
        "models": {"planner": "anthropic:claude-sonnet-4-5", "localizer": "openai:gpt-4.1-mini"},
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    (folder / "report.md").write_text(f"# {title}\n\nDecision: **{action}**\n")
    (folder / "patch.diff").write_text(PATCH)
    (folder / "test-before.log").write_text(BEFORE)
    (folder / "test-after.log").write_text(AFTER)
    with (folder / "trajectory.jsonl").open("w") as handle:
        for i, step in enumerate(STEPS):
            handle.write(json.dumps({"ts": T0 + 5 * i, "tool": None, "model": None, **step}))
            handle.write("\n")


def make_jobs(root: Path) -> list[dict[str, Any]]:
    """Four jobs over two repos, three sources and several states and decisions."""
    specs = [
        (
            "job-4f2a",
            "acme/shop",
            "sentry",
            "done",
            "pr",
            "KeyError: 'gone' in Cart.total",
            "sentry:shop:KeyError:cart.py:total",
            14,
            0.0880,
            312.0,
        ),
        (
            "job-77b1",
            "acme/shop",
            "github",
            "done",
            "merge",
            "test_checkout fails on main",
            "github:checks:test_checkout",
            1,
            0.0421,
            128.5,
        ),
        (
            "job-9c03",
            "acme/billing",
            "pagerduty",
            "running",
            None,
            "Invoices API 500s",
            "pagerduty:billing:P1ABCDE",
            3,
            None,
            None,
        ),
        (
            "job-a1d9",
            "acme/billing",
            "sentry",
            "failed",
            "report",
            "ZeroDivisionError in tax.rate",
            "sentry:billing:ZeroDivisionError",
            2,
            0.0312,
            95.0,
        ),
    ]
    jobs = []
    for i, (jid, repo, source, state, decision, title, fp, events, cost, dur) in enumerate(specs):
        folder = root / jid
        if decision is not None:
            write_artifacts(folder, action=decision, title=title, fingerprint=fp)
        jobs.append(
            {
                "id": jid,
                "repo": repo,
                "source": source,
                "state": state,
                "fingerprint": fp,
                "events": events,
                "created_at": T0 - 3600 * i,
                "updated_at": T0 - 3600 * i + (dur or 0),
                "decision": decision,
                "cost_usd": cost,
                "duration_s": dur,
                "artifacts_dir": str(folder) if decision is not None else None,
            }
        )
    return jobs
