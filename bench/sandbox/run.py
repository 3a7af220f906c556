"""Sandbox benchmark: a real project's test suite bare vs in bwrap, and a job's workspace and
environment prepared cold vs warm. `python -m bench.sandbox [--runs N]`; writes
bench/results/sandbox.json and bench/results/sandbox.md.

The project is toolz 0.12.1 from its PyPI sdist (tests/fixtures/sdists); its environment is
built with uv from the committed wheelhouse (offline), so the cold figure measures clone, venv
creation and installation, not the network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bot.environment import EnvironmentBuilder
from bot.repo_config import load_repo_config
from bot.sandbox import Limits
from bot.sandbox.bwrap import BwrapSandbox, base_env
from bot.testrun import TestRun, run_tests
from bot.toolchain import detect
from bot.workspace import WorkspaceManager
from tests.conftest import OFFLINE_UV, WHEELS
from tests.sandbox.conftest import FIXTURES, repo_from_archive
from tests.support.gitrepo import git

RESULTS = Path(__file__).resolve().parents[1] / "results"
PROJECT = FIXTURES / "sdists" / "toolz-0.12.1.tar.gz"


def _prepare(root: Path, source: Path, job: str, ref: str | None) -> tuple[float, Path, object]:
    sandbox = BwrapSandbox()
    manager = WorkspaceManager(root / "cache")
    builder = EnvironmentBuilder(
        root / "cache", sandbox, uv_index_args=OFFLINE_UV, extra_ro_paths=(WHEELS,)
    )
    start = time.perf_counter()
    ws = manager.checkout(str(source), ref, job)
    prepared = builder.prepare(ws.path, detect(ws.path, load_repo_config(ws.path)), str(source))
    return time.perf_counter() - start, ws.path, prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="test-suite runs per mode")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="selfheal-bench-"))
    try:
        source = repo_from_archive(PROJECT, root / "toolz")
        # Both jobs name the commit, as an incident does (release SHA, CI head SHA).
        sha = git(source, "rev-parse", "HEAD")
        cold_s, worktree, prepared = _prepare(root, source, "job-cold", sha)
        warm_s, _, warm_prepared = _prepare(root, source, "job-warm", sha)
        assert not prepared.warm and warm_prepared.warm  # type: ignore[attr-defined]
        plan = prepared.plan  # type: ignore[attr-defined]
        argv = plan.test_argv((), ".bench-junit.xml")
        sandbox = BwrapSandbox()
        bare: list[float] = []
        boxed: list[float] = []
        counts: object = None
        # Same argv and environment in both modes; alternating which goes first (ABBA) so
        # drift and warm caches favour neither.

        def run_bare() -> None:
            start = time.perf_counter()
            proc = subprocess.run(
                argv, cwd=worktree, env={**base_env(worktree), **plan.env}, capture_output=True
            )
            bare.append(time.perf_counter() - start)
            assert proc.returncode == 0, proc.stdout[-2000:]

        def run_boxed() -> TestRun:
            start = time.perf_counter()
            run = run_tests(sandbox, worktree, plan, limits=Limits(timeout_s=300))
            boxed.append(time.perf_counter() - start)
            assert run.exit_code == 0, run.output[-2000:]
            return run

        for i in range(args.runs):
            if i % 2:
                counts = run_boxed().counts
                run_bare()
            else:
                run_bare()
                counts = run_boxed().counts
        bare_s, boxed_s = statistics.median(bare), statistics.median(boxed)
        start_bare: list[float] = []
        start_boxed: list[float] = []
        for _ in range(20):  # sandbox start to first command: `true`, bare vs bwrap
            time.sleep(0.2)  # commands come between model turns, not back to back
            start = time.perf_counter()
            subprocess.run(["true"], cwd=worktree, check=True)
            start_bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            sandbox.run(["true"], workdir=worktree)
            start_boxed.append(time.perf_counter() - start)
        result = {
            "project": "toolz 0.12.1 (PyPI sdist), pytest",
            "tests": counts._asdict() if hasattr(counts, "_asdict") else vars(counts),
            "runs": args.runs,
            "suite_bare_s": round(bare_s, 3),
            "suite_bwrap_s": round(boxed_s, 3),
            "suite_overhead_pct": round(100 * (boxed_s - bare_s) / bare_s, 1),
            "suite_bare_min_s": round(min(bare), 3),
            "suite_bwrap_min_s": round(min(boxed), 3),
            "suite_overhead_min_pct": round(100 * (min(boxed) - min(bare)) / min(bare), 1),
            "suite_bare_all_s": [round(x, 3) for x in bare],
            "suite_bwrap_all_s": [round(x, 3) for x in boxed],
            "start_true_bare_ms": round(1000 * statistics.median(start_bare), 1),
            "start_true_bwrap_ms": round(1000 * statistics.median(start_boxed), 1),
            "prepare_cold_s": round(cold_s, 3),
            "prepare_warm_s": round(warm_s, 3),
            "prepare_speedup": round(cold_s / warm_s, 1),
            "targets": {"overhead_pct_max": 10, "warm_s_max": 2, "speedup_min": 10},
            "host": f"{platform.platform()}, {os.cpu_count()} CPUs, {shutil.which('bwrap')}",
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Sandbox benchmark",
        "",
        f"Project: {result['project']}; {result['tests']}; median of {args.runs} runs.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| test suite bare, median | {result['suite_bare_s']} s | |",
        f"| test suite in bwrap, median | {result['suite_bwrap_s']} s | |",
        f"| bwrap overhead (medians) | {result['suite_overhead_pct']} % | <= 10 % |",
        f"| test suite bare, best run | {result['suite_bare_min_s']} s | |",
        f"| test suite in bwrap, best run | {result['suite_bwrap_min_s']} s | |",
        f"| bwrap overhead (best runs) | {result['suite_overhead_min_pct']} % | <= 10 % |",
        f"| `true` bare | {result['start_true_bare_ms']} ms | |",
        f"| `true` in bwrap (start to first command) | {result['start_true_bwrap_ms']} ms | |",
        f"| workspace + environment, cold | {result['prepare_cold_s']} s | |",
        f"| workspace + environment, warm (second job) | {result['prepare_warm_s']} s | <= 2 s |",
        f"| cold / warm | {result['prepare_speedup']}x | >= 10x |",
        "",
        f"Host: {result['host']}; 1-minute load average before/after: {result['load_average_1m']}.",
    ]
    (RESULTS / "sandbox.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
