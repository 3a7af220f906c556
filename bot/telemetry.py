"""The bot's own error reports: sentry-sdk, on only when SENTRY_DSN is set, scrubbed of secrets.

`init_telemetry(settings, component)` must run before the Dramatiq broker is created (the
Dramatiq integration patches `Broker.__init__`). Every event, breadcrumb and local variable
passes through bot.redact before it is sent; request bodies are never sent (webhook bodies
hold user code). May import: bot.redact, bot.settings, bot (version).
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.dramatiq import DramatiqIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from bot import __version__
from bot.redact import add_known_secrets, redact
from bot.settings import Settings


def scrub_event(event: Any, hint: Any = None) -> Any:
    """before_send: the whole event (frames' vars, breadcrumbs, messages, extra) redacted."""
    return redact(event)


def scrub_breadcrumb(crumb: Any, hint: Any = None) -> Any:
    """before_breadcrumb: subprocess argv, HTTP URLs and log messages redacted."""
    return redact(crumb)


def init_telemetry(settings: Settings, component: str = "web") -> bool:
    """Start sentry-sdk when SENTRY_DSN is set; returns whether it is on."""
    add_known_secrets(settings.secret_values())
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value().strip():
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=settings.selfheal_release or f"selfheal@{__version__}",
        environment=settings.selfheal_environment,
        server_name=component,
        send_default_pii=False,
        # Local variables help debugging; each one passes sentry's denylist and the redactor
        # (which also blanks every key bot.redact.is_secret_key names).
        include_local_variables=True,
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=DEFAULT_DENYLIST, recursive=True),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        integrations=[
            StarletteIntegration(transaction_style="endpoint"),
            DramatiqIntegration(),
        ],
        traces_sample_rate=0.0,
        # Only the integrations listed above: the auto-enabled AI SDK integrations would import
        # both model SDKs at start (seconds) and record model calls the bot already accounts for.
        auto_enabling_integrations=False,
    )
    sentry_sdk.set_tag("component", component)
    return True
