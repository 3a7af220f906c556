"""Read a Python traceback printed as text (a log, a terminal, a CI job) into an `Incident`.

Handles chained exceptions (the last traceback is the one raised), tracebacks inside log lines
whose every line carries the same kind of prefix (`web-1  | `, a timestamp), SyntaxError's
frame without a function, and Python 3.11+ caret lines. May import: bot.errors, bot.incident,
bot.readers.common.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

HEADER = "Traceback (most recent call last):"
CHAIN_MARKERS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
MAX_MESSAGE_LINES = 50
MAX_CHAIN = 5

_FRAME = re.compile(r'\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<function>.+))?$')
_FRAME_ANYWHERE = re.compile(
    r'File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<function>.+))?$'
)
_EXCEPTION = re.compile(r"(?P<type>[A-Za-z_][\w.]{0,200})(?::(?P<message>.*))?")
_CARETS = re.compile(r"\s*[\^~]+\s*")
# A line that starts a new log record ends a multi-line exception message.
_LOG_RECORD = re.compile(
    r"\s*\[?(\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2})"
    r"|(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b"
    r"|[\w.]+:(DEBUG|INFO|WARNING|ERROR|CRITICAL):"
)


@dataclass
class _Block:
    """One traceback: its raw frames (file, line, function, code) and its exception line."""

    frames: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    error_type: str | None = None
    message: str | None = None
    exception_line: str | None = None
    end: int = 0  # index of the first line after the block


def contains_python_traceback(text: str) -> bool:
    return HEADER in text


def _prefix_pattern(prefix: str) -> re.Pattern[str] | None:
    """A pattern for the per-line log prefix seen before the header.

    Every run of digits may change from line to line, in value and in width (timestamps whose
    trailing zeros are trimmed, a counter passing 9).
    """
    if not prefix:
        return None
    parts = [
        r"\d+" if run[0].isdigit() else re.escape(run)
        for run in re.findall(r"\d+|\D+", prefix[:200])
    ]
    return re.compile("".join(parts))


def _lines(text: str) -> list[str]:
    return [line[:MAX_LINE_CHARS] for line in strip_ansi(text).splitlines()]


def _parse_block(lines: list[str], start: int, stop: int) -> _Block:
    """Parse the traceback whose header is lines[start]; never read at or past `stop`."""
    header_line = lines[start]
    prefix = _prefix_pattern(header_line[: header_line.index(HEADER)])
    block = _Block(end=stop)
    expect_code = False
    index = start + 1
    while index < stop:
        raw = lines[index]
        line = raw
        if prefix is not None:
            matched = prefix.match(raw)
            if matched:
                line = raw[matched.end() :]
        index += 1
        frame = _FRAME.match(line) or (_FRAME_ANYWHERE.search(line) if prefix else None)
        if frame:
            block.frames.append((frame["file"], frame["line"], frame["function"], None))
            expect_code = True
            continue
        if not line.strip():
            continue
        if line[:1] in (" ", "\t"):
            stripped = line.strip()
            if expect_code and block.frames and not _CARETS.fullmatch(line):
                file, number, function, _ = block.frames[-1]
                block.frames[-1] = (file, number, function, stripped)
                expect_code = False
            continue
        # The first unindented line after the frames is the exception.
        block.exception_line = line.rstrip()
        match = _EXCEPTION.fullmatch(line.rstrip())
        message_lines: list[str] = []
        if match:
            block.error_type = match["type"]
            if match["message"] is not None:
                message_lines.append(match["message"].strip())
        else:
            message_lines.append(line.strip())
        if prefix is None:  # continuation lines of a multi-line message
            while index < stop and len(message_lines) < MAX_MESSAGE_LINES:
                follow = lines[index]
                if (
                    not follow.strip()
                    or HEADER in follow
                    or follow.strip() in CHAIN_MARKERS
                    or _LOG_RECORD.match(follow)
                ):
                    break
                message_lines.append(follow.rstrip())
                index += 1
        block.message = "\n".join(message_lines).strip() or None
        break
    block.end = index
    return block


def from_python_traceback(text: str) -> Incident:
    """The last Python traceback in `text` as an Incident (source `traceback`).

    Raises IncidentFormatError when there is no traceback or it holds neither a frame nor an
    exception line.
    """
    lines = _lines(text)
    headers = [i for i, line in enumerate(lines) if HEADER in line]
    if not headers:
        raise IncidentFormatError(f"Python traceback: no line reading {HEADER!r}")
    last = headers[-1]
    block = _parse_block(lines, last, len(lines))
    if not block.frames and block.exception_line is None:
        raise IncidentFormatError(
            f"Python traceback: no frames and no exception line after {HEADER!r}"
        )

    # Earlier exceptions of the same chain, nearest first ("During handling of ...").
    chain: list[str] = []
    position = len(headers) - 1
    while position > 0 and len(chain) < MAX_CHAIN:
        previous = _parse_block(lines, headers[position - 1], headers[position])
        between = lines[previous.end : headers[position]]
        if not any(marker in line for line in between for marker in CHAIN_MARKERS):
            break
        if previous.exception_line:
            chain.append(previous.exception_line)
        position -= 1

    omitted = max(0, len(block.frames) - MAX_FRAMES)
    frames: list[Frame] = []
    for file, number, function, code in block.frames[-MAX_FRAMES:]:
        made = make_frame(file, number, function, context=(code,) if code else ())
        if made is not None:
            frames.append(made)

    error_type = clean(block.error_type)
    message = clean_message(block.message)
    first_line = message.splitlines()[0] if message else None
    if error_type and first_line:
        title = f"{error_type}: {first_line}"
    else:
        title = error_type or first_line or "Python traceback"
    return Incident(
        source="traceback",
        title=clean(title) or "Python traceback",
        error_type=error_type,
        error_message=message,
        frames=tuple(frames),
        extra=small_extra(
            language="python",
            chained_exceptions=chain or None,
            frames_omitted=omitted or None,
            tracebacks_in_text=len(headers) if len(headers) > 1 else None,
        ),
    )
