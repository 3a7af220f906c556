"""The bot's Prometheus metrics: plain metric objects on one registry the bot owns.

The web app serves `REGISTRY` at /metrics; `selfheal worker --metrics-port` serves the
worker's. Gauges that describe Redis (queue depth, quarantined jobs) are set at scrape time.
Counters are moved where the thing happens: decisions in bot.pipeline, model calls in
bot.agent.providers (every provider is wrapped by `make_model`), sandbox runs in
bot.sandbox.process (every backend's result passes there), jobs in bot.worker.
May import: nothing from bot.
"""

from __future__ import annotations

import bisect
import itertools
import platform
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WebhookStats(Collector):
    """`selfheal_webhooks_total{source,outcome}` and `selfheal_webhook_seconds{source}`.

    Counted in plain ints on the web process's event loop (one thread) and turned into
    Prometheus families when scraped: a prometheus_client child takes a lock on every call,
    which costs more than the rest of the bookkeeping of a webhook."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, str], int] = {}
        # per source: one count per bucket (the last is +Inf), then the sum of seconds
        self.latency: dict[str, list[float]] = {}

    def observe(self, source: str, outcome: str, seconds: float) -> None:
        key = (source, outcome)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        row = self.latency.get(source)
        if row is None:
            row = self.latency[source] = [0.0] * (len(WEBHOOK_BUCKETS) + 2)
        row[bisect.bisect_left(WEBHOOK_BUCKETS, seconds)] += 1
        row[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "selfheal_webhooks",
            "Webhook deliveries received, by source and outcome "
            "(queued, duplicate, ignored, recorded, pong, unauthorized, bad_request, too_large, "
            "not_enabled, unavailable).",
            labels=["source", "outcome"],
        )
        for (source, outcome), count in sorted(self.outcomes.items()):
            total.add_metric([source, outcome], count)
        yield total
        seconds = HistogramMetricFamily(
            "selfheal_webhook_seconds", "Time to answer a webhook, by source.", labels=["source"]
        )
        bounds = [*(str(b) for b in WEBHOOK_BUCKETS), "+Inf"]
        for source, row in sorted(self.latency.items()):
            cumulative = list(itertools.accumulate(row[:-1]))
            seconds.add_metric([source], list(zip(bounds, cumulative, strict=True)), row[-1])
        yield seconds


WEBHOOKS = WebhookStats()
REGISTRY.register(WEBHOOKS)
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
JOBS_QUARANTINED_TOTAL = Counter(
    "selfheal_quarantines_total",
    "Jobs this worker set aside as dead letters after their worker died on every attempt.",
    registry=REGISTRY,
)
DECISIONS = Counter(
    "selfheal_decisions_total",
    "Policy decisions made, by action (merge, pr, draft_pr, report).",
    ["action"],
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "selfheal_model_calls_total",
    "Model calls, by agent role, provider:model and outcome (ok, error).",
    ["role", "model", "outcome"],
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "selfheal_model_tokens_total",
    "Model tokens, by agent role, provider:model and direction (input, output).",
    ["role", "model", "direction"],
    registry=REGISTRY,
)
MODEL_COST_USD = Counter(
    "selfheal_model_cost_usd_total",
    "Model spend in US dollars from the price table, by agent role and provider:model.",
    ["role", "model"],
    registry=REGISTRY,
)
SANDBOX_RUNS = Counter(
    "selfheal_sandbox_runs_total",
    "Sandboxed commands run, by backend and outcome (ok, failed, limit).",
    ["backend", "outcome"],
    registry=REGISTRY,
)
SANDBOX_LIMITS = Counter(
    "selfheal_sandbox_limits_total",
    "Sandboxed commands stopped by a limit, by backend and limit "
    "(timeout, cpu, memory, pids, file_size, output).",
    ["backend", "limit"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "selfheal_build_info",
    "Always 1; the labels say which version of the bot and of Python this process runs.",
    ["version", "python"],
    registry=REGISTRY,
)


def set_build_info(version: str) -> None:
    """Publish `selfheal_build_info{version, python} 1` (called once per process)."""
    BUILD_INFO.labels(version, platform.python_version()).set(1)
