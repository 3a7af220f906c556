"""Operator pages served by the web process: the one-click App setup and the jobs dashboard.

`create_ops_app(settings, job_source)` serves both on their own (tests, a dashboard-only
process); the web app mounts `setup_routes(...)` and `dashboard_routes(...)` next to the
webhooks. May import: bot.settings, bot.redact, bot.errors, bot.ops.*.
"""

from __future__ import annotations

from starlette.applications import Starlette

from bot.ops.dashboard import JobSource, dashboard_routes
from bot.ops.setup_flow import SetupFlow, setup_routes
from bot.settings import Settings


def create_ops_app(
    settings: Settings,
    job_source: JobSource | None = None,
    *,
    setup_flow: SetupFlow | None = None,
) -> Starlette:
    """A Starlette app with /setup and, when a job source is given, the dashboard at /."""
    routes = setup_routes(settings, flow=setup_flow)
    if job_source is not None:
        routes += dashboard_routes(settings, job_source)
    return Starlette(routes=routes)


__all__ = ["JobSource", "SetupFlow", "create_ops_app", "dashboard_routes", "setup_routes"]
