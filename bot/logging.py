"""Structured logs: JSON lines in production, readable lines in a terminal, never a secret.

`configure_logging(settings)` sets up structlog and routes the stdlib `logging` records of
libraries (uvicorn, dramatiq, httpx) through the same processors. `bind_job_context(...)`
binds delivery id, job id and repo to the current context (contextvars), so every line logged
while a job runs carries them. The last processor before rendering redacts secrets with
bot.redact. May import: bot.redact, bot.settings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.redact import add_known_secrets, redact
from bot.settings import Settings

LogFormat = Literal["auto", "json", "console"]

JOB_KEYS = ("delivery_id", "job_id", "repo")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def redact_processor(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact secret values and secret-named keys in the whole event."""
    cleaned: MutableMapping[str, Any] = redact(dict(event_dict))
    return dict(cleaned)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _wants_json(fmt: LogFormat, stream: TextIO) -> bool:
    if fmt == "auto":
        return not (hasattr(stream, "isatty") and stream.isatty())
    return fmt == "json"


def configure_logging(
    settings: Settings | None = None,
    *,
    fmt: LogFormat | None = None,
    level: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging once per process (idempotent)."""
    out = stream if stream is not None else sys.stderr
    chosen: LogFormat = fmt or (settings.selfheal_log_format if settings else "auto")
    level_name = level or (settings.selfheal_log_level if settings else "INFO")
    if settings is not None:
        add_known_secrets(settings.secret_values())
    as_json = _wants_json(chosen, out)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=hasattr(out, "isatty") and out.isatty())
    )
    exc_processors: list[Processor] = (
        # No local variables in tracebacks: they are where tokens hide.
        [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
        if as_json
        else [structlog.processors.format_exc_info]
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exc_processors,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.set_name("selfheal")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "selfheal"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_name.upper())
    # uvicorn's own log config (the `uvicorn` command installs it) gives its loggers private
    # handlers; send their lines through this handler instead.
    for name in UVICORN_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; `log.info("event", key=value)`."""
    return structlog.stdlib.get_logger(name)


def bind_job_context(
    *, delivery_id: str | None = None, job_id: str | None = None, repo: str | None = None
) -> None:
    """Bind the job's identity to the current context: every later line carries it."""
    values = {"delivery_id": delivery_id, "job_id": job_id, "repo": repo}
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear_job_context() -> None:
    """Forget the job's identity (call when the job ends)."""
    structlog.contextvars.unbind_contextvars(*JOB_KEYS)


@contextmanager
def job_context(
    *, delivery_id: str | None = None, job_id: str | None = None, repo: str | None = None
) -> Iterator[None]:
    """`with job_context(job_id=..., repo=...):` binds for the block and restores after."""
    with structlog.contextvars.bound_contextvars(
        **{
            k: v
            for k, v in {"delivery_id": delivery_id, "job_id": job_id, "repo": repo}.items()
            if v is not None
        }
    ):
        yield
