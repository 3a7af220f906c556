"""Retries for model calls: backoff on 429 / 5xx / timeouts, honouring Retry-After, bounded.

The SDKs' own retries are switched off; this is the only retry loop. A call runs under a hard
wall-clock deadline in a worker thread, so a server that dribbles bytes cannot hold it longer.
May import: bot.errors, bot.redact.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from bot.errors import ModelError
from bot.redact import redact

T = TypeVar("T")
log = logging.getLogger("selfheal.models")


@dataclass(frozen=True)
class Failure:
    """How a provider classifies an exception: retry or not, and how long the server asked."""

    retryable: bool
    reason: str  # one line, no secret: "HTTP 429 rate limited", "timed out after 30s"
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    max_total_wait_s: float = 90.0
    timeout_s: float = 120.0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0


class CallTimedOut(Exception):
    """The hard per-call deadline passed before the provider answered."""


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms`, `retry-after` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def http_failure(status: int, body: object, headers: Mapping[str, str] | None) -> Failure:
    """An HTTP error reply: 408 / 409 / 429 / 5xx are retried (after Retry-After when given).

    The reason names the status and the message of an `{"error": {"message": ...}}`,
    `{"error": "..."}` or `{"message": ...}` body.
    """
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = str(inner.get("message") or "")
        elif isinstance(inner, str):
            message = inner
    detail = f" ({message[:200]})" if message else ""
    retryable = status in (408, 409, 429) or status >= 500
    retry_after = parse_retry_after(headers) if retryable else None
    return Failure(retryable, f"HTTP {status}{detail}", retry_after)


def run_with_deadline(fn: Callable[[], T], timeout_s: float) -> T:
    """Run `fn` in a daemon thread; raise CallTimedOut when it has not returned in time."""
    outcome: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="model-call", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise CallTimedOut(f"no answer within {timeout_s:g}s")
    if error:
        raise error[0]
    return outcome[0]


def _unexpected(exc: BaseException) -> Failure:
    """A failure the provider did not classify: a garbled body is retried, the rest is not."""
    if isinstance(exc, json.JSONDecodeError):
        return Failure(True, "the reply is not JSON")
    return Failure(False, f"unexpected {type(exc).__name__} from the provider's client")


def call_with_retries(
    fn: Callable[[], T],
    classify: Callable[[BaseException], Failure | None],
    policy: RetryPolicy,
    *,
    label: str,
) -> T:
    """Call `fn` until it succeeds, a failure is not retryable, or the attempts / wait run out.

    `classify` maps an exception to a Failure (None: not an SDK error; a body that is not JSON
    is then retried, anything else fails at once).
    Raises ModelError with one redacted line naming `label` and the last reason.
    """
    waited = 0.0
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return run_with_deadline(fn, policy.timeout_s)
        except CallTimedOut:
            failure = Failure(True, f"timed out after {policy.timeout_s:g}s")
        except Exception as exc:
            failure = classify(exc) or _unexpected(exc)
        reason = redact(failure.reason).replace("\n", " ")[:300]
        if not failure.retryable:
            raise ModelError(f"{label}: {reason}") from None
        if attempt == policy.max_attempts:
            raise ModelError(f"{label}: {reason}; gave up after {attempt} attempts") from None
        if failure.retry_after_s is not None:
            delay = failure.retry_after_s
        else:
            backoff = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
            delay = backoff * random.uniform(0.5, 1.0)
        if waited + delay > policy.max_total_wait_s:
            raise ModelError(
                f"{label}: {reason}; waiting {delay:.1f}s more would pass the retry budget "
                f"of {policy.max_total_wait_s:g}s (SELFHEAL_MODEL_MAX_RETRY_WAIT_S)"
            ) from None
        log.info(
            "model call retry: %s: %s; attempt %d, waiting %.2fs", label, reason, attempt, delay
        )
        time.sleep(delay)
        waited += delay
    raise AssertionError("unreachable")  # pragma: no cover
