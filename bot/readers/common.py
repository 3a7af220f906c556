"""Limits, text hygiene and small lookups shared by every incident reader.

Incident payloads are untrusted: every string that reaches an `Incident` passes through
`clean()` (control characters dropped, length capped), frame lists are capped to the innermost
`MAX_FRAMES`, and JSON lookups never raise on a wrong type. May import: bot.errors, bot.incident.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bot.errors import IncidentFormatError
from bot.incident import Frame

MAX_FILE_BYTES = 10 * 1024 * 1024  # larger incident files are refused
MAX_FRAMES = 200  # the innermost frames are kept; the rest are counted in extra
MAX_MESSAGE_BYTES = 4096  # error messages
MAX_TITLE_CHARS = 300
MAX_PATH_CHARS = 1024  # file names and function names
MAX_CONTEXT_LINES = 11  # source lines kept around a frame's line
MAX_CONTEXT_LINE_CHARS = 500
MAX_EXTRA_CHARS = 1024  # any string stored in Incident.extra
MAX_LINE_CHARS = 4000  # text lines are cut to this before any pattern runs on them
MAX_SCAN_DEPTH = 20  # how deep a walk over JSON values goes
MAX_SCAN_STRINGS = 10_000  # how many strings such a walk looks at

ACCEPTED_FORMATS = (
    "accepted: a Sentry event (REST API JSON), a Sentry webhook (issue, event_alert, error), "
    "a PagerDuty V3 webhook, a PagerDuty incident alerts response, a Python traceback, "
    "a Node.js stack trace, or a JSON log holding one of those (see docs/incident-formats.md)"
)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_NL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_SHA = re.compile(r"[0-9a-f]{7,40}")
_NOT_APP_MARKERS = ("/site-packages/", "/dist-packages/", "/node_modules/")
_PY_STDLIB = re.compile(r"(^|/)lib/python\d+(\.\d+)?/")


def strip_ansi(text: str) -> str:
    """Drop terminal colour and cursor sequences that coloured logs carry."""
    return _ANSI.sub("", text)


def clean(value: Any, limit: int = MAX_TITLE_CHARS, *, keep_newlines: bool = False) -> str | None:
    """`value` as one safe string: control characters dropped, at most `limit` characters.

    None, empty and whitespace-only values become None. Non-strings (numbers) are converted;
    containers are refused (None), so a hostile payload cannot smuggle a huge repr in.
    """
    if value is None or isinstance(value, dict | list | tuple | set | bytes):
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit * 4 + 64:  # bound the work before the regex runs
        text = text[: limit * 4 + 64]
    text = strip_ansi(text)
    if keep_newlines:
        text = _CONTROL_KEEP_NL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    else:
        text = _CONTROL.sub("", _NEWLINES.sub(" ", text))
    text = text.strip()
    if not text:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def clean_code_line(value: Any) -> str:
    """A source line: indentation kept, control characters dropped, length capped."""
    if not isinstance(value, str):
        return ""
    text = _CONTROL.sub("", strip_ansi(value[: MAX_CONTEXT_LINE_CHARS * 2]))
    text = text.rstrip()
    if len(text) > MAX_CONTEXT_LINE_CHARS:
        text = text[: MAX_CONTEXT_LINE_CHARS - 1] + "…"
    return text


def clean_message(value: Any) -> str | None:
    """An error message: newlines kept, at most MAX_MESSAGE_BYTES of UTF-8."""
    text = clean(value, MAX_MESSAGE_BYTES, keep_newlines=True)
    if text is None:
        return None
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_MESSAGE_BYTES:
        text = encoded[: MAX_MESSAGE_BYTES - 3].decode("utf-8", "ignore").rstrip() + "…"
    return text


def one_line(text: str, limit: int = 200) -> str:
    """Text fit for an error message: one line, printable, short."""
    return clean(text.replace("\n", " "), limit) or ""


def get(data: Any, *keys: str | int) -> Any:
    """`data[k1][k2]...`, or None as soon as a step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
            data = data[key]
        else:
            if not isinstance(data, Mapping):
                return None
            data = data.get(key)
    return data


def require_mapping(data: Any, path: str, what: str) -> Mapping[str, Any]:
    """`data` if it is a JSON object, else IncidentFormatError naming the JSON path."""
    if not isinstance(data, Mapping):
        state = "is missing" if data is None else f"is {type(data).__name__}, not an object"
        raise IncidentFormatError(f"{what}: {path} {state}")
    return data


def require_text(data: Any, path: str, what: str) -> str:
    """A required scalar field as a string, else IncidentFormatError naming the JSON path."""
    text = clean(data, MAX_EXTRA_CHARS)
    if text is None:
        raise IncidentFormatError(f"{what}: {path} is missing")
    return text


def as_int(value: Any, default: int | None = None) -> int | None:
    """An integer from an int or a numeric string (Sentry sends counts as strings)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 19:
        return int(value.strip())
    return default


def line_number(value: Any) -> int | None:
    """A 1-based line number, or None when absent or nonsense (0, negative, not a number)."""
    number = as_int(value)
    return number if number is not None and number > 0 else None


def path_is_app(path: str) -> bool:
    """Whether a frame's file looks like the application's own code (not a dependency)."""
    normalized = path.replace("\\", "/")
    if any(marker in normalized for marker in _NOT_APP_MARKERS):
        return False
    if normalized.startswith(("node:", "internal/", "<")) or normalized in ("native", ""):
        return False
    return not (_PY_STDLIB.search(normalized) and "/site-packages/" not in normalized)


def make_frame(
    file: Any,
    line: Any = None,
    function: Any = None,
    *,
    in_app: Any = None,
    context: Sequence[Any] = (),
    module: Any = None,
) -> Frame | None:
    """A cleaned Frame, or None when there is no file to point at.

    `in_app` is the source's own verdict when it gave a boolean; otherwise the path decides.
    """
    path = clean(file, MAX_PATH_CHARS)
    if path is None:
        return None
    lines = [clean_code_line(raw) for raw in list(context)[:MAX_CONTEXT_LINES]]
    return Frame(
        file=path,
        line=line_number(line),
        function=clean(function, MAX_PATH_CHARS),
        in_app=in_app if isinstance(in_app, bool) else path_is_app(path),
        context=tuple(lines),
        module=clean(module, MAX_PATH_CHARS),
    )


def cap_frames(raw: Any) -> tuple[list[Any], int]:
    """The innermost MAX_FRAMES items of a frame list (outermost first) and how many were cut."""
    if not isinstance(raw, list):
        return [], 0
    if len(raw) <= MAX_FRAMES:
        return raw, 0
    return raw[-MAX_FRAMES:], len(raw) - MAX_FRAMES


def release_ref(release: str | None) -> str | None:
    """The commit SHA a release names: `1a2b3c4` (7-40 hex) or `name@1a2b3c4`, else None.

    A run of decimal digits shorter than 40 (a build number) is not taken for a SHA.
    """
    if not release:
        return None
    candidate = release.rsplit("@", 1)[-1].strip().lower()
    if _SHA.fullmatch(candidate) and (len(candidate) == 40 or not candidate.isdigit()):
        return candidate
    return None


def repo_for(mapping: Mapping[str, str] | None, *keys: Any) -> str | None:
    """The first `owner/name` the mapping holds for any of `keys` (None keys are skipped)."""
    if not mapping:
        return None
    for key in keys:
        if key is None or isinstance(key, dict | list):
            continue
        repo = mapping.get(str(key))
        if repo:
            return repo
    return None


def iter_strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, breadth first, bounded in depth and count."""
    queue: deque[tuple[Any, int]] = deque([(value, 0)])
    seen = 0
    while queue and seen < MAX_SCAN_STRINGS:
        item, depth = queue.popleft()
        if isinstance(item, str):
            seen += 1
            yield item
        elif depth < MAX_SCAN_DEPTH and isinstance(item, Mapping):
            queue.extend((v, depth + 1) for v in list(item.values())[:MAX_SCAN_STRINGS])
        elif depth < MAX_SCAN_DEPTH and isinstance(item, list):
            queue.extend((v, depth + 1) for v in item[:MAX_SCAN_STRINGS])


def small_extra(**values: Any) -> dict[str, Any]:
    """An `extra` dict without None values, strings cleaned and capped."""
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool | int | float):
            extra[key] = value
        elif isinstance(value, list):
            items = [clean(v, MAX_EXTRA_CHARS) for v in value[:20]]
            extra[key] = [v for v in items if v is not None]
        else:
            text = clean(value, MAX_EXTRA_CHARS)
            if text is not None:
                extra[key] = text
    return extra
