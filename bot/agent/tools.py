"""The tools models may call, confined to the job's work tree.

Every path is resolved (symlinks followed) and must stay inside the work tree; `.git` is off
limits. Tool errors (bad paths, bad arguments, zero or several matches) come back to the model
as tool results and never end the job. Every result is stripped of hidden text, redacted and
capped. There is no tool that pushes, merges, comments or reads the environment.
May import: bot.agent.messages, bot.agent.untrusted, bot.sandbox, bot.toolchain, bot.testrun,
bot.workspace.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from bot.agent.messages import ToolCall, ToolSpec
from bot.agent.untrusted import Redactor, clean_tool_output
from bot.sandbox import Limits, Sandbox
from bot.testrun import run_tests
from bot.toolchain import TestPlan
from bot.workspace import Workspace

OUTPUT_LIMIT = 12_000  # characters of one tool result a model sees
MAX_READ_LINES = 400
MAX_WRITE_BYTES = 256 * 1024
MAX_LIST = 300


class ToolError(Exception):
    """A tool refused or failed; the message goes back to the model."""


@dataclass(frozen=True)
class ToolResult:
    content: str
    is_error: bool = False
    finish: dict[str, Any] | None = None  # set by `finish`


Handler = Callable[[dict[str, Any]], str]


@dataclass
class ToolContext:
    """What tools act on: one work tree, its sandbox and test plan."""

    workspace: Workspace
    sandbox: Sandbox
    plan: TestPlan
    redact: Redactor = field(default_factory=Redactor)
    test_limits: Limits = field(default_factory=lambda: Limits(timeout_s=300))
    output_limit: int = OUTPUT_LIMIT
    # Seconds left of the job's wall-time budget; test runs are cut to fit it.
    remaining_s: Callable[[], float] | None = None

    @cached_property
    def root(self) -> Path:
        """The work tree's real path, resolved once."""
        return self.workspace.path.resolve()

    def resolve(self, raw: object, *, must_exist: bool = False) -> Path:
        """An argument path inside the work tree, or ToolError."""
        if not isinstance(raw, str) or not raw.strip():
            raise ToolError("path must be a non-empty string relative to the repository root")
        if "\0" in raw:
            raise ToolError("path contains a NUL byte")
        root = self.root
        candidate = Path(raw)
        target = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if not target.is_relative_to(root):
            raise ToolError(f"path {raw!r} is outside the repository (after resolving links)")
        rel = target.relative_to(root)
        if rel.parts and rel.parts[0] == ".git":
            raise ToolError(f"path {raw!r} is inside .git, which tools may not touch")
        if must_exist and not target.exists():
            raise ToolError(f"{self.rel(target)} does not exist")
        return target

    def rel(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        return rel or "."


def _spec(name: str, description: str, props: dict[str, Any], required: Sequence[str]) -> ToolSpec:
    return ToolSpec(
        name,
        description,
        {
            "type": "object",
            "properties": props,
            "required": list(required),
            "additionalProperties": False,
        },
    )


SPECS: dict[str, ToolSpec] = {
    s.name: s
    for s in (
        _spec(
            "list_files",
            "List files (tracked and new) under a directory of the repository.",
            {"path": {"type": "string", "description": "directory, default the root"}},
            [],
        ),
        _spec(
            "read_file",
            f"Read a file with line numbers; at most {MAX_READ_LINES} lines per call.",
            {
                "path": {"type": "string"},
                "start_line": {"type": "integer", "minimum": 1},
                "end_line": {"type": "integer", "minimum": 1},
            },
            ["path"],
        ),
        _spec(
            "search_code",
            "Search the repository with a regular expression (ripgrep); returns file:line: text.",
            {
                "pattern": {"type": "string"},
                "path": {"type": "string", "description": "directory or file, default the root"},
                "glob": {"type": "string", "description": "e.g. *.py"},
            },
            ["pattern"],
        ),
        _spec(
            "edit_file",
            "Replace one exact occurrence of old with new. Fails when old occurs "
            "zero or several times: include enough surrounding lines to make it unique.",
            {
                "path": {"type": "string"},
                "old": {"type": "string"},
                "new": {"type": "string"},
            },
            ["path", "old", "new"],
        ),
        _spec(
            "write_file",
            "Create or overwrite a file with the given content.",
            {"path": {"type": "string"}, "content": {"type": "string"}},
            ["path", "content"],
        ),
        _spec(
            "run_tests",
            "Run the repository's tests in the sandbox (no network), optionally only the given "
            "test ids or files. Returns counts, failing ids and the output tail.",
            {"selection": {"type": "array", "items": {"type": "string"}}},
            [],
        ),
        _spec("git_diff", "Show the changes made so far against the base commit.", {}, []),
        _spec(
            "finish",
            "Report your result and stop. Call exactly once, when done.",
            {
                "summary": {"type": "string", "description": "what you did and found"},
                "root_cause": {"type": "string"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "reproduction_test": {
                    "type": "string",
                    "description": "test id that fails before the fix, e.g. tests/test_x.py::t",
                },
            },
            ["summary"],
        ),
    )
}

_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "array": list,
    "boolean": bool,
    "object": dict,
}


def check_arguments(spec: ToolSpec, args: dict[str, Any]) -> None:
    """Required keys present, no unknown keys, JSON types right; ToolError otherwise."""
    props: dict[str, Any] = spec.parameters.get("properties", {})
    missing = [k for k in spec.parameters.get("required", []) if k not in args]
    if missing:
        raise ToolError(f"{spec.name}: missing required argument(s): {', '.join(missing)}")
    unknown = [k for k in args if k not in props]
    if unknown:
        raise ToolError(
            f"{spec.name}: unknown argument(s): {', '.join(unknown)}; "
            f"expected: {', '.join(props) or 'none'}"
        )
    for key, value in args.items():
        want = props[key].get("type")
        py = _PY_TYPES.get(want or "")
        bad_bool = isinstance(value, bool) and want in ("integer", "number")
        if py is not None and (not isinstance(value, py) or bad_bool):
            raise ToolError(f"{spec.name}: argument {key!r} must be a {want}")
        if want == "array" and not all(isinstance(x, str) for x in value):
            raise ToolError(f"{spec.name}: argument {key!r} must be a list of strings")


class Toolbox:
    """A named subset of the tools bound to one context, plus extra handlers (delegate)."""

    def __init__(
        self,
        ctx: ToolContext,
        names: Sequence[str],
        extra: Mapping[str, tuple[ToolSpec, Handler]] | None = None,
    ) -> None:
        self.ctx = ctx
        self._specs = {n: SPECS[n] for n in names}
        self._extra = dict(extra or {})
        self._handlers: dict[str, Handler] = {
            "list_files": self._list_files,
            "read_file": self._read_file,
            "search_code": self._search_code,
            "edit_file": self._edit_file,
            "write_file": self._write_file,
            "run_tests": self._run_tests,
            "git_diff": self._git_diff,
        }

    def specs(self) -> list[ToolSpec]:
        return [*(self._specs.values()), *(s for s, _ in self._extra.values())]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs()]

    def call(self, call: ToolCall) -> ToolResult:
        """Run one tool call; every failure becomes an error result for the model."""
        spec = self._specs.get(call.name) or (
            self._extra[call.name][0] if call.name in self._extra else None
        )
        if spec is None:
            return self._error(f"unknown tool {call.name!r}; available: {', '.join(self.names)}")
        if call.arguments is None:
            raw = call.raw_arguments[:200]
            return self._error(f"{call.name}: arguments were not valid JSON ({raw!r}); retry")
        try:
            check_arguments(spec, call.arguments)
            if call.name == "finish":
                args = dict(call.arguments)
                conf = args.get("confidence")
                if conf is not None and not 0 <= float(conf) <= 1:
                    raise ToolError("finish: confidence must be between 0 and 1")
                return ToolResult("finished", finish=args)
            handler = self._extra[call.name][1] if call.name in self._extra else None
            text = (handler or self._handlers[call.name])(call.arguments)
        except ToolError as exc:
            return self._error(str(exc))
        except (OSError, UnicodeError, subprocess.SubprocessError) as exc:
            return self._error(f"{call.name} failed: {type(exc).__name__}: {exc}")
        return ToolResult(self._clean(text))

    def _clean(self, text: str) -> str:
        return clean_tool_output(text, self.ctx.output_limit, self.ctx.redact)

    def _error(self, message: str) -> ToolResult:
        return ToolResult(self._clean(f"error: {message}"), is_error=True)

    # ---------------------------------------------------------------------------- handlers

    def _files_under(self, prefix: str) -> list[str]:
        """Tracked and new files under a directory (relative to the root), existing ones only."""
        out = self.ctx.workspace.git(
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            f":(literal){prefix}",
            check=False,
        )
        root = self.ctx.root
        return sorted({f for f in out.split("\0") if f and (root / f).exists()})

    def _list_files(self, args: dict[str, Any]) -> str:
        base = self.ctx.resolve(args.get("path", "."), must_exist=True)
        prefix = self.ctx.rel(base)
        if base.is_file():
            return prefix
        files = self._files_under(prefix)
        shown = files[:MAX_LIST]
        more = f"\n[... {len(files) - len(shown)} more]" if len(files) > len(shown) else ""
        return ("\n".join(shown) or "(no files)") + more

    def _read_file(self, args: dict[str, Any]) -> str:
        path = self.ctx.resolve(args["path"], must_exist=True)
        if not path.is_file():
            raise ToolError(f"{self.ctx.rel(path)} is not a file")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        start = int(args.get("start_line", 1))
        end = int(args.get("end_line", start + MAX_READ_LINES - 1))
        if end < start:
            raise ToolError("end_line is before start_line")
        end = min(end, start + MAX_READ_LINES - 1, len(lines))
        if start > max(len(lines), 1):
            raise ToolError(f"{self.ctx.rel(path)} has only {len(lines)} lines")
        width = len(str(end))
        body = "\n".join(f"{n:>{width}}  {lines[n - 1]}" for n in range(start, end + 1))
        tail = f"\n[lines {start}-{end} of {len(lines)}]" if end < len(lines) or start > 1 else ""
        return body + tail

    def _search_code(self, args: dict[str, Any]) -> str:
        base = self.ctx.resolve(args.get("path", "."), must_exist=True)
        argv = [
            "rg",
            "--line-number",
            "--no-heading",
            "--color=never",
            "--max-count=50",
            "--max-columns=300",
            "--glob=!.git",
        ]
        if args.get("glob"):
            argv.append(f"--glob={args['glob']}")
        argv += ["-e", args["pattern"], "--", self.ctx.rel(base)]
        proc = subprocess.run(
            argv, cwd=self.ctx.root, capture_output=True, text=True, errors="replace", timeout=30
        )
        if proc.returncode == 1:
            return "no matches"
        if proc.returncode != 0:
            raise ToolError(f"search failed: {proc.stderr.strip()[:300]}")
        return proc.stdout

    def _edit_file(self, args: dict[str, Any]) -> str:
        path = self.ctx.resolve(args["path"], must_exist=True)
        old, new = args["old"], args["new"]
        if not old:
            raise ToolError("old is empty; use write_file to create a file")
        text = path.read_text(encoding="utf-8")
        count = text.count(old)
        rel = self.ctx.rel(path)
        if count == 0:
            raise ToolError(
                f"old was not found in {rel}; read the file and copy the exact text "
                "(whitespace and indentation included)"
            )
        if count > 1:
            raise ToolError(
                f"old occurs {count} times in {rel}; include more surrounding lines so it "
                "matches exactly once"
            )
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        line = text[: text.index(old)].count("\n") + 1
        return f"edited {rel} at line {line}"

    def _write_file(self, args: dict[str, Any]) -> str:
        path = self.ctx.resolve(args["path"])
        content: str = args["content"]
        if len(content.encode()) > MAX_WRITE_BYTES:
            raise ToolError(f"content is larger than {MAX_WRITE_BYTES // 1024} KB")
        if path.is_dir():
            raise ToolError(f"{self.ctx.rel(path)} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        # A symlink planted inside the tree is checked by resolve(); refuse writing through one.
        if path.is_symlink():
            raise ToolError(f"{self.ctx.rel(path)} is a symbolic link")
        path.write_text(content, encoding="utf-8")
        return f"wrote {self.ctx.rel(path)} ({content.count(chr(10)) + 1} lines)"

    def _run_tests(self, args: dict[str, Any]) -> str:
        selection = tuple(args.get("selection") or ())
        for item in selection:
            if item.startswith("-"):
                raise ToolError(f"selection items are test ids or paths, not options: {item!r}")
            self.ctx.resolve(item.split("::", 1)[0])
        limits = self.ctx.test_limits
        if self.ctx.remaining_s is not None:
            left = self.ctx.remaining_s()
            if left < 1:
                raise ToolError("the job's wall-time budget is spent; no more test runs")
            limits = replace(limits, timeout_s=min(limits.timeout_s, left))
        run = run_tests(self.ctx.sandbox, self.ctx.root, self.ctx.plan, selection, limits)
        c = run.counts
        head = (
            f"exit code {run.exit_code}; {c.passed} passed, {c.failed} failed, "
            f"{c.errored} errors, {c.skipped} skipped"
            + (f"; stopped by limit: {run.limit_hit}" if run.limit_hit else "")
        )
        failing = [*run.failed, *run.errored]
        ids = ("\nfailing: " + ", ".join(failing[:30])) if failing else ""
        tail = run.output[-6000:]
        return f"{head}{ids}\n--- output (tail) ---\n{tail}"

    def _git_diff(self, args: dict[str, Any]) -> str:
        return self.ctx.workspace.diff() or "(no changes)"
