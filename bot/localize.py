"""Deterministic localization before any model call: stack frames -> repo files and symbols.

Each frame's path is matched to a tracked file by path suffix (also for frames printed from an
installed copy, e.g. `/app/src/...`, `site-packages/<pkg>/...`, or from build output such as
`dist/`), the enclosing function or class is found (Python `ast`; a light scanner for
JavaScript/TypeScript), recent commits touching the frame's lines are listed as suspects
(`git log -L`), and a short repo map is added. `Localization.context_text()` is the compact
text the agent team starts from; `context_tokens` is its size estimate.
May import: bot.incident, bot.agent.untrusted, bot.testpaths, bot.workspace.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bot.agent.untrusted import quote_untrusted
from bot.incident import Frame, Incident
from bot.testpaths import is_test_path
from bot.workspace import run_git

SOURCE_EXTS = (".py", ".ts", ".tsx", ".js", ".mjs", ".cjs", ".jsx")
BUILD_DIRS = ("dist", "build", "out", ".next", "target")
PACKAGE_MARKERS = ("site-packages", "dist-packages", "node_modules")
SNIPPET_LINES = 40
MAX_SUSPECTS_PER_FRAME = 3
MAX_MAP_FILES = 60


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate: about four characters per token."""
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class Symbol:
    """A function or class enclosing a line: qualified name and 1-based line range."""

    name: str
    kind: str  # function | class
    start: int
    end: int


@dataclass(frozen=True)
class MatchedFrame:
    """A stack frame mapped to a repository file."""

    frame: Frame
    path: str  # relative to the repository root
    line: int | None
    symbol: Symbol | None
    snippet: str  # numbered source lines around `line` (the frame line marked with >>)
    how: str  # suffix | package | build | module


@dataclass(frozen=True)
class SuspectCommit:
    sha: str
    date: str
    subject: str
    path: str
    line: int | None


@dataclass(frozen=True)
class Localization:
    """What localization found; `files` are ranked, most likely first."""

    incident: Incident
    files: tuple[str, ...]
    matched_frames: tuple[MatchedFrame, ...] = ()
    unmatched_frames: tuple[Frame, ...] = ()
    suspect_commits: tuple[SuspectCommit, ...] = ()
    repo_map: str = ""
    context_tokens: int = 0
    _text: str = field(default="", repr=False)

    @property
    def no_match(self) -> bool:
        """The incident has in-app frames and none of them is a file of this repository."""
        return bool(self.incident.in_app_frames) and not self.matched_frames

    @property
    def error(self) -> str | None:
        if not self.no_match:
            return None
        shown = ", ".join(f.file for f in self.incident.in_app_frames[-3:])
        return (
            f"none of the incident's stack frames matches a file in the repository "
            f"(frames: {shown}); check that the incident belongs to this repository and commit"
        )

    def context_text(self) -> str:
        return self._text

    def to_dict(self) -> dict[str, object]:
        return {
            "files": list(self.files),
            "matched_frames": [
                {
                    "file": m.frame.file,
                    "path": m.path,
                    "line": m.line,
                    "symbol": m.symbol.name if m.symbol else None,
                    "how": m.how,
                }
                for m in self.matched_frames
            ],
            "unmatched_frames": [f.file for f in self.unmatched_frames],
            "suspect_commits": [
                {"sha": c.sha, "date": c.date, "subject": c.subject, "path": c.path}
                for c in self.suspect_commits
            ],
            "context_tokens": self.context_tokens,
        }


# ---------------------------------------------------------------------------- frame matching


def _clean(path: str) -> str:
    path = path.replace("\\", "/")
    path = re.sub(r"^(file|webpack|webpack-internal|app)://+[^/]*", "", path)
    path = path.split("?", 1)[0]
    return re.sub(r"^(\./)+", "", path)


def _suffix_score(frame_parts: list[str], file_parts: list[str]) -> int:
    n = 0
    while (
        n < len(frame_parts) and n < len(file_parts) and frame_parts[-1 - n] == file_parts[-1 - n]
    ):
        n += 1
    return n


def _variants(frame_path: str) -> list[tuple[list[str], str, int]]:
    """(path parts to suffix-match, how, minimum score) candidates for one frame path."""
    parts = [p for p in frame_path.split("/") if p and p != "."]
    out: list[tuple[list[str], str, int]] = [(parts, "suffix", 1)]
    for marker in PACKAGE_MARKERS:
        if marker in parts:
            rest = parts[len(parts) - parts[::-1].index(marker) :]
            if rest:
                # the package directory plus the file: at least two components must agree
                out.insert(0, (rest, "package", min(2, len(rest))))
    for i, part in enumerate(parts):
        if part in BUILD_DIRS and i + 1 < len(parts):
            rest = parts[i + 1 :]
            stem, _, _ext = rest[-1].rpartition(".")
            for ext in SOURCE_EXTS:
                out.append(([*rest[:-1], f"{stem or rest[-1]}{ext}"], "build", 1))
            break
    return out


def _match(frame: Frame, files: list[str], sources: dict[str, str]) -> tuple[str, str] | None:
    """The repository file a frame points at, and how it was found; None when none fits."""
    if frame.module and not frame.file.endswith((".js", ".ts", ".mjs")):
        mod = frame.module.replace(".", "/")
        for cand in (f"{mod}.py", f"{mod}/__init__.py"):
            hits = [f for f in files if f == cand or f.endswith("/" + cand)]
            if len(hits) == 1:
                return hits[0], "module"
    path = _clean(frame.file)
    if not path:
        return None
    sources_first = [f for f in files if f.split("/", 1)[0] not in BUILD_DIRS]
    best: tuple[int, list[str], str] = (0, [], "")
    for pool in (sources_first, files):
        for parts, how, minimum in _variants(path):
            scored: dict[int, list[str]] = {}
            for f in pool:
                score = _suffix_score(parts, f.split("/"))
                if score >= minimum:
                    scored.setdefault(score, []).append(f)
            if scored and max(scored) > best[0]:
                best = (max(scored), scored[max(scored)], how)
        if best[1]:
            break
    score, cands, how = best
    if not cands:
        return None
    if not frame.in_app and score < 2:
        return None  # a library frame that only shares a file name with a repo file
    if len(cands) > 1 and frame.function:
        fn = frame.function.split(".")[-1].strip("<>")
        defined = [c for c in cands if re.search(rf"\b{re.escape(fn)}\b", sources.get(c, ""))]
        cands = defined or cands
    cands.sort(key=lambda c: (is_test_path(c), len(c), c))
    return cands[0], how


# -------------------------------------------------------------------------- enclosing symbols


def _python_symbol(source: str, line: int) -> Symbol | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found: Symbol | None = None

    def visit(node: ast.AST, prefix: str) -> None:
        nonlocal found
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                end = child.end_lineno or child.lineno
                name = f"{prefix}{child.name}"
                if start <= line <= end:
                    kind = "class" if isinstance(child, ast.ClassDef) else "function"
                    found = Symbol(name, kind, start, end)
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


_JS_DEF = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:"
    r"function\s*\*?\s*(?P<f>[\w$]+)"
    r"|class\s+(?P<c>[\w$]+)"
    r"|(?:const|let|var)\s+(?P<v>[\w$]+)\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|[\w$]+\s*=>)"
    r"|(?:static\s+|async\s+|get\s+|set\s+)*(?P<m>(?!if\b|for\b|while\b|switch\b|catch\b)[\w$]+)"
    r"\s*\([^)]*\)\s*(?::\s*[^{]+)?\{)"
)


def _js_symbol(source: str, line: int) -> Symbol | None:
    """The nearest enclosing function/class by a backward scan and brace matching."""
    lines = source.splitlines()
    for start in range(min(line, len(lines)), 0, -1):
        m = _JS_DEF.match(lines[start - 1])
        if not m:
            continue
        depth, opened, end = 0, False, start
        for i in range(start - 1, len(lines)):
            text = re.sub(r"(['\"`]).*?\1|//.*$", "", lines[i])
            depth += text.count("{") - text.count("}")
            opened = opened or "{" in text
            if opened and depth <= 0:
                end = i + 1
                break
        else:
            end = len(lines)
        if start <= line <= end:
            name = m.group("f") or m.group("c") or m.group("v") or m.group("m") or "?"
            return Symbol(name, "class" if m.group("c") else "function", start, end)
    return None


def enclosing_symbol(path: str, source: str, line: int | None) -> Symbol | None:
    if line is None:
        return None
    if path.endswith(".py"):
        return _python_symbol(source, line)
    if path.endswith(SOURCE_EXTS):
        return _js_symbol(source, line)
    return None


def _snippet(source: str, line: int | None, symbol: Symbol | None) -> str:
    lines = source.splitlines()
    if not lines:
        return ""
    if symbol and symbol.end - symbol.start < SNIPPET_LINES:
        lo, hi = symbol.start, symbol.end
    elif line:
        lo, hi = max(1, line - SNIPPET_LINES // 2), line + SNIPPET_LINES // 2
    else:
        lo, hi = 1, SNIPPET_LINES
    hi = min(hi, len(lines))
    width = len(str(hi))
    return "\n".join(
        f"{'>>' if n == line else '  '} {n:>{width}} {lines[n - 1]}" for n in range(lo, hi + 1)
    )


# ------------------------------------------------------------------------------- repo history


def _suspects(worktree: Path, path: str, line: int | None) -> list[SuspectCommit]:
    if line is None:
        return []
    lo = max(1, line - 2)
    out = run_git(
        "log",
        "-s",
        f"-n{MAX_SUSPECTS_PER_FRAME}",
        "--date=short",
        "--format=%H%x09%ad%x09%s",
        f"-L{lo},{line + 2}:{path}",
        cwd=worktree,
        check=False,
    )
    commits = []
    for row in out.splitlines():
        sha, _, rest = row.partition("\t")
        date, _, subject = rest.partition("\t")
        if re.fullmatch(r"[0-9a-f]{40}", sha):
            commits.append(SuspectCommit(sha, date, subject[:120], path, line))
    return commits


def _outline(path: str, source: str) -> list[str]:
    if not path.endswith(".py"):
        return [
            f"{m.group('f') or m.group('c') or m.group('v')}"
            for m in map(_JS_DEF.match, source.splitlines())
            if m and (m.group("f") or m.group("c") or m.group("v"))
        ][:15]
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = [
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            names.append(f"class {node.name}({', '.join(methods[:8])})")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(f"def {node.name}")
    return names[:15]


def _repo_map(files: list[str], ranked: list[str], sources: dict[str, str]) -> str:
    rows: list[str] = []
    for f in ranked[:3]:
        outline = _outline(f, sources.get(f, ""))
        rows.append(f"{f}: {'; '.join(outline)}" if outline else f)
    rest = [f for f in files if f not in ranked[:3]]
    shown = rest[:MAX_MAP_FILES]
    rows.extend(shown)
    if len(rest) > len(shown):
        dirs: dict[str, int] = {}
        for f in rest[len(shown) :]:
            top = f.split("/", 1)[0] if "/" in f else "."
            dirs[top] = dirs.get(top, 0) + 1
        rows.append("... and " + ", ".join(f"{n} more in {d}/" for d, n in sorted(dirs.items())))
    return "\n".join(rows)


# ------------------------------------------------------------------------------------ entry


def _tracked(worktree: Path) -> list[str]:
    out = run_git("ls-files", "-z", cwd=worktree, check=False)
    return sorted(f for f in out.split("\0") if f)


def _read(worktree: Path, path: str) -> str:
    try:
        return (worktree / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def localize(incident: Incident, worktree: Path) -> Localization:
    """Map the incident's frames to files, symbols and suspect commits; no model involved."""
    files = _tracked(worktree)
    source_files = [f for f in files if f.endswith(SOURCE_EXTS)]  # readable for symbols
    sources: dict[str, str] = {}
    names = {_clean(fr.file).rsplit("/", 1)[-1].rsplit(".", 1)[0] for fr in incident.frames}
    for f in source_files:  # only read files a frame could point at (same stem)
        if PurePosixPath(f).stem in names:
            sources[f] = _read(worktree, f)

    matched: list[MatchedFrame] = []
    unmatched: list[Frame] = []
    scores: dict[str, float] = {}
    frames = list(incident.frames)
    for depth, frame in enumerate(reversed(frames)):  # innermost first
        hit = _match(frame, files, sources)
        if hit is None:
            if frame.in_app:
                unmatched.append(frame)
            continue
        path, how = hit
        source = sources.get(path) or _read(worktree, path)
        sources[path] = source
        symbol = enclosing_symbol(path, source, frame.line)
        matched.append(
            MatchedFrame(frame, path, frame.line, symbol, _snippet(source, frame.line, symbol), how)
        )
        weight = (1.0 if frame.in_app else 0.5) / (1 + depth)
        scores[path] = scores.get(path, 0.0) + weight * (0.5 if is_test_path(path) else 1.0)

    # Paths named in the title or message (e.g. a CI failure without a traceback).
    text = " ".join(x for x in (incident.title, incident.error_message) if x)
    for token in set(re.findall(r"[\w./-]+\.(?:py|ts|tsx|js|mjs)\b", text)):
        for f in files:
            if f == token or f.endswith("/" + token.lstrip("./")):
                scores[f] = scores.get(f, 0.0) + 0.3
    ranked = sorted(scores, key=lambda f: (-scores[f], f))

    suspects: list[SuspectCommit] = []
    seen: set[str] = set()
    for m in matched[:5]:
        for c in _suspects(worktree, m.path, m.line):
            if c.sha not in seen:
                seen.add(c.sha)
                suspects.append(c)

    repo_map = _repo_map(files, ranked, sources)
    loc = Localization(
        incident=incident,
        files=tuple(ranked),
        matched_frames=tuple(matched),
        unmatched_frames=tuple(reversed(unmatched)),
        suspect_commits=tuple(suspects),
        repo_map=repo_map,
    )
    text_out = render_context(loc)
    return Localization(
        incident=loc.incident,
        files=loc.files,
        matched_frames=loc.matched_frames,
        unmatched_frames=loc.unmatched_frames,
        suspect_commits=loc.suspect_commits,
        repo_map=loc.repo_map,
        context_tokens=estimate_tokens(text_out),
        _text=text_out,
    )


def render_context(loc: Localization) -> str:
    """The compact starting context: incident, frames with code, suspects, repo map."""
    inc = loc.incident
    parts = [
        f"Incident ({inc.source}): {inc.error_type or 'error'}",
        quote_untrusted("incident title", inc.title),
    ]
    if inc.error_message:
        parts.append(quote_untrusted("error message", inc.error_message[:2000]))
    if loc.files:
        parts.append("Ranked files: " + ", ".join(loc.files[:5]))
    for m in loc.matched_frames[:6]:  # innermost first
        where = f"{m.path}:{m.line}" if m.line else m.path
        sym = (
            f" in {m.symbol.kind} {m.symbol.name} (lines {m.symbol.start}-{m.symbol.end})"
            if m.symbol
            else ""
        )
        parts.append(f"Frame {m.frame.file} -> {where}{sym} [{m.how}]")
        if m.snippet:
            parts.append(quote_untrusted(f"source {m.path}", m.snippet))
    if loc.unmatched_frames:
        parts.append(
            "In-app frames not found in the repository: "
            + ", ".join(f"{f.file}:{f.line}" for f in loc.unmatched_frames[:5])
        )
    if loc.suspect_commits:
        rows = [
            f"{c.sha[:10]} {c.date} {c.path}:{c.line} {c.subject}" for c in loc.suspect_commits[:6]
        ]
        parts.append("Recent commits touching these lines:")
        parts.append(quote_untrusted("git log", "\n".join(rows)))
    parts.append("Repository map:")
    parts.append(quote_untrusted("repository map", loc.repo_map))
    return "\n".join(parts)
