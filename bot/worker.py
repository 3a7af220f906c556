"""`selfheal worker`: consume jobs from the Dramatiq queue and run them, one job per thread.

Delivery is at least once; the job record makes execution at most once per attempt:
  - a message only starts a job it can claim (state queued, repo free, installation under its
    hourly limit); stale or early messages are dropped, busy repos retry a few seconds later;
  - a running job holds a lease the worker renews every lease/3 s; every worker sweeps for
    expired leases (a SIGKILLed worker) every ~lease/4 s and requeues those jobs at once, so
    redelivery takes about one lease (default 10 s) instead of Dramatiq's minutes;
  - the bot counts attempts itself: a job whose worker died `SELFHEAL_MAX_ATTEMPTS` times is
    quarantined and reported, and the queue keeps flowing.
The handler is `bot.pipeline.run_job(request, settings)` unless SELFHEAL_JOB_HANDLER names
another `module:function`. Every line logged while a job runs carries its delivery id, job id
and repo (bot.logging.job_context).
May import: bot.state, bot.jobs, bot.ingest.enrich, bot.metrics, bot.settings, bot.errors,
bot.logging, bot.redeliver, and bot.pipeline (lazily, as the default handler).
"""

from __future__ import annotations

import importlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import dramatiq
import httpx
import structlog
from dramatiq.brokers.redis import RedisBroker

from bot import metrics
from bot.errors import SettingsError
from bot.ingest.enrich import enrich
from bot.jobs import JobOutcome, JobRequest
from bot.logging import job_context
from bot.settings import Settings
from bot.state import ACTOR_NAME, DRAMATIQ_NAMESPACE, QUEUE_NAME, JobStore

log = structlog.get_logger("selfheal.worker")

Handler = Callable[[JobRequest, Settings], Any]
# A job whose repo is busy is offered again after this many seconds.
BUSY_RETRY_SECONDS = 2.0


def pipeline_handler(request: JobRequest, settings: Settings) -> Any:
    """The default handler: `bot.pipeline.run_job`, imported when the first job runs."""
    try:
        pipeline = importlib.import_module("bot.pipeline")
    except ImportError as exc:
        raise RuntimeError(f"the pipeline is not available ({exc})") from None
    run_job = getattr(pipeline, "run_job", None)
    if run_job is None:
        raise RuntimeError("bot.pipeline has no run_job(request, settings)")
    return run_job(request, settings)


def resolve_handler(spec: str | None) -> Handler:
    """`module:function` -> the function; None -> the pipeline."""
    if not spec:
        return pipeline_handler
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise SettingsError(f"SELFHEAL_JOB_HANDLER: expected module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"SELFHEAL_JOB_HANDLER: cannot import {module_name} ({exc})") from None
    handler = getattr(module, name, None)
    if not callable(handler):
        raise SettingsError(f"SELFHEAL_JOB_HANDLER: {module_name} has no function {name}")
    return handler


def make_broker(settings: Settings) -> RedisBroker:
    """The Dramatiq broker (no Retries/TimeLimit middleware: the worker owns both)."""
    broker = RedisBroker(url=settings.redis_url, namespace=DRAMATIQ_NAMESPACE, middleware=[])
    broker.declare_queue(QUEUE_NAME)
    return broker


class JobWorker:
    """One worker process: a Dramatiq consumer, lease renewal and the requeue sweep."""

    def __init__(
        self,
        settings: Settings,
        handler: Handler | None = None,
        threads: int = 1,
        store: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.handler = handler or resolve_handler(settings.selfheal_job_handler)
        self.threads = max(threads, 1)
        self.store = store or JobStore(settings.redis_url)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = float(settings.selfheal_lease_seconds)
        self.stopping = threading.Event()
        self.http = httpx.Client()
        self._broker: RedisBroker | None = None
        self._dramatiq: dramatiq.Worker | None = None
        self._sweeper: threading.Thread | None = None

    # -- one job --
    def run_message(self, job_id: str) -> None:
        """The actor body: never raises (a crash here would only make Dramatiq retry)."""
        try:
            self._run(job_id)
        except Exception:
            log.exception("job.worker_error", job=job_id)

    def _run(self, job_id: str) -> None:
        request = self.store.request(job_id)
        if request is None:
            return
        with job_context(delivery_id=request.delivery_id, job_id=job_id, repo=request.repo):
            self._run_request(job_id, request)

    def _run_request(self, job_id: str, request: JobRequest) -> None:
        settings = self.settings
        installation = (
            request.installation_id
            or self.store.installation_for(request.repo)
            or f"repo:{request.repo}"
        )
        claim = self.store.claim(
            job_id,
            self.worker_id,
            self.lease,
            settings.selfheal_max_attempts,
            settings.selfheal_installation_jobs_per_hour,
            installation,
        )
        if claim.status == "busy":
            self.store.defer(job_id, time.time() + BUSY_RETRY_SECONDS)
            return
        if claim.status != "claimed":
            log.info("job.not_claimed", job=job_id, status=claim.status, detail=claim.detail)
            return
        request = JobRequest.from_dict({**request.to_dict(), "attempt": claim.attempt})
        log.info("job.start", job=job_id, attempt=claim.attempt, repo=request.repo)
        renewing = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(job_id, renewing), name=f"lease-{job_id}", daemon=True
        )
        renewer.start()
        started = time.monotonic()
        state = "failed"
        try:
            request, note = enrich(request, settings, self.http)
            if note:
                self.store.note(job_id, note)
                self.store.save_request(request)
            outcome = JobOutcome.coerce(self.handler(request, settings))
            state = "done" if outcome.ok else "failed"
        except Exception as exc:
            log.exception("job.error", job=job_id)
            outcome = JobOutcome(ok=False, summary=f"{type(exc).__name__}: {exc}"[:1000])
        finally:
            renewing.set()
            renewer.join(timeout=5)
        elapsed = time.monotonic() - started
        kept = self.store.finish(
            job_id,
            self.worker_id,
            state,
            outcome.to_dict(),
            self._cooldown(request),
            settings.selfheal_job_retention_seconds,
        )
        metrics.JOB_SECONDS.labels(request.kind).observe(elapsed)
        metrics.JOB_OUTCOMES.labels(request.kind, state if kept else "lost").inc()
        log.info("job.end", job=job_id, state=state if kept else "lost", seconds=round(elapsed, 2))

    def _cooldown(self, request: JobRequest) -> int:
        # Human triggers (labels, commands, review comments) never wait out a cooldown.
        if request.kind == "incident":
            return self.settings.selfheal_fingerprint_cooldown_seconds
        return 0

    def _renew(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self.lease / 3):
            try:
                if not self.store.renew(job_id, self.worker_id, self.lease):
                    log.warning("job.lease_lost", job=job_id)
                    return
            except Exception as exc:  # Redis hiccup: try again at the next tick
                log.warning("job.lease_renew_failed", job=job_id, error=type(exc).__name__)

    # -- housekeeping every worker runs --
    def sweep(self) -> None:
        """Requeue jobs of dead workers, quarantine poison jobs, release deferred jobs."""
        s = self.settings
        for job_id in self.store.expired_leases():
            action = self.store.reap(
                job_id,
                s.selfheal_max_attempts,
                s.selfheal_fingerprint_cooldown_seconds,
                s.selfheal_job_retention_seconds,
            )
            if action == "requeued":
                metrics.JOBS_REQUEUED.inc()
                log.warning("job.requeued", job=job_id, reason="lease expired")
            elif action == "quarantined":
                metrics.JOBS_QUARANTINED_TOTAL.inc()
                log.error(
                    "job.quarantined",
                    job=job_id,
                    attempts=s.selfheal_max_attempts,
                    reason="the worker died during every attempt",
                )
        for job_id in self.store.due_deferred():
            self.store.release(job_id)

    def _sweep_loop(self) -> None:
        interval = min(max(self.lease / 4, 0.25), 5.0)
        last_redeliver = 0.0
        while not self.stopping.wait(interval):
            try:
                self.sweep()
            except Exception as exc:
                log.warning("worker.sweep_failed", error=type(exc).__name__)
            every = self.settings.selfheal_redeliver_interval_seconds
            if every and time.monotonic() - last_redeliver >= every:
                last_redeliver = time.monotonic()
                self._redeliver(every)

    def _redeliver(self, every: int) -> None:
        s = self.settings
        try:
            if s.github_app_id is None or s.private_key() is None:
                return
            if not self.store.try_lock("redeliver", every):
                return
            from bot.redeliver import redeliver_failed

            report = redeliver_failed(s, since_seconds=max(every * 2, 3600))
            log.info("worker.redelivered", count=len(report.redelivered))
        except Exception as exc:
            log.warning("worker.redeliver_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    # -- lifecycle --
    def start(self) -> None:
        broker = make_broker(self.settings)
        dramatiq.Actor(
            self.run_message,
            broker=broker,
            actor_name=ACTOR_NAME,
            queue_name=QUEUE_NAME,
            priority=0,
            options={},
        )
        worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=500)
        # Prefetch only what the threads run: a killed worker strands nothing else.
        worker.queue_prefetch = self.threads
        worker.delay_prefetch = self.threads
        worker.start()
        self._broker, self._dramatiq = broker, worker
        self._sweeper = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        self._sweeper.start()
        log.info("worker.started", worker=self.worker_id, threads=self.threads)

    def stop(self, timeout_ms: int = 600_000) -> None:
        self.stopping.set()
        if self._dramatiq is not None:
            self._dramatiq.stop(timeout=timeout_ms)
        if self._broker is not None:
            self._broker.close()
        self.http.close()
