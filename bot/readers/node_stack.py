"""Read a Node.js (V8) stack trace printed as text into an `Incident`.

V8 prints the error line, then one `    at ...` line per frame, innermost first; the Incident
stores frames outermost first. `node:internal/...` and `node_modules` frames are not in-app.
Log prefixes before each line are tolerated (the four-space `at` indent survives them).
May import: bot.errors, bot.incident, bot.readers.common.
"""

from __future__ import annotations

import re

from bot.errors import IncidentFormatError
from bot.incident import Frame, Incident
from bot.readers.common import (
    MAX_FRAMES,
    MAX_LINE_CHARS,
    clean,
    clean_message,
    make_frame,
    small_extra,
    strip_ansi,
)

MAX_HEADER_LOOKBACK = 20  # lines above the first `at` line searched for the error line

_EVAL_INNER = re.compile(r"\((?P<loc>[^()]+:\d+:\d+)\)")
_ERROR_LINE = re.compile(
    r"(?<![\w$.])(?P<type>[A-Za-z_$][\w$.]{0,200}?(?:Error|Exception|Rejection|Failure)|Error)"
    r"(?: \[(?P<code>[\w-]{1,100})\])?(?:: (?P<message>.*)|\s*$)"
)
_NO_LOCATION = ("native", "<anonymous>", "unknown location")


def _frame_text(line: str) -> str | None:
    """The text after `at ` when `line` is a V8 frame line (possibly behind a log prefix)."""
    index = line.find("    at ")
    if index >= 0:
        return line[index + 7 :].strip()
    stripped = line.lstrip()
    if stripped.startswith("at ") and stripped != line:
        return stripped[3:].strip()
    return None


def _parse_frame(text: str) -> tuple[str, str, str | None] | None:
    """(file, line, function) from the text of an `at` line; None for locationless frames."""
    if text.startswith("async "):
        text = text[6:]
    function: str | None = None
    location = text
    if text.endswith(")") and " (" in text:
        split = text.index(" (")
        function, location = text[:split], text[split + 2 : -1]
    if location.startswith("eval at "):
        inner = _EVAL_INNER.search(location)
        if inner is None:
            return None
        location = inner["loc"]
    if location in _NO_LOCATION or location.startswith("index "):
        return None
    # file:line:column (or file:line); split from the right, the file may hold colons.
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        file, line = parts[0], parts[1]
    elif len(parts) >= 2 and parts[-1].isdigit():
        file, line = location.rsplit(":", 1)[0], parts[-1]
    else:
        return None
    if not file:
        return None
    if file.startswith("file://"):
        file = file[7:]
    return file, line, function


def contains_node_stack(text: str) -> bool:
    return any(
        (frame := _frame_text(line[:MAX_LINE_CHARS])) is not None and _parse_frame(frame)
        for line in text.splitlines()
    )


def from_node_stack(text: str) -> Incident:
    """The last Node.js stack trace in `text` as an Incident (source `nodejs`)."""
    lines = [line[:MAX_LINE_CHARS] for line in strip_ansi(text).splitlines()]
    # Runs of consecutive `at` lines; the last run is the stack to read.
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        is_frame = _frame_text(line) is not None
        if is_frame and start is None:
            start = index
        elif not is_frame and start is not None and not line.strip().startswith("..."):
            # ("... 3 lines matching cause stack trace ..." continues a run)
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(lines)))
    parsed: list[tuple[str, str, str | None]] = []
    for begin, end in reversed(runs):
        frame_texts = [_frame_text(line) for line in lines[begin:end]]
        parsed = [p for t in frame_texts if t and (p := _parse_frame(t)) is not None]
        if parsed:
            break
    if not parsed:
        raise IncidentFormatError("Node.js stack: no '    at file:line:column' frame lines")

    # The error line: the nearest line above the run that reads like `TypeError: message`.
    error_type: str | None = None
    message: str | None = None
    code: str | None = None
    for index in range(begin - 1, max(-1, begin - 1 - MAX_HEADER_LOOKBACK), -1):
        match = _ERROR_LINE.search(lines[index])
        if match:
            error_type, code = match["type"], match["code"]
            rest = [match["message"] or ""] + [line.rstrip() for line in lines[index + 1 : begin]]
            message = "\n".join(rest).strip() or None
            break

    innermost_first = parsed[:MAX_FRAMES]
    frames: list[Frame] = []
    for file, number, function in reversed(innermost_first):
        made = make_frame(file, number, function)
        if made is not None:
            frames.append(made)
    error_type = clean(error_type)
    message = clean_message(message)
    first_line = message.splitlines()[0] if message else None
    title = f"{error_type}: {first_line}" if error_type and first_line else error_type
    return Incident(
        source="nodejs",
        title=clean(title or first_line) or "Node.js error",
        error_type=error_type,
        error_message=message,
        frames=tuple(frames),
        extra=small_extra(
            language="javascript",
            error_code=code,
            frames_omitted=max(0, len(parsed) - MAX_FRAMES) or None,
        ),
    )
