"""`selfheal serve` (the webhook receiver under uvicorn) and `selfheal worker` (the job consumer).

May import: bot.cli, bot.web, bot.worker, bot.settings, bot.metrics, bot.logging,
bot.telemetry.
"""

from __future__ import annotations

import gc
import signal
import threading
from types import FrameType

import typer

from bot.cli import app, fail
from bot.errors import SelfhealError
from bot.settings import load_settings


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    bare_route: bool = typer.Option(
        False, "--bare-route", hidden=True, help="Add POST /bench/bare (benchmarks)."
    ),
) -> None:
    """Receive GitHub, Sentry and PagerDuty webhooks and queue fix jobs."""
    import uvicorn

    from bot.web import create_app

    try:
        settings = load_settings()
        application = create_app(settings, bare_route=bare_route)
    except SelfhealError as error:
        raise fail(error) from None
    # Everything alive now (modules, settings, the app) lives as long as the process: frozen,
    # the garbage collector's full passes stop rescanning it. A storm keeps a few thousand
    # objects in flight (requests waiting on one Redis round trip); a young generation of
    # 700 would be collected every few requests for nothing (they are freed by refcount).
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    # log_config=None: uvicorn's lines go through the handler bot.logging installed.
    uvicorn.run(
        application, host=host, port=port, log_level="warning", access_log=False, log_config=None
    )


@app.command()
def worker(
    threads: int = typer.Option(1, "--threads", min=1, help="Jobs this process runs at once."),
    metrics_port: int = typer.Option(
        0, "--metrics-port", help="Serve this worker's Prometheus metrics on this port (0: off)."
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1",
        "--metrics-host",
        help="Address the metrics port listens on (0.0.0.0 in a container).",
    ),
) -> None:
    """Consume queued jobs and run them (redelivers a dead worker's job within one lease)."""
    from bot.logging import configure_logging
    from bot.telemetry import init_telemetry
    from bot.worker import JobWorker

    try:
        settings = load_settings()
        configure_logging(settings)
        # Before the broker exists: the Dramatiq integration patches Broker.__init__.
        init_telemetry(settings, "worker")
        job_worker = JobWorker(settings, threads=threads)
    except SelfhealError as error:
        raise fail(error) from None
    if metrics_port:
        from prometheus_client import start_http_server

        from bot import __version__
        from bot.metrics import REGISTRY, set_build_info

        set_build_info(__version__)
        try:
            start_http_server(metrics_port, addr=metrics_host, registry=REGISTRY)
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot listen on {metrics_host}:{metrics_port} ({exc.strerror or exc})",
                param_hint="--metrics-port",
            ) from None
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    job_worker.start()
    typer.echo(f"selfheal worker {job_worker.worker_id} ready", err=True)
    stop.wait()
    job_worker.stop()
