"""The Starlette app: `POST /webhooks/{github,sentry,pagerduty}`, `/healthz`, `/readyz`,
`/metrics`. Signatures are checked on the raw bytes before any parsing; an accepted event is
admitted to Redis (dedupe, grouping, enqueue) in one script and answered at once.

Response contract (docs/intake.md): 202 queued, 200 duplicate/ignored/recorded/pong,
400 malformed, 401 bad signature, 404 source not enabled, 413 too large, 503 Redis down.
The operator pages are mounted after the webhook routes: `/setup` (bot.ops.setup_flow) and
the jobs dashboard at `/` (bot.ops.dashboard, reading the job store through
bot.web.jobsource). Logging (bot.logging) and the bot's own Sentry (bot.telemetry) are
configured here, once per process.
May import: bot.ingest, bot.state, bot.jobs, bot.metrics, bot.settings, bot.logging,
bot.telemetry, bot.ops, bot.web.jobsource.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import redis.exceptions
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive

from bot import __version__, metrics
from bot.ingest import github, pagerduty, sentry, signatures
from bot.ingest.routes import Ignored, InstallationChange, NewJob, PayloadError, Pong
from bot.ingest.routes import Route as Decision
from bot.jobs import JobRequest
from bot.logging import configure_logging
from bot.ops.dashboard import JobSource, dashboard_routes
from bot.ops.setup_flow import setup_routes
from bot.settings import Settings, load_settings
from bot.state import AsyncIntake, JobStore, new_job_id
from bot.telemetry import init_telemetry
from bot.web.jobsource import StoreJobSource

log = structlog.get_logger("selfheal.web")

# Largest body each vendor sends; anything larger is refused before it is buffered.
LIMITS = {"github": 25 * 1024 * 1024, "sentry": 1024 * 1024, "pagerduty": 256 * 1024}
RETRY_AFTER = "30"
# How long a webhook may wait on Redis before answering 503: inside each vendor's answer window
# (Sentry 1 s, PagerDuty 5 s, GitHub 10 s), so the vendor sees an answer it retries.
DEADLINES = {"github": 8.0, "sentry": 0.8, "pagerduty": 4.0}


@dataclass(frozen=True)
class _Source:
    name: str
    secret_setting: str
    signature_header: bytes  # as ASGI gives header names: lower-case bytes
    verify: Callable[[signatures.HmacKey, bytes, str | None], bool]


SOURCES = {
    "github": _Source(
        "github", "github_webhook_secret", b"x-hub-signature-256", signatures.github_valid
    ),
    "sentry": _Source(
        "sentry", "sentry_client_secret", b"sentry-hook-signature", signatures.sentry_valid
    ),
    "pagerduty": _Source(
        "pagerduty",
        "pagerduty_webhook_secret",
        b"x-pagerduty-signature",
        signatures.pagerduty_valid,
    ),
}

# A request's headers, read once from the ASGI scope: lower-case names to raw values.
_Headers = dict[bytes, bytes]


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _header(headers: _Headers, name: bytes, limit: int = 4096) -> str | None:
    value = headers.get(name)
    return None if value is None else value[:limit].decode("latin-1")


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, length: bytes | None, limit: int) -> bytes:
    if length is not None:
        if not length.isdigit():
            raise PayloadError("invalid Content-Length header")
        if int(length) > limit:
            raise _TooLarge
    # The ASGI messages directly, not request.stream(): an async generator per request costs
    # more than the body, which nearly always arrives in one message.
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnect
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise _TooLarge
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _is_json(content_type: bytes | None) -> bool:
    if content_type == b"application/json":  # what every vendor sends
        return True
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _secret(settings: Settings, source: _Source) -> signatures.HmacKey | None:
    value = getattr(settings, source.secret_setting)
    secret = value.get_secret_value() if value is not None else ""
    return signatures.HmacKey(secret) if secret else None


class Receiver:
    """Turns one webhook request into a response; holds the settings and the Redis client.

    The hot path (verify, route, join a job in Redis) is kept to a few coroutine levels: each
    await on Redis suspends and resumes every level between the server and the reply."""

    def __init__(self, settings: Settings, intake: AsyncIntake) -> None:
        self.settings = settings
        self.intake = intake
        self.secrets = {name: _secret(settings, source) for name, source in SOURCES.items()}
        self.delivery_ttl = settings.selfheal_delivery_retention_seconds

    def endpoint(self, source_name: str) -> Callable[[Request], Awaitable[Response]]:
        """The Starlette endpoint of one source: answers, counts and times every request."""
        source = SOURCES[source_name]
        observe = metrics.WEBHOOKS.observe

        async def webhook(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response, outcome = await self._handle(source, request)
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning(
                    "webhook.redis_unavailable", source=source_name, error=type(exc).__name__
                )
                outcome = "unavailable"
                response = _json(
                    503,
                    {"status": "error", "error": "the job store is unavailable; retry later"},
                    {"Retry-After": RETRY_AFTER},
                )
            except Exception:  # never a 500: the vendor retries a 503, and the log has the cause
                log.exception("webhook.internal_error", source=source_name)
                outcome = "unavailable"
                response = _json(
                    503,
                    {"status": "error", "error": "internal error; retry later"},
                    {"Retry-After": RETRY_AFTER},
                )
            observe(source_name, outcome, time.perf_counter() - started)
            return response

        return webhook

    async def _handle(self, source: _Source, request: Request) -> tuple[Response, str]:
        secret = self.secrets[source.name]
        if secret is None:
            name = source.secret_setting.upper()
            return _json(
                404,
                {
                    "status": "error",
                    "error": f"{source.name} webhooks are not enabled (set {name})",
                },
            ), "not_enabled"
        headers: _Headers = dict(request.scope["headers"])
        limit = LIMITS[source.name]
        try:
            body = await _read_body(request.receive, headers.get(b"content-length"), limit)
        except _TooLarge:
            return _json(
                413,
                {"status": "error", "error": f"body over the {source.name} limit of {limit} bytes"},
            ), "too_large"
        except PayloadError as exc:
            return _json(400, {"status": "error", "error": str(exc)}), "bad_request"
        if not source.verify(secret, body, _header(headers, source.signature_header)):
            return _json(
                401, {"status": "error", "error": "missing or invalid signature"}
            ), "unauthorized"
        try:
            decision = self._decide(source.name, headers, body)
        except PayloadError as exc:
            return _json(400, {"status": "error", "error": str(exc)}), "bad_request"
        if type(decision) is not NewJob:
            return await self._act(decision)
        deadline = DEADLINES[source.name]
        joined = await self.intake.join(
            decision.fingerprint, decision.delivery_key, self.delivery_ttl, deadline
        )
        if joined is not None:
            return _json(200, {"status": "duplicate", "job": joined.job_id}), "duplicate"
        return await self._admit(decision, deadline)

    def _decide(self, source: str, headers: _Headers, body: bytes) -> Decision:
        if not _is_json(headers.get(b"content-type")):
            raise PayloadError("Content-Type must be application/json")
        if not body:
            raise PayloadError("empty body")
        if source == "github":
            event = _header(headers, b"x-github-event", 100)
            delivery = _header(headers, b"x-github-delivery", 100)
            if not event:
                raise PayloadError("missing header: X-GitHub-Event")
            if not delivery:
                raise PayloadError("missing header: X-GitHub-Delivery")
            hook = _header(headers, b"x-github-hook-id", 40) or ""
            payload = _parse(body)
            return github.route(event, payload, self.settings, f"github:{hook}:{delivery}")
        if source == "sentry":
            resource = _header(headers, b"sentry-hook-resource", 100)
            if not resource:
                raise PayloadError("missing header: Sentry-Hook-Resource")
            return sentry.route_body(resource, body, self.settings, _parse)
        webhook_id = _header(headers, b"x-webhook-id", 200)
        return pagerduty.route(_parse(body), self.settings, webhook_id)

    async def _act(self, decision: Decision) -> tuple[Response, str]:
        if isinstance(decision, Ignored):
            return _json(200, {"status": "ignored", "reason": decision.reason}), "ignored"
        if isinstance(decision, Pong):
            return _json(200, {"status": "pong"}), "pong"
        assert isinstance(decision, InstallationChange)
        await self.intake.record_installation(
            decision.installation_id,
            decision.info,
            decision.added,
            decision.removed,
            decision.replace,
        )
        body = {
            "status": "recorded",
            "installation": decision.installation_id,
            "action": decision.action,
        }
        return _json(200, body), "recorded"

    async def _admit(self, decision: NewJob, deadline: float) -> tuple[Response, str]:
        """A new job for an event no queued or running job owns (Redis re-checks atomically)."""
        request = JobRequest(
            job_id=new_job_id(),
            kind=decision.kind,
            source=decision.source,
            repo=decision.repo,
            fingerprint=decision.fingerprint,
            installation_id=decision.installation_id,
            incident=decision.make_incident(),
            github=decision.github,
            delivery_id=decision.delivery_key,
            created_at=time.time(),
        )
        admission = await self.intake.admit(
            request, decision.delivery_key, self.delivery_ttl, deadline
        )
        if admission.status == "queued":
            log.info(
                "webhook.queued", job=admission.job_id, source=decision.source, repo=decision.repo
            )
            return _json(202, {"status": "queued", "job": admission.job_id}), "queued"
        return _json(200, {"status": "duplicate", "job": admission.job_id}), "duplicate"


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"invalid JSON: {str(exc)[:120]}") from None


def create_app(
    settings: Settings | None = None,
    *,
    intake: AsyncIntake | None = None,
    job_source: JobSource | None = None,
    bare_route: bool = False,
) -> Starlette:
    """The ASGI app. `bare_route` adds `POST /bench/bare` (202, no work) for benchmarks."""
    settings = settings or load_settings()
    configure_logging(settings)
    init_telemetry(settings, "web")
    metrics.set_build_info(__version__)
    store = intake or AsyncIntake(settings.redis_url)
    jobs = job_source or StoreJobSource(JobStore(settings.redis_url), settings)
    receiver = Receiver(settings, store)

    async def healthz(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await store.ping()
        except (redis.exceptions.RedisError, OSError):
            return _json(
                503, {"status": "unavailable", "redis": "unreachable"}, {"Retry-After": "5"}
            )
        return _json(200, {"status": "ready", "redis": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        try:
            counts = await store.counts()
        except (redis.exceptions.RedisError, OSError):
            counts = {}
        if counts:
            metrics.QUEUE_DEPTH.set(counts["queue_depth"])
            metrics.JOBS_RUNNING.set(counts["running"])
            metrics.JOBS_DEFERRED.set(counts["deferred"])
            metrics.JOBS_QUARANTINED.set(counts["quarantined"])
            for key, value in counts.items():
                if key.startswith("jobs_"):
                    metrics.JOBS_ENDED.labels(key.removeprefix("jobs_")).set(value)
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def bare(request: Request) -> Response:
        return _json(202, {"status": "queued", "job": "bare"})

    routes: list[BaseRoute] = [
        Route("/webhooks/github", receiver.endpoint("github"), methods=["POST"]),
        Route("/webhooks/sentry", receiver.endpoint("sentry"), methods=["POST"]),
        Route("/webhooks/pagerduty", receiver.endpoint("pagerduty"), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if bare_route:
        routes.append(Route("/bench/bare", bare, methods=["POST"]))
    routes.extend(setup_routes(settings))
    routes.extend(dashboard_routes(settings, jobs))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()
        if isinstance(jobs, StoreJobSource):
            jobs.store.client.close()

    return Starlette(routes=routes, lifespan=lifespan)
