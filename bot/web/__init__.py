"""The HTTP face of the bot: webhook receivers, health, readiness and metrics.

May import: bot.ingest, bot.state, bot.jobs, bot.metrics, bot.settings.
"""

from bot.web.app import create_app

__all__ = ["create_app"]
