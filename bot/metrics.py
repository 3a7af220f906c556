"""The bot's Prometheus metrics: plain metric objects on one registry the bot owns.

The web app serves `REGISTRY` at /metrics; `selfheal worker --metrics-port` serves the
worker's. Gauges that describe Redis (queue depth, quarantined jobs) are set at scrape time.
May import: nothing from bot.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOKS = Counter(
    "selfheal_webhooks_total",
    "Webhook deliveries received, by source and outcome "
    "(queued, duplicate, ignored, recorded, pong, unauthorized, bad_request, too_large, "
    "not_enabled, unavailable).",
    ["source", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_SECONDS = Histogram(
    "selfheal_webhook_seconds",
    "Time to answer a webhook, by source.",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("selfheal_queue_depth", "Job messages waiting in the queue.", registry=REGISTRY)
JOBS_RUNNING = Gauge("selfheal_jobs_running", "Jobs holding a lease.", registry=REGISTRY)
JOBS_DEFERRED = Gauge(
    "selfheal_jobs_deferred",
    "Jobs waiting for their installation's hourly limit.",
    registry=REGISTRY,
)
JOBS_QUARANTINED = Gauge(
    "selfheal_jobs_quarantined",
    "Jobs set aside after their worker died on every attempt (dead letters).",
    registry=REGISTRY,
)
JOBS_ENDED = Gauge(
    "selfheal_jobs_ended",
    "Jobs ended since Redis was last emptied, by final state (read from Redis).",
    ["state"],
    registry=REGISTRY,
)
JOB_OUTCOMES = Counter(
    "selfheal_job_outcomes_total",
    "Job runs finished by this worker, by kind and state (done, failed, lost).",
    ["kind", "state"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "selfheal_job_seconds",
    "Wall time of one job run in this worker, by kind.",
    ["kind"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
JOBS_REQUEUED = Counter(
    "selfheal_jobs_requeued_total",
    "Jobs requeued because their worker stopped renewing the lease.",
    registry=REGISTRY,
)
